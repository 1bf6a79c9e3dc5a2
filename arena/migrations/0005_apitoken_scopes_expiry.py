"""API tokens get scopes and an optional expiry. Tokens made before scopes keep what they could
do: a staff member's token gets evaluate, import and export (the endpoints now also check the
user's model permissions, so this grants nothing the account lacks), anyone else's evaluate."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models


def _existing_scopes(apps: Any, schema_editor: Any) -> None:
    token = apps.get_model("arena", "ApiToken")
    token.objects.filter(user__is_staff=True).update(scopes="evaluate import export")


class Migration(migrations.Migration):
    dependencies = [("arena", "0004_answer_statistics")]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="scopes",
            field=models.CharField(default="evaluate", max_length=100, verbose_name="scopes"),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="expires"),
        ),
        migrations.RunPython(_existing_scopes, migrations.RunPython.noop),
    ]
