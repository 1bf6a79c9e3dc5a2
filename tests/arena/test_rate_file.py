from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from arena.models import Campaign, Vote
from arena.ratings.read import leaderboard_get, leaderboard_table
from arena.ratings.recompute import ratings_recompute
from tests import factories
from tests.arena.test_ratings_service import ROUND_ROBIN, cast_votes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _few_rounds(settings: Any) -> None:
    settings.ARENA_BOOTSTRAP_ROUNDS = 50


@pytest.fixture
def campaign() -> Campaign:
    """Four contestants named against their ids' order, a baseline, both-bad left out, and
    two tainted votes the ratings leave out."""
    cs = [factories.ContestantFactory(name=name) for name in ("zeta", "alpha", "mu", "beta")]
    campaign = factories.CampaignFactory(
        slug="rated", baseline=cs[2], baseline_rating=1100.0, both_bad=Campaign.BothBad.DROP
    )
    q1, q2 = factories.QuestionFactory(), factories.QuestionFactory()
    cast_votes(campaign, q1, cs, ROUND_ROBIN)
    cast_votes(campaign, q2, cs, [(3, 0, "a", 7), (0, 3, "tie", 2), (3, 1, "b", 4), (2, 3, "a", 3)])
    tainted = cast_votes(campaign, q2, cs, [(0, 3, "a", 2)])
    Vote.objects.filter(pk__in=[v.pk for v in tainted]).update(tainted=True)
    ratings_recompute(campaign_id=campaign.pk)
    return campaign


def export(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    call_command("export_battles", "--campaign", "rated", "-o", str(target), stderr=io.StringIO())
    return target


def rate(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("rate_file", str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().rstrip("\n")


@pytest.mark.parametrize("name", ["battles.parquet", "battles.jsonl", "battles.json"])
def test_rate_file_prints_the_sites_table_from_the_export_alone(
    tmp_path: Path, campaign: Campaign, name: str, django_assert_num_queries: Any
) -> None:
    path = export(tmp_path, name)
    site = leaderboard_table(leaderboard_get(campaign=campaign).raw_rows)
    # JSON files carry no campaign settings: they are given as options.
    options = [] if name.endswith(".parquet") else ["--both-bad", "drop", "--baseline", "mu"]
    options += [] if name.endswith(".parquet") else ["--baseline-rating", "1100"]

    with django_assert_num_queries(0):
        printed = rate(path, *options)

    assert printed == site
    assert "mu" in printed
    assert "1100.0" in printed


def test_without_the_campaigns_settings_the_table_differs(
    tmp_path: Path, campaign: Campaign
) -> None:
    path = export(tmp_path, "battles.jsonl")
    site = leaderboard_table(leaderboard_get(campaign=campaign).raw_rows)

    assert rate(path) != site
    assert (
        rate(
            path,
            "--all-votes",
            "--both-bad",
            "drop",
            "--baseline",
            "mu",
            "--baseline-rating",
            "1100",
        )
        != site
    )


def test_parquet_battles_read_into_pandas_with_plain_columns(
    tmp_path: Path, campaign: Campaign
) -> None:
    frame = pd.read_parquet(export(tmp_path, "battles.parquet"))

    assert list(frame.columns) == [
        "question_id",
        "model_a",
        "model_b",
        "winner",
        "judge",
        "turn",
        "language",
        "tstamp",
        "time",
        "counted",
    ]
    assert isinstance(frame["model_a"].dtype, pd.CategoricalDtype)
    assert str(frame["time"].dt.tz) == "UTC"
    assert frame["counted"].dtype == bool
    assert int((~frame["counted"]).sum()) == 2
    assert len(frame) == Vote.objects.filter(campaign=campaign).count()
    assert set(frame["winner"].unique()) <= {"model_a", "model_b", "tie", "tie (bothbad)"}


def test_a_malformed_file_is_refused_with_its_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"model_a": "x", "model_b": "x", "winner": "model_a"}\n')

    with pytest.raises(CommandError, match="refused"):
        rate(path)
