"""`make run` keeps its data in a SQLite file: the evaluator's hot paths, written as SQL
(arena/battles/store.py), must run there too, and so must the rules they splice in. One
subprocess on a fresh SQLite file drives the token API through a campaign until its pool is
empty; another runs the rules' parity tests there."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import django
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    assert connection.vendor == "sqlite", connection.vendor
    call_command("migrate", verbosity=0)

    import json
    from django.test import Client
    from arena.models import Battle, PairLoad, Vote
    from arena.accounts.tokens import api_token_create
    from tests import factories

    campaign, contestants, questions = factories.campaign_with_answers(
        contestants=3, questions=4
    )
    user = factories.UserFactory()
    campaign.evaluators.add(user)
    _token, key = api_token_create(user=user, name="sqlite")
    client = Client(headers={"Authorization": f"Bearer {key}"})
    seen = set()
    for _ in range(len(questions)):
        r = client.post(f"/api/v1/campaigns/{campaign.slug}/next")
        assert r.status_code == 200, r.content
        battle = r.json()["battle"]
        again = client.post(f"/api/v1/campaigns/{campaign.slug}/next").json()["battle"]
        assert again["code"] == battle["code"], "the open battle comes back"
        assert battle["rounds"][0]["a_html"] and battle["rounds"][0]["b_html"]
        r = client.post(
            f"/api/v1/battles/{battle['code']}/vote",
            data=json.dumps({"outcome": "tie"}),
            content_type="application/json",
        )
        assert r.status_code == 201, r.content
        reveal = r.json()["reveal"]
        assert {reveal["a"], reveal["b"]} <= {c.name for c in contestants}
        r = client.post(
            f"/api/v1/battles/{battle['code']}/vote",
            data=json.dumps({"outcome": "a"}),
            content_type="application/json",
        )
        assert r.status_code == 409 and r.json()["code"] == "already_voted", r.content
        seen.add(Battle.objects.get(code=battle["code"]).question_id)
    assert len(seen) == len(questions), "every question once"
    assert client.post(f"/api/v1/campaigns/{campaign.slug}/next").json()["battle"] is None
    vote = Vote.objects.get(battle__code=battle["code"])
    assert vote.evaluator_id == user.pk and vote.time_to_vote_ms is not None
    assert sum(PairLoad.objects.values_list("battles", flat=True)) == len(questions)
    print("sqlite hot paths ok")
    """
)


def test_next_and_vote_run_on_the_sqlite_file_of_make_run(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'arena.sqlite3'}",
        "DEBUG": "true",
        "ALLOWED_HOSTS": "testserver",
        "DJANGO_SETTINGS_MODULE": "arena.settings",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "sqlite hot paths ok" in done.stdout


def test_battle_rules_agree_on_the_sqlite_file_of_make_run(tmp_path: Path) -> None:
    """The parity tests of arena.battles.rules, run again with SQLite as the database."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'arena.sqlite3'}",
        "DEBUG": "true",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--no-header",
            "tests/arena/test_battle_rules.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert "failed" not in done.stdout
