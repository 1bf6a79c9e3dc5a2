from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.questions.imports import (
    QuestionImportError,
    more_errors_text,
    question_set_import,
    upload_read,
)


class Command(BaseCommand):
    help = "Import a CSV, JSON or JSONL file of questions into a question set (all rows or none)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--set", dest="set_name", required=True, help="question set name")
        parser.add_argument(
            "--update",
            action="store_true",
            help="update questions whose ids already exist instead of refusing the file",
        )
        parser.add_argument("--format", choices=["csv", "json", "jsonl"], default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            result = question_set_import(
                data=self._read(path),
                filename=path.name,
                set_name=options["set_name"],
                mode="update" if options["update"] else "refuse",
                fmt=options["format"],
            )
        except QuestionImportError as exc:
            for error in exc.errors:
                self.stderr.write(f"{path}: {error}")
            if exc.more:
                self.stderr.write(f"{path}: {more_errors_text(exc.more)}")
            raise CommandError(f"{path} was refused; nothing was imported") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.question_set.name}: {result.created} new, {result.updated} updated, "
                f"{result.unchanged} unchanged"
            )
        )

    @staticmethod
    def _read(path: Path) -> bytes:
        """The file, read up to the upload limit (QuestionImportError past it)."""
        try:
            with path.open("rb") as file:
                return upload_read(File(file).chunks(), size=path.stat().st_size)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
