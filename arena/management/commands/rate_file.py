from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from arena.battles.io import BattleImportError, battles_read_file
from arena.ratings.read import leaderboard_rows, leaderboard_table
from arena.ratings.recompute import board_from_battles
from arena.ratings.store import OUTCOME_CODES


class Command(BaseCommand):
    help = (
        "Rebuild a campaign's leaderboard from an exported battles file alone (Parquet, JSON "
        "or JSON Lines from export_battles; no database is read) and print the table the "
        "site shows, so anyone can check a published leaderboard."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="an export_battles file")
        parser.add_argument(
            "--both-bad",
            choices=["tie", "drop"],
            help="count both-bad votes as ties or leave them out (default: the file's "
            "campaign setting, else tie)",
        )
        parser.add_argument("--baseline", help="contestant held at --baseline-rating")
        parser.add_argument("--baseline-rating", type=float, help="default 1000")
        parser.add_argument(
            "--rounds", type=int, help="bootstrap rounds (default: ARENA_BOOTSTRAP_ROUNDS)"
        )
        parser.add_argument(
            "--all-votes",
            action="store_true",
            help="also rate the votes the campaign left out (counted=false)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        try:
            battles = battles_read_file(data)
        except BattleImportError as exc:
            lines = [str(e) for e in exc.errors]
            if exc.more:
                lines.append(f"… and {exc.more} more")
            raise CommandError("the file was refused:\n" + "\n".join(lines)) from None
        meta = battles.settings
        keep = [options["all_votes"] or c for c in battles.counted]
        rounds = options["rounds"] or int(settings.ARENA_BOOTSTRAP_ROUNDS)
        if rounds < 1:
            raise CommandError("--rounds must be at least 1")
        baseline = options["baseline"] or meta.get("baseline")
        rating = options["baseline_rating"]
        if rating is None:
            rating = float(meta.get("baseline_rating") or 1000.0)
        both_bad = options["both_bad"] or meta.get("both_bad") or "tie"
        chosen = [k for k, ok in enumerate(keep) if ok]
        codes = {str(outcome): code for outcome, code in OUTCOME_CODES.items()}
        if not chosen:
            raise CommandError("the file holds no counted votes (see --all-votes)")
        board = board_from_battles(
            model_a=[battles.model_a[k] for k in chosen],
            model_b=[battles.model_b[k] for k in chosen],
            outcome=np.array([codes[battles.outcome[k]] for k in chosen], dtype=np.int64),
            rounds=rounds,
            drop_both_bad=both_bad == "drop",
            anchor=None if not baseline else (str(baseline), float(rating)),
        )
        self.stdout.write(leaderboard_table(leaderboard_rows(board)))
        left_out = len(keep) - len(chosen)
        anchored = (
            f"{baseline} anchored at {rating:g}"
            if board.settings.anchor_applied
            else "ratings average 1000"
        )
        self.stderr.write(
            f"{len(chosen):,} votes rated ({left_out:,} left out as not counted), both-bad "
            f"{'left out' if both_bad == 'drop' else 'as ties'}, {anchored}, "
            f"{rounds} bootstrap rounds"
        )
