import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("arena", "0007_anonymity_leaderboard"),
    ]

    operations: list[migrations.operations.base.Operation] = [
        migrations.AddField(
            model_name="campaign",
            name="gold_rate",
            field=models.FloatField(
                default=0.0,
                help_text="Battles with a known better answer, mixed in; never counted in ratings.",
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(0.5),
                ],
                verbose_name="share of gold battles",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="repeat_rate",
            field=models.FloatField(
                default=0.0,
                help_text="An earlier battle served again to the same evaluator, sides swapped.",
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(0.5),
                ],
                verbose_name="share of repeat battles",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="overlap_rate",
            field=models.FloatField(
                default=0.0,
                help_text="Another evaluator's battle served again, for inter-rater agreement.",
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(0.5),
                ],
                verbose_name="share of overlap battles",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="daily_vote_cap",
            field=models.PositiveIntegerField(
                blank=True,
                null=True,
                help_text="Empty: no cap. An evaluator at the cap gets no new battle until tomorrow.",
                validators=[django.core.validators.MinValueValidator(1)],
                verbose_name="votes per evaluator per day",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="exclude_flagged",
            field=models.BooleanField(
                default=False,
                help_text="Automatic, audited exclusion, recorded as the rule 'outlier'.",
                verbose_name="leave out voters the outlier test flags",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="gold_accuracy_floor",
            field=models.FloatField(
                blank=True,
                null=True,
                help_text="Empty: off. Applies from five gold votes on.",
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
                verbose_name="leave out evaluators under this gold accuracy",
            ),
        ),
        migrations.CreateModel(
            name="GoldItem",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("note", models.CharField(blank=True, max_length=200, verbose_name="note")),
                ("active", models.BooleanField(default=True, verbose_name="active")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
                (
                    "better",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="arena.answer",
                        verbose_name="better answer",
                    ),
                ),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="gold_items",
                        to="arena.campaign",
                        verbose_name="campaign",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="created by",
                    ),
                ),
                (
                    "question",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="arena.question",
                        verbose_name="question",
                    ),
                ),
                (
                    "worse",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="arena.answer",
                        verbose_name="worse answer",
                    ),
                ),
            ],
            options={
                "verbose_name": "gold item",
                "verbose_name_plural": "gold items",
                "ordering": ["id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("better", models.F("worse")), _negated=True),
                        name="gold_item_two_distinct_answers",
                    ),
                    models.UniqueConstraint(
                        fields=("campaign", "better", "worse"), name="gold_item_unique_in_campaign"
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="battle",
            name="kind",
            field=models.CharField(
                choices=[
                    ("regular", "Regular"),
                    ("gold", "Gold (known better answer)"),
                    ("repeat", "Repeat (same evaluator, sides swapped)"),
                    ("overlap", "Overlap (another evaluator)"),
                ],
                db_default="regular",
                default="regular",
                max_length=8,
                verbose_name="kind",
            ),
        ),
        migrations.AddField(
            model_name="battle",
            name="source",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="arena.battle",
                verbose_name="repeats or overlaps",
            ),
        ),
        migrations.AddField(
            model_name="battle",
            name="gold",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="battles",
                to="arena.golditem",
                verbose_name="gold item",
            ),
        ),
        migrations.AddField(
            model_name="vote",
            name="control",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text="On a gold or repeat battle: kept for the quality figures, never counted.",
                verbose_name="control vote",
            ),
        ),
        migrations.AddField(
            model_name="vote",
            name="excluded",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text="An active exclusion covers it: stored and exported, not counted.",
                verbose_name="excluded",
            ),
        ),
        migrations.AddField(
            model_name="vote",
            name="low_confidence",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text="Cast from a very new session or faster than the reading-time floor.",
                verbose_name="low confidence",
            ),
        ),
        migrations.AddIndex(
            model_name="vote",
            index=models.Index(
                condition=models.Q(("excluded", True)),
                fields=["campaign"],
                name="vote_excluded_by_campaign",
            ),
        ),
        migrations.CreateModel(
            name="Exclusion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "session_key",
                    models.CharField(blank=True, max_length=64, verbose_name="session"),
                ),
                (
                    "label",
                    models.CharField(
                        blank=True,
                        help_text="As the quality page names it.",
                        max_length=200,
                        verbose_name="evaluator",
                    ),
                ),
                (
                    "rule",
                    models.CharField(
                        choices=[
                            ("manual", "An admin's decision"),
                            ("outlier", "Flagged by the outlier test"),
                            ("gold", "Gold accuracy under the campaign's floor"),
                        ],
                        default="manual",
                        max_length=8,
                        verbose_name="rule",
                    ),
                ),
                ("reason", models.TextField(verbose_name="reason")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
                ("revoked_at", models.DateTimeField(blank=True, null=True, verbose_name="revoked")),
                ("revoke_reason", models.TextField(blank=True, verbose_name="reason for revoking")),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="exclusions",
                        to="arena.campaign",
                        verbose_name="campaign",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="decided by",
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
                    "revoked_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="revoked by",
                    ),
                ),
                (
                    "votes",
                    models.ManyToManyField(
                        blank=True, related_name="exclusions", to="arena.vote", verbose_name="votes"
                    ),
                ),
            ],
            options={
                "verbose_name": "exclusion",
                "verbose_name_plural": "exclusions",
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(
                        fields=["campaign", "revoked_at"], name="arena_exclu_campaig_92caef_idx"
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("reason", ""), _negated=True),
                        name="exclusion_has_reason",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("rule__in", ["manual", "outlier", "gold"])),
                        name="exclusion_rule_known",
                    ),
                ],
            },
        ),
    ]
