"""Every database read and write of the judging aggregate that is not a state change of one
judgment (those are in `arena.judging.runs`): the pairs a campaign can judge, the judgments of
a run as arrays, the human votes on the same answers, and a run's progress."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db.models import Count, Q, Sum

from arena.battles.rules import servable_answer_q
from arena.models import Answer, Campaign, Contestant, JudgeRun, Judgment, Question, Vote
from arena.ranking import style_features
from arena.ratings.store import counted_votes, vote_weight_expression, vote_weights

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
VERDICT_INDEX = {"A>>B": 0, "A>B": 1, "A=B": 2, "B>A": 3, "B>>A": 4}
HUMAN_LO_SCORE = {
    Vote.Outcome.A: 1.0,
    Vote.Outcome.B: 0.0,
    Vote.Outcome.TIE: 0.5,
    Vote.Outcome.BOTH_BAD: 0.5,
}


@dataclass(frozen=True)
class AnswerPair:
    """Two done answers of distinct contestants to one question; ``lo`` < ``hi`` by id."""

    question: int
    lo: int
    hi: int
    lo_contestant: int
    hi_contestant: int


def campaign_pairs(*, campaign_id: int) -> list[AnswerPair]:
    """Every pair of answers the campaign could show in a battle: the campaign's contestants'
    servable answers (`battles.rules.servable_answer_q`) for their current settings, to the
    questions of its question sets."""
    campaign = Campaign.objects.get(pk=campaign_id)
    contestants = {c.pk: c.config_hash for c in campaign.contestants.all()}
    rows = (
        Answer.objects.filter(
            servable_answer_q(campaign.identity_policy),
            question__question_set__campaigns=campaign,
            contestant_id__in=list(contestants),
        )
        .order_by("question_id", "id")
        .values_list("id", "question_id", "contestant_id", "config_hash")
    )
    per_question: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for answer_id, question_id, contestant_id, config in rows:
        if contestants.get(contestant_id) == config:
            per_question[question_id].append((answer_id, contestant_id))
    pairs: list[AnswerPair] = []
    for question_id, answers in per_question.items():
        for k, (lo, c_lo) in enumerate(answers):
            pairs.extend(
                AnswerPair(question_id, lo, hi, c_lo, c_hi)
                for hi, c_hi in answers[k + 1 :]
                if c_hi != c_lo
            )
    return pairs


def voted_pairs(*, campaign_id: int) -> dict[tuple[int, int], int]:
    """Human votes per answer pair (lo id, hi id) of the campaign, counted votes only."""
    votes = _counted(campaign_id)
    rows = (
        votes.order_by()
        .values_list("battle__answer_a_id", "battle__answer_b_id")
        .annotate(n=Count("id"))
    )
    result: dict[tuple[int, int], int] = defaultdict(int)
    for a, b, n in rows:
        result[(min(a, b), max(a, b))] += n
    return dict(result)


def _counted(campaign_id: int) -> Any:
    policy = Campaign.objects.filter(pk=campaign_id).values_list("tainted_votes", flat=True)
    exclude = policy.first() == Campaign.TaintedVotes.EXCLUDE
    return counted_votes(campaign_id=campaign_id, exclude_tainted=exclude)


def serving_get(*, contestant_id: int) -> Contestant | None:
    return Contestant.objects.filter(pk=contestant_id).first()


def run_of(*, judgment_id: int) -> int | None:
    run_id: int | None = (
        Judgment.objects.filter(pk=judgment_id).values_list("run_id", flat=True).first()
    )
    return run_id


def run_lock(*, run_id: int) -> None:
    """Take the run's row lock until the current transaction ends (see `runs._after_finish`)."""
    list(JudgeRun.objects.select_for_update().filter(pk=run_id).values_list("id", flat=True))


def run_unfinished(*, run_id: int) -> int:
    """Judgments of the run still pending or running."""
    return Judgment.objects.filter(
        run_id=run_id, status__in=[Judgment.Status.PENDING, Judgment.Status.RUNNING]
    ).count()


@dataclass(frozen=True)
class Progress:
    run_id: int
    total: int
    counts: dict[str, int]
    prompt_tokens: int
    completion_tokens: int
    cost: float
    fallback: int

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "total": self.total,
            "counts": self.counts,
            "finished": self.total - self.counts["pending"] - self.counts["running"],
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "estimated_cost": round(self.cost, 6),
            "fallback_parsed": self.fallback,
        }


def run_progress(*, run: JudgeRun) -> Progress:
    """Counts per status, token sums and the estimated cost (the judge's prices per million
    tokens, frozen in the run). Two aggregate queries."""
    counts = dict.fromkeys(Judgment.Status.values, 0)
    for status, n in (
        Judgment.objects.filter(run=run).order_by().values_list("status").annotate(n=Count("id"))
    ):
        counts[status] = n
    sums = Judgment.objects.filter(run=run).aggregate(
        p=Sum("prompt_tokens"),
        c=Sum("completion_tokens"),
        f=Count("id", filter=Q(status=Judgment.Status.DONE) & ~Q(reason="")),
    )
    prompt, completion = int(sums["p"] or 0), int(sums["c"] or 0)
    cost = _cost(run, prompt, completion)
    return Progress(
        run_id=run.pk,
        total=sum(counts.values()),
        counts=counts,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=cost,
        fallback=int(sums["f"] or 0),
    )


def runs_progress(*, runs: list[JudgeRun]) -> dict[int, Progress]:
    """`run_progress` of many runs in two grouped queries (the API's list of runs)."""
    ids = [run.pk for run in runs]
    counts: dict[int, dict[str, int]] = {pk: dict.fromkeys(Judgment.Status.values, 0) for pk in ids}
    for run_id, status, n in (
        Judgment.objects.filter(run_id__in=ids)
        .order_by()
        .values_list("run_id", "status")
        .annotate(n=Count("id"))
    ):
        counts[run_id][status] = n
    sums: dict[int, dict[str, Any]] = {
        row["run_id"]: dict(row)
        for row in Judgment.objects.filter(run_id__in=ids)
        .order_by()
        .values("run_id")
        .annotate(
            p=Sum("prompt_tokens"),
            c=Sum("completion_tokens"),
            f=Count("id", filter=Q(status=Judgment.Status.DONE) & ~Q(reason="")),
        )
    }
    result = {}
    for run in runs:
        row = sums.get(run.pk, {})
        prompt, completion = int(row.get("p") or 0), int(row.get("c") or 0)
        result[run.pk] = Progress(
            run_id=run.pk,
            total=sum(counts[run.pk].values()),
            counts=counts[run.pk],
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=_cost(run, prompt, completion),
            fallback=int(row.get("f") or 0),
        )
    return result


def _cost(run: JudgeRun, prompt: int, completion: int) -> float:
    """Estimated cost: the judge's prices per million tokens, frozen in the run."""
    return (
        prompt * float(run.config.get("price_input", 0.0))
        + completion * float(run.config.get("price_output", 0.0))
    ) / 1e6


def campaign_runs(*, campaign_id: int) -> list[JudgeRun]:
    """The campaign's judge runs, newest first, with their judges."""
    return list(
        JudgeRun.objects.filter(campaign_id=campaign_id)
        .select_related("judge")
        .order_by("-created_at", "-id")
    )


def run_get(*, run_id: int) -> JudgeRun | None:
    run: JudgeRun | None = (
        JudgeRun.objects.filter(pk=run_id).select_related("judge", "campaign").first()
    )
    return run


# Arrays for the report ---------------------------------------------------------------------


@dataclass(frozen=True)
class RunJudgments:
    """A run's parsed judgments as arrays. Pairwise: ``answer_b``/``contestant_b`` set and
    ``verdict`` a `VERDICT_INDEX` code; single: ``grade`` set and ``answer_b`` -1."""

    question: IntArray
    answer_a: IntArray
    answer_b: IntArray
    contestant_a: IntArray
    contestant_b: IntArray
    verdict: IntArray
    grade: FloatArray
    trial: IntArray


def run_judgments(*, run_id: int) -> RunJudgments:
    rows = (
        Judgment.objects.filter(run_id=run_id, status=Judgment.Status.DONE)
        .order_by("id")
        .values_list(
            "question_id",
            "answer_a_id",
            "answer_b_id",
            "contestant_a_id",
            "contestant_b_id",
            "verdict",
            "grade",
            "trial",
        )
    )
    data = list(rows)
    ints = np.array(
        [
            (
                q,
                a,
                -1 if b is None else b,
                ca,
                -1 if cb is None else cb,
                VERDICT_INDEX.get(v, -1),
                t,
            )
            for q, a, b, ca, cb, v, _g, t in data
        ],
        dtype=np.int64,
    ).reshape(-1, 7)
    grades = np.array([np.nan if g is None else g for *_rest, g, _t in data], dtype=np.float64)
    return RunJudgments(
        question=ints[:, 0],
        answer_a=ints[:, 1],
        answer_b=ints[:, 2],
        contestant_a=ints[:, 3],
        contestant_b=ints[:, 4],
        verdict=ints[:, 5],
        grade=grades,
        trial=ints[:, 6],
    )


def answer_lengths(*, answer_ids: IntArray) -> dict[int, tuple[float, ...]]:
    """Style features (`arena.ranking.style_features`) of each answer, follow-ups included."""
    result: dict[int, tuple[float, ...]] = {}
    ids = np.unique(answer_ids).tolist()
    for start in range(0, len(ids), 5000):
        for pk, shown, followups in Answer.objects.filter(
            pk__in=ids[start : start + 5000]
        ).values_list("id", "shown_text", "followups"):
            parts = (
                [shown] + [str(f.get("shown", "")) for f in followups if isinstance(f, dict)]
                if isinstance(followups, list)
                else [shown]
            )
            result[pk] = tuple(float(v) for v in style_features("\n\n".join(parts)))
    return result


@dataclass(frozen=True)
class HumanVotes:
    """The campaign's counted votes grouped per (answer a, answer b, outcome), with the
    question's category and language: the rows the human leaderboard and the agreement use.
    ``weight``: each row's mean vote weight where the campaign's ratings weigh votes
    (`arena.ratings.store.vote_weights`: active sampling, expert votes), else None."""

    answer_a: IntArray
    answer_b: IntArray
    contestant_a: IntArray
    contestant_b: IntArray
    outcome: list[str]
    count: IntArray
    category: list[str]
    language: list[str]
    weight: FloatArray | None = None


def human_votes(*, campaign_id: int) -> HumanVotes:
    weights = vote_weights(campaign=Campaign.objects.get(pk=campaign_id))
    sums: dict[str, Any] = {"n": Count("id")}
    if weights is not None:
        sums["total"] = Sum(vote_weight_expression(weights))
    rows = list(
        _counted(campaign_id)
        .order_by()
        .values_list(
            "battle__answer_a_id",
            "battle__answer_b_id",
            "contestant_a_id",
            "contestant_b_id",
            "outcome",
            "question__category",
            "question__language",
        )
        .annotate(**sums)
    )
    ints = np.array([(r[0], r[1], r[2], r[3], r[7]) for r in rows], dtype=np.int64).reshape(-1, 5)
    mean = None
    if weights is not None:
        mean = np.array([float(r[8]) / r[7] for r in rows], dtype=np.float64)
    return HumanVotes(
        answer_a=ints[:, 0],
        answer_b=ints[:, 1],
        contestant_a=ints[:, 2],
        contestant_b=ints[:, 3],
        outcome=[r[4] for r in rows],
        count=ints[:, 4],
        category=[r[5] for r in rows],
        language=[r[6] for r in rows],
        weight=mean,
    )


def contestant_names(*, ids: list[int]) -> dict[int, str]:
    return dict(Contestant.objects.filter(pk__in=ids).values_list("id", "name"))


def contestant_identities(*, ids: list[int]) -> list[dict[str, Any]]:
    """Name, family, aliases and model of these contestants (the self-preference test)."""
    return [
        {"id": pk, "name": name, "family": family, "aliases": aliases, "model": model}
        for pk, name, family, aliases, model in Contestant.objects.filter(pk__in=ids).values_list(
            "id", "name", "family", "aliases", "model"
        )
    ]


def question_texts(*, ids: list[int]) -> dict[int, tuple[str, str, str]]:
    """(text, category, language) of these questions."""
    return {
        pk: (text, category, language)
        for pk, text, category, language in Question.objects.filter(pk__in=ids).values_list(
            "id", "text", "category", "language"
        )
    }


def answer_texts(*, ids: list[int]) -> dict[int, str]:
    return dict(Answer.objects.filter(pk__in=ids).values_list("id", "shown_text"))


def judgment_texts(*, run_id: int, answer_ids: list[int]) -> dict[tuple[int, int], list[str]]:
    """Raw judge texts per (first answer, second answer) of these answers."""
    result: dict[tuple[int, int], list[str]] = defaultdict(list)
    rows = Judgment.objects.filter(run_id=run_id, answer_a_id__in=answer_ids).values_list(
        "answer_a_id", "answer_b_id", "verdict", "raw_text"
    )
    for a, b, verdict, raw in rows:
        result[(a, -1 if b is None else b)].append(f"{verdict or '—'}: {raw}")
    return dict(result)


def report_store(*, run_id: int, report: dict[str, Any], computed_at: Any) -> None:
    JudgeRun.objects.filter(pk=run_id).update(report=report, report_at=computed_at)
