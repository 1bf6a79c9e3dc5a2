"""Extended statistics for the sampler (services/battles.py): on arena_answer, contestant_id
nearly determines config_hash, and without being told PostgreSQL multiplies their
selectivities, expects a tenth of the rows, and plans a sort of every candidate instead of
an index walk that stops at the first. PostgreSQL only; nothing to do on SQLite."""

from __future__ import annotations

from typing import Any

from django.db import migrations

CREATE = (
    "CREATE STATISTICS IF NOT EXISTS arena_answer_contestant_config (dependencies) "
    "ON contestant_id, config_hash FROM arena_answer"
)
DROP = "DROP STATISTICS IF EXISTS arena_answer_contestant_config"


def _run(sql: str) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)
            schema_editor.execute("ANALYZE arena_answer")

    return run


class Migration(migrations.Migration):
    dependencies = [("arena", "0003_sampler_indexes")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP))]
