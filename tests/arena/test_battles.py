from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from arena.battles.read import NotFound, battle_get_for_evaluator
from arena.battles.rules import Owner
from arena.battles.sampler import battle_next, battle_skip
from arena.battles.votes import VoteRefused, vote_cast
from arena.models import Answer, Battle, PairLoad, Vote
from tests import factories

pytestmark = pytest.mark.django_db


def test_next_battle_pairs_two_different_contestants_on_one_question(evaluator: User) -> None:
    campaign, _contestants, _questions = factories.campaign_with_answers()
    battle = battle_next(campaign=campaign, owner=Owner(user=evaluator))
    assert battle is not None
    assert battle.answer_a.contestant_id != battle.answer_b.contestant_id
    assert battle.answer_a.question_id == battle.answer_b.question_id == battle.question_id
    assert battle.evaluator == evaluator


def test_open_battle_is_returned_again_until_voted(evaluator: User) -> None:
    campaign, _c, _q = factories.campaign_with_answers()
    owner = Owner(user=evaluator)
    campaign.evaluators.add(evaluator)  # a member: every battle action checks it
    first = battle_next(campaign=campaign, owner=owner)
    assert first is not None
    assert battle_next(campaign=campaign, owner=owner) == first
    vote_cast(code=str(first.code), owner=owner, outcome="a")
    second = battle_next(campaign=campaign, owner=owner)
    assert second is not None
    assert second != first


def test_questions_are_not_repeated_for_one_evaluator_until_the_pool_is_empty(
    evaluator: User,
) -> None:
    campaign, _c, questions = factories.campaign_with_answers(questions=5)
    owner = Owner(user=evaluator)
    campaign.evaluators.add(evaluator)  # a member: every battle action checks it
    seen = []
    while (battle := battle_next(campaign=campaign, owner=owner)) is not None:
        seen.append(battle.question_id)
        vote_cast(code=str(battle.code), owner=owner, outcome="tie")
    assert sorted(seen) == sorted(q.pk for q in questions)


def test_pairs_with_fewest_battles_come_first() -> None:
    campaign, _contestants, _q = factories.campaign_with_answers(contestants=3, questions=12)
    pairs: Counter[tuple[int, int]] = Counter()
    for _ in range(6):
        owner = Owner(user=factories.UserFactory())
        battle = battle_next(campaign=campaign, owner=owner)
        assert battle is not None
        pair = tuple(sorted((battle.answer_a.contestant_id, battle.answer_b.contestant_id)))
        pairs[pair] += 1  # type: ignore[index]
    assert len(pairs) == 3
    assert set(pairs.values()) == {2}
    assert sorted(PairLoad.objects.values_list("battles", flat=True)) == [2, 2, 2]


def test_sides_are_assigned_at_random() -> None:
    campaign, contestants, _q = factories.campaign_with_answers(contestants=2, questions=40)
    first = contestants[0].pk
    on_a = 0
    for _ in range(40):
        battle = battle_next(campaign=campaign, owner=Owner(user=factories.UserFactory()))
        assert battle is not None
        on_a += battle.answer_a.contestant_id == first
    assert 5 < on_a < 35  # P(failure) ≈ 1e-6 for a fair coin


def test_only_done_unflagged_answers_of_current_config_are_served(evaluator: User) -> None:
    campaign, contestants, questions = factories.campaign_with_answers(
        contestants=2, questions=4, identity_policy="exclude"
    )
    a, b = contestants
    q_pending, q_flagged, q_stale, q_ok = questions
    Answer.objects.filter(question=q_pending, contestant=a).update(status="pending")
    Answer.objects.filter(question=q_flagged, contestant=b).update(flagged=True)
    Answer.objects.filter(question=q_stale, contestant=a).update(config_hash="old")
    owner = Owner(user=evaluator)
    campaign.evaluators.add(evaluator)  # a member: every battle action checks it
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    assert battle.question == q_ok
    vote_cast(code=str(battle.code), owner=owner, outcome="a")
    assert battle_next(campaign=campaign, owner=owner) is None
    Answer.objects.filter(question=q_flagged, contestant=b).update(released=True)
    again = battle_next(campaign=campaign, owner=owner)
    assert again is not None
    assert again.question == q_flagged


def test_redact_policy_still_serves_flagged_answers(evaluator: User) -> None:
    campaign, contestants, (_question,) = factories.campaign_with_answers(
        contestants=2, questions=1, identity_policy="redact"
    )
    Answer.objects.filter(contestant=contestants[0]).update(flagged=True)
    assert battle_next(campaign=campaign, owner=Owner(user=evaluator)) is not None


def test_inactive_or_single_contestants_give_no_battle(evaluator: User) -> None:
    campaign, contestants, _q = factories.campaign_with_answers(contestants=2)
    contestants[1].active = False
    contestants[1].save()
    assert battle_next(campaign=campaign, owner=Owner(user=evaluator)) is None


def test_second_vote_is_refused_with_a_clear_message(evaluator: User) -> None:
    campaign, _c, _q = factories.campaign_with_answers()
    owner = Owner(user=evaluator)
    campaign.evaluators.add(evaluator)  # a member: every battle action checks it
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    vote_cast(code=str(battle.code), owner=owner, outcome="a")
    with pytest.raises(VoteRefused) as info:
        vote_cast(code=str(battle.code), owner=owner, outcome="b")
    assert info.value.code == "already_voted"
    assert Vote.objects.get(battle=battle).outcome == "a"


def test_vote_on_someone_elses_battle_is_refused(evaluator: User) -> None:
    campaign, _c, _q = factories.campaign_with_answers()
    battle = battle_next(campaign=campaign, owner=Owner(user=factories.UserFactory()))
    assert battle is not None
    with pytest.raises(VoteRefused) as info:
        vote_cast(code=str(battle.code), owner=Owner(user=evaluator), outcome="a")
    assert info.value.code == "not_found"
    assert not Vote.objects.exists()


def test_vote_on_a_missing_battle_is_refused(evaluator: User) -> None:
    with pytest.raises(VoteRefused) as info:
        vote_cast(
            code="00000000-0000-0000-0000-000000000000", owner=Owner(user=evaluator), outcome="a"
        )
    assert info.value.code == "not_found"


def test_a_malformed_battle_code_is_no_such_battle(evaluator: User) -> None:
    owner = Owner(user=evaluator)
    with pytest.raises(VoteRefused) as info:
        vote_cast(code="not-a-code", owner=owner, outcome="a")
    assert info.value.code == "not_found"
    with pytest.raises(NotFound):
        battle_get_for_evaluator(code="not-a-code", owner=owner)


def test_vote_on_an_expired_battle_is_refused(evaluator: User) -> None:
    campaign, _c, _q = factories.campaign_with_answers()
    owner = Owner(user=evaluator)
    campaign.evaluators.add(evaluator)  # a member: every battle action checks it
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    Battle.objects.filter(pk=battle.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(VoteRefused) as info:
        vote_cast(code=str(battle.code), owner=owner, outcome="a")
    assert info.value.code == "expired"
    battle.refresh_from_db()
    assert battle.state == "expired"
    assert not Vote.objects.exists()


def test_vote_on_a_skipped_battle_is_refused(evaluator: User) -> None:
    campaign, _c, _q = factories.campaign_with_answers()
    owner = Owner(user=evaluator)
    campaign.evaluators.add(evaluator)  # a member: every battle action checks it
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    assert battle_skip(code=str(battle.code), owner=owner) == (campaign.slug, "stored")
    with pytest.raises(VoteRefused) as info:
        vote_cast(code=str(battle.code), owner=owner, outcome="a")
    assert info.value.code == "closed"


@pytest.mark.parametrize(
    ("outcome", "reason", "code"), [("c", "", "bad_outcome"), ("a", "x" * 2001, "bad_reason")]
)
def test_bad_vote_input_is_refused(evaluator: User, outcome: str, reason: str, code: str) -> None:
    campaign, _c, _q = factories.campaign_with_answers()
    owner = Owner(user=evaluator)
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    with pytest.raises(VoteRefused) as info:
        vote_cast(code=str(battle.code), owner=owner, outcome=outcome, reason=reason)
    assert info.value.code == code


def test_vote_records_time_to_vote_and_denormalised_contestants(evaluator: User) -> None:
    campaign, _c, _q = factories.campaign_with_answers()
    owner = Owner(user=evaluator)
    campaign.evaluators.add(evaluator)  # a member: every battle action checks it
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    Battle.objects.filter(pk=battle.pk).update(served_at=timezone.now() - dt.timedelta(seconds=3))
    vote = vote_cast(code=str(battle.code), owner=owner, outcome="b", reason=" clearer ")
    assert vote.time_to_vote_ms is not None
    assert vote.time_to_vote_ms >= 3000
    assert vote.reason == "clearer"
    assert vote.contestant_a_id == battle.answer_a.contestant_id
    assert vote.contestant_b_id == battle.answer_b.contestant_id
    battle.refresh_from_db()
    assert battle.state == "voted"


def test_rate_limit_refuses_votes_beyond_the_limit(
    evaluator: User, settings: pytest.FixtureRequest
) -> None:
    settings.ARENA_VOTES_PER_MINUTE = 2  # type: ignore[attr-defined]
    campaign, _c, _q = factories.campaign_with_answers(questions=4)
    owner = Owner(user=evaluator)
    campaign.evaluators.add(evaluator)  # a member: every battle action checks it
    for _ in range(2):
        battle = battle_next(campaign=campaign, owner=owner)
        assert battle is not None
        vote_cast(code=str(battle.code), owner=owner, outcome="a")
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    with pytest.raises(VoteRefused) as info:
        vote_cast(code=str(battle.code), owner=owner, outcome="a")
    assert info.value.code == "rate_limited"
    assert info.value.status == 429


def test_rate_limit_counts_an_anonymous_sessions_own_votes_only(
    settings: pytest.FixtureRequest,
) -> None:
    settings.ARENA_VOTES_PER_MINUTE = 2  # type: ignore[attr-defined]
    campaign, _c, _q = factories.campaign_with_answers(questions=4, is_open=True)
    busy, other = Owner(user=None, session_key="busy"), Owner(user=None, session_key="other")
    for _ in range(2):
        battle = battle_next(campaign=campaign, owner=busy)
        assert battle is not None
        vote_cast(code=str(battle.code), owner=busy, outcome="tie")
    refused = battle_next(campaign=campaign, owner=busy)
    assert refused is not None
    with pytest.raises(VoteRefused) as info:
        vote_cast(code=str(refused.code), owner=busy, outcome="a")
    assert info.value.code == "rate_limited"
    battle = battle_next(campaign=campaign, owner=other)
    assert battle is not None
    vote_cast(code=str(battle.code), owner=other, outcome="b")  # another session: not limited
    assert Vote.objects.filter(evaluator__isnull=True).count() == 3


def test_anonymous_sessions_are_separate_owners() -> None:
    campaign, _c, _q = factories.campaign_with_answers(is_open=True)
    one, two = Owner(user=None, session_key="s1"), Owner(user=None, session_key="s2")
    battle = battle_next(campaign=campaign, owner=one)
    assert battle is not None
    with pytest.raises(VoteRefused):
        vote_cast(code=str(battle.code), owner=two, outcome="a")
    vote_cast(code=str(battle.code), owner=one, outcome="a")
    assert Vote.objects.get().evaluator is None


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submits_give_one_vote() -> None:
    campaign, _c, _q = factories.campaign_with_answers()
    user = factories.UserFactory()
    owner = Owner(user=user)
    campaign.evaluators.add(user)  # a member: every battle action checks it
    battle = battle_next(campaign=campaign, owner=owner)
    assert battle is not None
    barrier = threading.Barrier(2)
    results: list[str] = []

    def submit(outcome: str) -> None:
        barrier.wait()
        try:
            vote_cast(code=str(battle.code), owner=owner, outcome=outcome)
            results.append("ok")
        except VoteRefused as exc:
            results.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(o,)) for o in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["already_voted", "ok"]
    assert Vote.objects.filter(battle=battle).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_evaluators_asking_at_once_get_different_work() -> None:
    campaign, _c, _q = factories.campaign_with_answers(contestants=2, questions=2)
    first_user, second_user = factories.UserFactory(), factories.UserFactory()
    chosen = threading.Event()
    picked: dict[str, int] = {}

    def first() -> None:
        # Hold the transaction (and its row locks) open while the second evaluator chooses:
        # the moment two requests really overlap. (The second then waits for this commit on
        # the pair's counter row, so this cannot wait for it to finish.)
        try:
            with transaction.atomic():
                battle = battle_next(campaign=campaign, owner=Owner(user=first_user))
                assert battle is not None
                picked["first"] = battle.question_id
                chosen.set()
                time.sleep(2)
        finally:
            connection.close()

    def second() -> None:
        try:
            chosen.wait(timeout=30)
            battle = battle_next(campaign=campaign, owner=Owner(user=second_user))
            assert battle is not None
            picked["second"] = battle.question_id
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(picked) == {"first", "second"}
    assert picked["first"] != picked["second"], "the second evaluator skipped the locked question"


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_serving_a_battle_commits_asynchronously_but_votes_do_not() -> None:
    campaign, _c, _q = factories.campaign_with_answers()
    user = factories.UserFactory()
    campaign.evaluators.add(user)  # a member: every battle action checks it
    owner = Owner(user=user)
    with transaction.atomic():
        battle = battle_next(campaign=campaign, owner=owner)
        assert _synchronous_commit() == "off"
    assert battle is not None
    assert _synchronous_commit() == "on", "the setting is local to the serving transaction"
    with transaction.atomic():
        vote_cast(code=str(battle.code), owner=owner, outcome="a")
        assert _synchronous_commit() == "on"
    assert Vote.objects.filter(battle=battle).exists()
