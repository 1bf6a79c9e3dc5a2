"""Attacks on what leaves the server: a CSV export that a spreadsheet would run, and a
`make run | tee run.log` whose Ctrl-C left the servers running."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from arena.devserver import ROOT, _free_port, _redis_binary
from arena.models import Contestant
from arena.ratings.recompute import ratings_recompute
from tests import factories
from tests.arena.test_ratings_service import ROUND_ROBIN, cast_votes

# Each would run in a spreadsheet: it skips leading whitespace and reads full-width signs.
FORMULAS = [
    " =1+1",
    "=1+1",
    "\uff1d1+1",  # ＝
    "\uff0bcmd",  # ＋
    "\uff0d2+3",  # －
    "\uff20SUM(A1)",  # ＠
    "\t=cmd",
    "\r=cmd",
    "\n=cmd",
    "\u3000=1",  # ideographic space
    "+1",
    "-1+2",
    "@SUM(A1)",
]


@pytest.mark.django_db
@pytest.mark.parametrize("name", FORMULAS)
def test_a_contestant_named_like_a_formula_is_inert_in_the_csv_export(
    client: Client, settings: Any, name: str
) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 20
    campaign, cs, questions = factories.campaign_with_answers(
        contestants=3, questions=1, leaderboard_public=True, public_refresh="live"
    )
    Contestant.objects.filter(pk=cs[0].pk).update(name=name)
    cast_votes(campaign, questions[0], cs, ROUND_ROBIN)
    ratings_recompute(campaign_id=campaign.pk)
    response = client.get(reverse("leaderboard_csv", args=[campaign.slug]))
    assert response.status_code == 200
    cells = [row["contestant"] for row in csv.DictReader(io.StringIO(response.content.decode()))]
    assert "'" + name in cells
    assert name not in cells


@pytest.mark.parametrize("value", ["Model A", "한국어 모델", "1+1", "a=b", "x-y", 3.5, -2, None])
def test_ordinary_cells_are_left_alone(value: object) -> None:
    from arena.views import _csv_cell

    assert _csv_cell(value) == value


# make run and Ctrl-C ----------------------------------------------------------------------------


def _running_in_groups(groups: list[int]) -> list[int]:
    """Live (not zombie) processes in these process groups: each child of the devserver leads
    one, with its own children (Celery's pool, say) in it."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        state, pgid = fields[0], int(fields[2])
        if pgid in groups and state != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.timeout(180)
def test_ctrl_c_with_a_closed_stdout_stops_every_process(tmp_path: Path) -> None:
    """`make run | tee run.log`, then Ctrl-C: tee dies with the devserver's stdout open on
    it, and every line the devserver prints while stopping hits a closed pipe."""
    redis_port = _free_port()
    redis = subprocess.Popen(
        [_redis_binary(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    # Its own SQLite file and Redis: the stack's worker must not take other tests' tasks.
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(ARENA_VAR_DIR=str(tmp_path), REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        [sys.executable, "-m", "arena.devserver", "--no-generation", "--port", str(_free_port())],
        cwd=ROOT,
        env=env,
        stdout=write_end,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(write_end)
    reader = os.fdopen(read_end, "r", encoding="utf-8", errors="replace")
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 150
        for line in reader:  # what tee would show, until the stack is up
            pids += [int(p) for p in re.findall(r"started \S+ \(pid (\d+)", line)]
            if "Arena is up" in line or time.monotonic() > deadline:
                break
        assert len(pids) >= 3, pids  # web, worker, beat
        reader.close()  # tee is gone
        os.kill(server.pid, signal.SIGINT)
        server.wait(timeout=60)
        left = _running_in_groups(pids)
        assert not left, f"still running after Ctrl-C: {left}"
    finally:
        for pid in [server.pid, *pids]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        server.wait(timeout=10)
        redis.terminate()
        redis.wait(timeout=10)
