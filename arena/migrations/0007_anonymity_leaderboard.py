from django.db import migrations, models


def unset_default_reveals(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Before this migration "yes" was the default and no one could tell an explicit yes from
    # it; unset, a team campaign still reveals and an open one no longer does (issue #11).
    apps.get_model("arena", "Campaign").objects.filter(reveal_after_vote=True).update(
        reveal_after_vote=None
    )


class Migration(migrations.Migration):
    dependencies = [
        ("arena", "0006_taint"),
    ]

    operations: list[migrations.operations.base.Operation] = [
        migrations.AlterField(
            model_name="campaign",
            name="reveal_after_vote",
            field=models.BooleanField(
                blank=True,
                choices=[
                    (None, "Default: yes in a team campaign, no in an open one"),
                    (True, "Yes"),
                    (False, "No"),
                ],
                default=None,
                help_text=(
                    "In an open campaign a stranger who learns each model's style from reveals "
                    "can vote for it later."
                ),
                null=True,
                verbose_name="reveal identities after the vote",
            ),
        ),
        migrations.RunPython(unset_default_reveals, migrations.RunPython.noop),
        migrations.AddField(
            model_name="campaign",
            name="public_refresh",
            field=models.CharField(
                choices=[
                    ("closed", "Nothing until the campaign closes"),
                    ("daily", "The ratings as they stood at the start of the day (UTC)"),
                    ("live", "The latest ratings, moving with every vote"),
                ],
                default="closed",
                help_text=(
                    "What everyone but staff sees of a public leaderboard. A leaderboard that "
                    "moves with each vote lets an evaluator tell which model an answer came from."
                ),
                max_length=8,
                verbose_name="public leaderboard shows",
            ),
        ),
    ]
