from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("arena", "0008_vote_quality"),
    ]

    operations: list[migrations.operations.base.Operation] = [
        migrations.AddIndex(
            model_name="ratingsnapshot",
            index=models.Index(
                fields=["campaign", "scope", "computed_at"], name="snapshot_scope_history"
            ),
        ),
    ]
