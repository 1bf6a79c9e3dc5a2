# Judges, judge runs and judgments (issue #14).

import arena.models
import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("arena", "0009_history_export"),
    ]

    operations = [
        migrations.CreateModel(
            name='Judge',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=200, unique=True, verbose_name='name')),
                ('slug', models.SlugField(max_length=60, unique=True, verbose_name='slug')),
                ('maker', models.CharField(blank=True, help_text="Who made the judge's model; a contestant by the same maker is flagged.", max_length=100, verbose_name='maker')),
                ('mode', models.CharField(choices=[('pairwise', 'Pairwise (A>>B … B>>A)'), ('single', 'Single answer (grade 1–10)')], default='pairwise', max_length=16, verbose_name='mode')),
                ('language', models.CharField(choices=[('en', 'English'), ('ko', 'Korean')], default='en', max_length=8, verbose_name='prompt language')),
                ('system_prompt', models.TextField(blank=True, help_text='Empty: the tested default of the language.', verbose_name='system prompt')),
                ('prompt_template', models.TextField(blank=True, help_text='Empty: the tested default. Placeholders: {question}, {answer_a}, {answer_b} (pairwise) or {answer} (single), and {reference}.', verbose_name='prompt template')),
                ('use_reference', models.BooleanField(default=True, help_text="Give the judge the question's reference answer when it has one.", verbose_name='show the reference answer')),
                ('temperature', models.FloatField(default=0.0, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(5.0)], verbose_name='temperature')),
                ('top_p', models.FloatField(default=1.0, validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)], verbose_name='top p')),
                ('max_tokens', models.PositiveIntegerField(default=1024, validators=[django.core.validators.MinValueValidator(1)], verbose_name='max tokens')),
                ('seed', models.BigIntegerField(blank=True, null=True, verbose_name='seed')),
                ('trials', models.PositiveSmallIntegerField(default=1, help_text='How many times each judgment is repeated (use temperature > 0).', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(50)], verbose_name='trials')),
                ('strong_weight', models.PositiveSmallIntegerField(default=1, help_text='A>>B counts as this many wins (arena-hard uses 3).', validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(10)], verbose_name='weight of a strong verdict')),
                ('queue', models.CharField(blank=True, help_text="Defaults to the serving contestant's queue.", max_length=100, verbose_name='queue')),
                ('price_input', models.FloatField(default=0.0, validators=[django.core.validators.MinValueValidator(0.0)], verbose_name='price per million input tokens')),
                ('price_output', models.FloatField(default=0.0, validators=[django.core.validators.MinValueValidator(0.0)], verbose_name='price per million output tokens')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('serving', models.ForeignKey(help_text="The contestant row that says how the judge's model is served (backend, model, endpoint, queue). Its own sampling settings are not used.", on_delete=django.db.models.deletion.PROTECT, related_name='judges', to='arena.contestant', verbose_name='served as')),
            ],
            options={
                'verbose_name': 'judge',
                'verbose_name_plural': 'judges',
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='JudgeRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('trials', models.PositiveSmallIntegerField(default=1, validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(50)], verbose_name='trials')),
                ('pairs_limit', models.PositiveIntegerField(blank=True, help_text='Empty: every pair of done answers.', null=True, verbose_name='pairs')),
                ('config', models.JSONField(default=arena.models._default_dict, editable=False, verbose_name='configuration')),
                ('combine_weight', models.FloatField(default=0.0, help_text='0: no combined ranking. Otherwise one judgment counts this many votes.', validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(100.0)], verbose_name='weight in the combined ranking')),
                ('report', models.JSONField(blank=True, default=arena.models._default_dict, editable=False, verbose_name='report')),
                ('report_at', models.DateTimeField(blank=True, null=True, verbose_name='report computed')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('campaign', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='judge_runs', to='arena.campaign', verbose_name='campaign')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='created by')),
                ('judge', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='runs', to='arena.judge', verbose_name='judge')),
            ],
            options={
                'verbose_name': 'judge run',
                'verbose_name_plural': 'judge runs',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='Judgment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('trial', models.PositiveSmallIntegerField(default=0, verbose_name='trial')),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('running', 'Running'), ('done', 'Done'), ('unparsed', 'Unparseable verdict'), ('failed', 'Failed')], db_index=True, default='pending', max_length=16, verbose_name='status')),
                ('verdict', models.CharField(blank=True, max_length=8, verbose_name='verdict')),
                ('grade', models.FloatField(blank=True, null=True, verbose_name='grade')),
                ('raw_text', models.TextField(blank=True, verbose_name='raw text')),
                ('reason', models.TextField(blank=True, verbose_name='reason')),
                ('prompt_tokens', models.PositiveIntegerField(blank=True, null=True, verbose_name='prompt tokens')),
                ('completion_tokens', models.PositiveIntegerField(blank=True, null=True, verbose_name='completion tokens')),
                ('latency_ms', models.PositiveIntegerField(blank=True, null=True, verbose_name='latency (ms)')),
                ('attempts', models.PositiveSmallIntegerField(default=0, verbose_name='attempts')),
                ('started_at', models.DateTimeField(blank=True, null=True, verbose_name='started')),
                ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished')),
                ('answer_a', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='arena.answer', verbose_name='first answer')),
                ('answer_b', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='arena.answer', verbose_name='second answer')),
                ('contestant_a', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='arena.contestant', verbose_name='first contestant')),
                ('contestant_b', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='arena.contestant', verbose_name='second contestant')),
                ('question', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='arena.question', verbose_name='question')),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='judgments', to='arena.judgerun', verbose_name='run')),
            ],
            options={
                'verbose_name': 'judgment',
                'verbose_name_plural': 'judgments',
                'ordering': ['id'],
            },
        ),
        migrations.AddConstraint(
            model_name='judge',
            constraint=models.CheckConstraint(condition=models.Q(('mode__in', ['pairwise', 'single'])), name='judge_mode_known'),
        ),
        migrations.AddConstraint(
            model_name='judge',
            constraint=models.CheckConstraint(condition=models.Q(('temperature__gte', 0), ('temperature__lte', 5)), name='judge_temperature_range'),
        ),
        migrations.AddConstraint(
            model_name='judge',
            constraint=models.CheckConstraint(condition=models.Q(('max_tokens__gte', 1)), name='judge_max_tokens'),
        ),
        migrations.AddConstraint(
            model_name='judge',
            constraint=models.CheckConstraint(condition=models.Q(('trials__gte', 1), ('trials__lte', 50)), name='judge_trials_range'),
        ),
        migrations.AddConstraint(
            model_name='judgerun',
            constraint=models.CheckConstraint(condition=models.Q(('trials__gte', 1), ('trials__lte', 50)), name='judge_run_trials_range'),
        ),
        migrations.AddConstraint(
            model_name='judgerun',
            constraint=models.CheckConstraint(condition=models.Q(('combine_weight__gte', 0)), name='judge_run_combine_weight'),
        ),
        migrations.AddIndex(
            model_name='judgment',
            index=models.Index(fields=['run', 'status'], name='arena_judgm_run_id_a80d93_idx'),
        ),
        migrations.AddConstraint(
            model_name='judgment',
            constraint=models.UniqueConstraint(condition=models.Q(('answer_b__isnull', False)), fields=('run', 'answer_a', 'answer_b', 'trial'), name='judgment_unique_pairwise'),
        ),
        migrations.AddConstraint(
            model_name='judgment',
            constraint=models.UniqueConstraint(condition=models.Q(('answer_b__isnull', True)), fields=('run', 'answer_a', 'trial'), name='judgment_unique_single'),
        ),
        migrations.AddConstraint(
            model_name='judgment',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'running', 'done', 'unparsed', 'failed'])), name='judgment_status_known'),
        ),
        migrations.AddConstraint(
            model_name='judgment',
            constraint=models.CheckConstraint(condition=models.Q(('answer_a', models.F('answer_b')), _negated=True), name='judgment_two_distinct_answers'),
        ),
        migrations.AddConstraint(
            model_name='judgment',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status__in', ['failed', 'unparsed']), _negated=True), models.Q(('reason', ''), _negated=True), _connector='OR'), name='judgment_failure_has_reason'),
        ),
        migrations.AddConstraint(
            model_name='judgment',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status', 'done'), _negated=True), models.Q(('verdict', ''), _negated=True), ('grade__isnull', False), _connector='OR'), name='judgment_done_has_verdict'),
        ),
        migrations.AddConstraint(
            model_name='judgment',
            constraint=models.CheckConstraint(condition=models.Q(('verdict__in', ['', 'A>>B', 'A>B', 'A=B', 'B>A', 'B>>A'])), name='judgment_verdict_known'),
        ),
    ]
