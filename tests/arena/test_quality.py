"""Vote quality against PostgreSQL: the per-evaluator report and command, exclusions with their
audit trail, the snapshot's exclusion set and the "everything" leaderboard, and the one rule of
which votes count (ORM and SQL) with control and excluded votes."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import numpy as np
import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from arena.models import Battle, Campaign, Exclusion, RatingSnapshot, Vote
from arena.quality import exclusions
from arena.quality.read import evaluator_quality_list
from arena.ranking.crowds import Crowd, crowd_simulate
from arena.ratings import store
from arena.ratings.recompute import ratings_recompute
from arena.ratings.snapshot import Snapshot, campaign_scope
from tests.factories import (
    AnswerFactory,
    CampaignFactory,
    ContestantFactory,
    QuestionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=False)

OUTCOME = {0: Vote.Outcome.A, 1: Vote.Outcome.B, 2: Vote.Outcome.TIE, 3: Vote.Outcome.BOTH_BAD}


def _load(crowd: Crowd, *, imported: bool = False, **campaign_fields: object) -> Campaign:
    """The crowd's votes as battles and votes of one campaign: one user per voter (or, with
    ``imported``, the session ``import:judge-<n>``), one question per vote."""
    campaign = CampaignFactory(**campaign_fields)
    n = crowd.votes.n_models
    contestants = [ContestantFactory() for _ in range(n)]
    campaign.contestants.add(*contestants)
    users = [None if imported else UserFactory() for _ in range(crowd.votes.n_voters)]
    question = QuestionFactory()
    answers = [AnswerFactory(question=question, contestant=c) for c in contestants]
    now = timezone.now()
    battles = []
    for k in range(crowd.votes.voter.size):
        voter = int(crowd.votes.voter[k])
        battles.append(
            Battle(
                code=uuid.uuid4(),
                campaign=campaign,
                evaluator=users[voter],
                session_key=f"import:judge-{voter}" if imported else "",
                question=question,
                answer_a=answers[int(crowd.votes.a[k])],
                answer_b=answers[int(crowd.votes.b[k])],
                state=Battle.State.VOTED,
                expires_at=now,
            )
        )
    Battle.objects.bulk_create(battles, batch_size=2000)
    votes = [
        Vote(
            battle=battle,
            campaign=campaign,
            evaluator=battle.evaluator,
            question=question,
            contestant_a=contestants[int(crowd.votes.a[k])],
            contestant_b=contestants[int(crowd.votes.b[k])],
            outcome=OUTCOME[int(crowd.votes.outcome[k])],
            time_to_vote_ms=8000,
            created_at=now - dt.timedelta(seconds=crowd.votes.voter.size - k),
        )
        for k, battle in enumerate(battles)
    ]
    Vote.objects.bulk_create(votes, batch_size=2000)
    return campaign


@pytest.fixture
def crowd() -> Crowd:
    theta = np.linspace(1.5, -1.5, 8)
    return crowd_simulate(
        theta,
        rng=np.random.default_rng(5),
        honest=30,
        random=0,
        left=2,
        shills=2,
        votes_per_voter=60,
    )


def _names(campaign: Campaign, crowd: Crowd, kind: str) -> set[str]:
    rows = {
        b.evaluator_id: b.evaluator.username
        for b in Battle.objects.filter(campaign=campaign).select_related("evaluator")
    }
    order = sorted(rows)  # users were made in voter order
    return {rows[order[int(k)]] for k in crowd.of_kind(kind)}  # type: ignore[arg-type]


def _snapshot_payload(campaign: Campaign) -> object:
    row = (
        RatingSnapshot.objects.filter(scope=campaign_scope(campaign.pk))
        .order_by("-computed_at", "-id")
        .first()
    )
    assert row is not None
    return row.payload


def _snapshot(campaign: Campaign) -> Snapshot:
    return Snapshot.from_json(_snapshot_payload(campaign))


def test_command_json_lists_every_evaluator_with_flag_and_reasons(crowd: Crowd) -> None:
    campaign = _load(crowd)
    out = io.StringIO()
    call_command(
        "evaluator_quality", "--campaign", campaign.slug, "--json", "--rounds", "0", stdout=out
    )
    rows = json.loads(out.getvalue())
    assert len(rows) == crowd.votes.n_voters
    by_name = {r["evaluator"]: r for r in rows}
    for name in _names(campaign, crowd, "shill") | _names(campaign, crowd, "left"):
        assert by_name[name]["flagged"] is True
        assert by_name[name]["reasons"]
    honest = _names(campaign, crowd, "honest")
    assert sum(by_name[n]["flagged"] for n in honest) <= 1
    row = by_name[next(iter(honest))]
    assert row["votes"] == 60
    assert row["median_ms"] == 8000
    assert {"side_a", "ties", "consensus", "gold", "self_agreement", "outlier"} <= row.keys()
    assert 0 <= row["side_a"]["ci_lower"] <= row["side_a"]["share"] <= row["side_a"]["ci_upper"]
    # The table form names the flag's reasons too.
    table = io.StringIO()
    call_command("evaluator_quality", "--campaign", campaign.slug, "--rounds", "0", stdout=table)
    assert "side A won" in table.getvalue()


def test_imported_battles_keep_their_judge_as_the_evaluator(crowd: Crowd) -> None:
    campaign = _load(crowd, imported=True)
    report = evaluator_quality_list(campaign=campaign, agreement_rounds=0)
    names = {e.evaluator for e in report.evaluators}
    assert names == {f"judge-{k}" for k in range(crowd.votes.n_voters)}
    flagged = {e.evaluator for e in report.evaluators if e.flagged}
    assert {f"judge-{int(k)}" for k in crowd.of_kind("shill")} <= flagged


def test_an_exclusion_keeps_the_votes_and_the_snapshot_records_it(crowd: Crowd) -> None:
    campaign = _load(crowd)
    admin = UserFactory(is_staff=True)
    shill = sorted(_names(campaign, crowd, "shill"))[0]
    total = Vote.objects.filter(campaign=campaign).count()
    with transaction.atomic():
        exclusion = exclusions.exclusion_create(
            campaign=campaign, evaluator=shill, reason="votes for one model only", by=admin
        )
    shill_votes = Vote.objects.filter(campaign=campaign, evaluator__username=shill)
    assert shill_votes.count() == 60
    assert all(shill_votes.values_list("excluded", flat=True))
    ratings_recompute(campaign_id=campaign.pk)
    snapshot = _snapshot(campaign)
    assert snapshot.vote_count == total - 60
    assert snapshot.exclusions is not None
    assert snapshot.exclusions.votes == 60
    assert snapshot.exclusions.evaluators == 1
    (entry,) = snapshot.exclusions.exclusions
    assert (entry.id, entry.rule, entry.reason, entry.evaluator, entry.votes) == (
        exclusion.pk,
        "manual",
        "votes for one model only",
        True,
        60,
    )
    assert shill not in json.dumps(_snapshot_payload(campaign))  # no evaluator is named
    assert snapshot.with_excluded is not None
    assert snapshot.with_excluded.votes == total
    # Nothing was deleted.
    assert Vote.objects.filter(campaign=campaign).count() == total
    # Revoking puts the votes back, and keeps the row.
    with transaction.atomic():
        exclusions.exclusion_revoke(exclusion_id=exclusion.pk, reason="checked: honest", by=admin)
    ratings_recompute(campaign_id=campaign.pk)
    snapshot = _snapshot(campaign)
    assert snapshot.vote_count == total
    assert snapshot.exclusions is None
    revoked = Exclusion.objects.get(pk=exclusion.pk)
    assert revoked.revoked_by == admin
    assert revoked.revoke_reason == "checked: honest"


def test_later_votes_of_an_excluded_evaluator_are_left_out_too(crowd: Crowd) -> None:
    campaign = _load(crowd)
    name = sorted(_names(campaign, crowd, "honest"))[0]
    exclusions.exclusion_create(campaign=campaign, evaluator=name, reason="test", by=None)
    late = Vote.objects.filter(campaign=campaign, evaluator__username=name).first()
    assert late is not None
    Vote.objects.filter(pk=late.pk).update(excluded=False)  # as a freshly cast vote is
    ratings_recompute(campaign_id=campaign.pk)
    late.refresh_from_db()
    assert late.excluded


def test_chosen_votes_are_excluded_and_bad_requests_refused(crowd: Crowd) -> None:
    campaign = _load(crowd)
    chosen = list(Vote.objects.filter(campaign=campaign).values_list("pk", flat=True)[:3])
    exclusions.exclusion_create(campaign=campaign, vote_ids=chosen, reason="duplicates", by=None)
    assert Vote.objects.filter(campaign=campaign, excluded=True).count() == 3
    other = CampaignFactory()
    with pytest.raises(exclusions.ExclusionRefused, match="reason"):
        exclusions.exclusion_create(campaign=campaign, vote_ids=chosen, reason="  ", by=None)
    with pytest.raises(exclusions.ExclusionRefused, match="not in this campaign"):
        exclusions.exclusion_create(campaign=other, vote_ids=chosen, reason="x", by=None)
    with pytest.raises(exclusions.ExclusionRefused, match="No evaluator"):
        exclusions.exclusion_create(campaign=campaign, evaluator="nobody", reason="x", by=None)
    with pytest.raises(exclusions.ExclusionRefused, match="either"):
        exclusions.exclusion_create(
            campaign=campaign, evaluator="nobody", vote_ids=chosen, reason="x", by=None
        )


def test_automatic_outlier_rule_is_opt_in_and_respects_a_revoke(crowd: Crowd) -> None:
    campaign = _load(crowd)
    assert exclusions.exclusions_auto_apply(campaign_id=campaign.pk) == []
    Campaign.objects.filter(pk=campaign.pk).update(exclude_flagged=True)
    made = exclusions.exclusions_auto_apply(campaign_id=campaign.pk)
    labels = {e.label for e in made}
    assert _names(campaign, crowd, "shill") <= labels
    assert all(e.rule == "outlier" and e.reason for e in made)
    first = made[0]
    exclusions.exclusion_revoke(exclusion_id=first.pk, reason="reviewed", by=None)
    again = exclusions.exclusions_auto_apply(campaign_id=campaign.pk)
    assert first.label not in {e.label for e in again}


def test_counted_votes_agree_in_orm_and_sql_with_control_and_excluded_votes(crowd: Crowd) -> None:
    campaign = _load(crowd)
    ids = list(Vote.objects.filter(campaign=campaign).order_by("id").values_list("pk", flat=True))
    Vote.objects.filter(pk__in=ids[:10]).update(control=True)
    Vote.objects.filter(pk__in=ids[5:25]).update(excluded=True)
    Vote.objects.filter(pk__in=ids[20:40]).update(tainted=True)
    last = ids[-1]
    for tainted in (False, True):
        for everything in (False, True):
            orm = store.counted_votes(
                campaign_id=campaign.pk, exclude_tainted=tainted, include_excluded=everything
            ).count()
            sql = store._fetch_packed(campaign.pk, last, tainted, everything).shape[0]
            assert orm == sql
    assert (
        store.counted_votes(campaign_id=campaign.pk, exclude_tainted=False).count() == len(ids) - 25
    )


def test_a_campaign_without_votes_has_an_empty_report() -> None:
    campaign = CampaignFactory()
    out = io.StringIO()
    call_command("evaluator_quality", "--campaign", campaign.slug, "--json", stdout=out)
    assert json.loads(out.getvalue()) == []
    assert exclusions.exclusions_auto_apply(campaign_id=campaign.pk) == []
