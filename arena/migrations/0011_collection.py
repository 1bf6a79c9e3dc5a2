import uuid

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import arena.models


class Migration(migrations.Migration):
    dependencies = [
        ("arena", "0010_judge"),
    ]

    operations = [
        migrations.AddField(
            model_name="battle",
            name="sampling_weight",
            field=models.FloatField(blank=True, null=True, verbose_name="sampling weight"),
        ),
        migrations.AddField(
            model_name="campaign",
            name="expert_categories",
            field=models.JSONField(
                blank=True,
                default=arena.models._default_list,
                help_text="Questions of these categories go only to evaluators with that skill.",
                verbose_name="categories for experts only",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="expert_languages",
            field=models.JSONField(
                blank=True,
                default=arena.models._default_list,
                help_text="Questions in these languages go only to evaluators who read them.",
                verbose_name="languages for experts only",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="expert_weight",
            field=models.FloatField(
                default=1.0,
                help_text="An expert's vote on a question of their skill counts this many times.",
                validators=[
                    django.core.validators.MinValueValidator(1.0),
                    django.core.validators.MaxValueValidator(10.0),
                ],
                verbose_name="weight of an expert's vote",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="sampling",
            field=models.CharField(
                choices=[
                    ("balanced", "Balanced: the pair with the fewest battles"),
                    ("active", "Active: where the ranking is least certain"),
                ],
                default="balanced",
                help_text="Active: pairs drawn with weights from the latest ratings, favouring the votes that most narrow the intervals of adjacent ranks; the ratings correct for it.",
                max_length=8,
                verbose_name="pair sampling",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="sampling_floor",
            field=models.FloatField(
                default=0.1,
                validators=[
                    django.core.validators.MinValueValidator(0.01),
                    django.core.validators.MaxValueValidator(1.0),
                ],
                verbose_name="uniform share of active sampling",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="sampling_top",
            field=models.PositiveSmallIntegerField(
                default=3,
                help_text="The adjacent gaps among this many top ranks; 0: every rank.",
                verbose_name="ranks active sampling separates",
            ),
        ),
        migrations.AddField(
            model_name="evaluatorprofile",
            name="skills",
            field=models.JSONField(
                blank=True,
                default=arena.models._default_list,
                help_text="Question categories this evaluator is an expert in.",
                verbose_name="skills",
            ),
        ),
        migrations.AddField(
            model_name="pairload",
            name="weight",
            field=models.FloatField(blank=True, null=True, verbose_name="sampling probability"),
        ),
        migrations.AddField(
            model_name="campaign",
            name="ask_acceptable",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text="Pairwise: an optional acceptable / not acceptable per answer.",
                verbose_name="ask whether each answer is acceptable",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="kind",
            field=models.CharField(
                choices=[
                    ("pairwise", "Pairwise: which of two answers is better"),
                    ("grading", "Grading: one answer graded on a rubric"),
                ],
                db_default="pairwise",
                default="pairwise",
                max_length=8,
                verbose_name="kind",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="rubric",
            field=models.CharField(
                choices=[
                    ("overall", "One overall grade, 1–10"),
                    ("criteria", "Per criterion, 1–10 each"),
                ],
                db_default="overall",
                default="overall",
                max_length=8,
                verbose_name="grading rubric",
            ),
        ),
        migrations.AddField(
            model_name="vote",
            name="acceptable_a",
            field=models.BooleanField(blank=True, null=True, verbose_name="answer A acceptable"),
        ),
        migrations.AddField(
            model_name="vote",
            name="acceptable_b",
            field=models.BooleanField(blank=True, null=True, verbose_name="answer B acceptable"),
        ),
        migrations.CreateModel(
            name="Grading",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "code",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, unique=True, verbose_name="code"
                    ),
                ),
                (
                    "session_key",
                    models.CharField(
                        blank=True, db_index=True, max_length=64, verbose_name="session key"
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("served", "Served"),
                            ("graded", "Graded"),
                            ("skipped", "Skipped"),
                            ("expired", "Expired"),
                        ],
                        default="served",
                        max_length=8,
                        verbose_name="state",
                    ),
                ),
                ("served_at", models.DateTimeField(auto_now_add=True, verbose_name="served")),
                ("expires_at", models.DateTimeField(verbose_name="expires")),
                (
                    "answer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="arena.answer",
                        verbose_name="answer",
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="gradings",
                        to="arena.campaign",
                        verbose_name="campaign",
                    ),
                ),
                (
                    "evaluator",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="evaluator",
                    ),
                ),
                (
                    "question",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="arena.question",
                        verbose_name="question",
                    ),
                ),
            ],
            options={
                "verbose_name": "grading",
                "verbose_name_plural": "gradings",
                "ordering": ["-served_at"],
            },
        ),
        migrations.CreateModel(
            name="Grade",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "overall",
                    models.PositiveSmallIntegerField(blank=True, null=True, verbose_name="overall"),
                ),
                (
                    "helpfulness",
                    models.PositiveSmallIntegerField(
                        blank=True, null=True, verbose_name="helpfulness"
                    ),
                ),
                (
                    "correctness",
                    models.PositiveSmallIntegerField(
                        blank=True, null=True, verbose_name="correctness"
                    ),
                ),
                (
                    "harmlessness",
                    models.PositiveSmallIntegerField(
                        blank=True, null=True, verbose_name="harmlessness"
                    ),
                ),
                (
                    "language_quality",
                    models.PositiveSmallIntegerField(
                        blank=True, null=True, verbose_name="language quality"
                    ),
                ),
                ("reason", models.TextField(blank=True, verbose_name="reason")),
                (
                    "time_to_grade_ms",
                    models.PositiveIntegerField(
                        blank=True, null=True, verbose_name="time to grade (ms)"
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, db_index=True, verbose_name="created"),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="grades",
                        to="arena.campaign",
                        verbose_name="campaign",
                    ),
                ),
                (
                    "contestant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="arena.contestant",
                        verbose_name="contestant",
                    ),
                ),
                (
                    "evaluator",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="evaluator",
                    ),
                ),
                (
                    "question",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="arena.question",
                        verbose_name="question",
                    ),
                ),
                (
                    "grading",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="grade",
                        to="arena.grading",
                        verbose_name="grading",
                    ),
                ),
            ],
            options={
                "verbose_name": "answer grade",
                "verbose_name_plural": "answer grades",
                "ordering": ["created_at", "id"],
            },
        ),
        migrations.AddIndex(
            model_name="grading",
            index=models.Index(
                fields=["campaign", "evaluator", "question"], name="arena_gradi_campaig_e1005b_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="grade",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("overall__isnull", True),
                    models.Q(("overall__gte", 1), ("overall__lte", 10)),
                    _connector="OR",
                ),
                name="grade_overall_1_to_10",
            ),
        ),
        migrations.AddConstraint(
            model_name="grade",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("helpfulness__isnull", True),
                    models.Q(("helpfulness__gte", 1), ("helpfulness__lte", 10)),
                    _connector="OR",
                ),
                name="grade_helpfulness_1_to_10",
            ),
        ),
        migrations.AddConstraint(
            model_name="grade",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("correctness__isnull", True),
                    models.Q(("correctness__gte", 1), ("correctness__lte", 10)),
                    _connector="OR",
                ),
                name="grade_correctness_1_to_10",
            ),
        ),
        migrations.AddConstraint(
            model_name="grade",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("harmlessness__isnull", True),
                    models.Q(("harmlessness__gte", 1), ("harmlessness__lte", 10)),
                    _connector="OR",
                ),
                name="grade_harmlessness_1_to_10",
            ),
        ),
        migrations.AddConstraint(
            model_name="grade",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("language_quality__isnull", True),
                    models.Q(("language_quality__gte", 1), ("language_quality__lte", 10)),
                    _connector="OR",
                ),
                name="grade_language_quality_1_to_10",
            ),
        ),
        migrations.AddConstraint(
            model_name="grade",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("overall__isnull", False),
                    models.Q(
                        ("correctness__isnull", False),
                        ("harmlessness__isnull", False),
                        ("helpfulness__isnull", False),
                        ("language_quality__isnull", False),
                    ),
                    _connector="OR",
                ),
                name="grade_overall_or_every_criterion",
            ),
        ),
    ]
