"""A judge run's report: the judge's leaderboard beside the human one, run-to-run variation,
diagnostics, agreement with the humans and the optional combined ranking.

`report_compute` is the maths on arrays (no database: the benchmark times it on 100,000
judgments); `judge_report_build` reads a run and its campaign's votes and stores the report in
the run, which pages then only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.utils import timezone

from arena.judging import store
from arena.models import Campaign, Judge, JudgeRun
from arena.ranking import (
    Anchor,
    Cells,
    Outcome,
    aggregate,
    bootstrap_ratings,
    bt_fit,
    leaderboard,
    position_bias,
    style_control,
)
from arena.ranking.agreement import (
    Agreement,
    agreement,
    rank_correlation,
    separability,
)
from arena.ranking.judging import (
    SCORE,
    classes,
    composite_bt,
    consistency,
    grade_cells,
    grade_trial_spread,
    judgment_cells,
    length_bias,
    lo_scores,
    trial_spread,
)
from arena.ratings.recompute import MIN_VOTES

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
SEED = 0
# Paired bootstrap rounds behind the rank-correlation intervals (percentiles of a correlation
# need far fewer rounds than a leaderboard's 1000).
CORRELATION_ROUNDS = 200
DISAGREEMENTS = 30
_OUTCOME_OF_VERDICT = np.array(
    [Outcome.A_WINS, Outcome.A_WINS, Outcome.TIE, Outcome.B_WINS, Outcome.B_WINS]
)
HUMAN_CODES = {
    "a": Outcome.A_WINS,
    "b": Outcome.B_WINS,
    "tie": Outcome.TIE,
    "both_bad": Outcome.BOTH_BAD,
}


@dataclass(frozen=True)
class ReportInput:
    """Everything the report needs, as positions into ``names`` and pair ids shared by the
    judgments and the human votes (a pair id names an unordered pair of answers)."""

    mode: str
    names: Sequence[str]
    strong_weight: int
    # Judgments: pairwise rows (first/second shown, verdict code) or single rows (grade).
    first: IntArray
    second: IntArray
    verdict: IntArray
    trial: IntArray
    pair: IntArray
    first_is_lo: BoolArray
    features_first: FloatArray  # (judgments, 4): style features of each side's answer
    features_second: FloatArray
    # Single mode: the graded answer's question, contestant position and grade.
    question: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    grade: FloatArray = field(default_factory=lambda: np.zeros(0))
    grade_answer: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # Human votes, grouped: positions, outcome codes, counts, pair ids (-1: never judged),
    # whether side a showed the pair's lower-id answer, and slice keys.
    h_first: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    h_second: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    h_outcome: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    h_count: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # Each row's mean vote weight where the campaign's ratings weigh votes (None: all 1).
    h_weight: FloatArray | None = None
    h_pair: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    h_first_is_lo: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    h_category: Sequence[str] = ()
    h_language: Sequence[str] = ()
    # Single mode: per pair id, the graded answers (lo, hi) for the judge's pair verdict.
    pair_lo_answer: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pair_hi_answer: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    n_pairs: int = 0
    rounds: int = 1000
    anchor: tuple[str, float] | None = None
    drop_both_bad: bool = False
    combine_weight: float = 0.0
    min_votes: int = MIN_VOTES


def _board_samples(
    cells: Cells,
    names: Sequence[str],
    board_names: Sequence[str],
    rounds: int,
    anchor: tuple[str, float] | None,
) -> FloatArray:
    """Bootstrap ratings of the contestants of a board, in ``board_names`` order: the same
    fit and seed `leaderboard` uses for its intervals."""
    index = np.array([list(names).index(n) for n in board_names], dtype=np.int64)
    sub = cells.restrict(np.sort(index))
    sorted_names = [names[k] for k in np.sort(index).tolist()]
    fit = bt_fit(sub)
    pin = None
    if anchor is not None and anchor[0] in sorted_names:
        pin = Anchor(sorted_names.index(anchor[0]), float(anchor[1]))
    samples = bootstrap_ratings(fit, rounds=rounds, seed=SEED, anchor=pin)
    order = [sorted_names.index(n) for n in board_names]
    return samples[:, order]


def _pair_means(pair: IntArray, score: FloatArray, weight: FloatArray, n_pairs: int) -> FloatArray:
    total = np.bincount(pair, weights=weight, minlength=n_pairs)
    summed = np.bincount(pair, weights=score * weight, minlength=n_pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: FloatArray = np.where(total > 0, summed / total, np.nan)
    return mean


def _judge_pair_scores(inp: ReportInput) -> FloatArray:
    """The judge's mean score of each pair's lower-id answer (NaN: not judged)."""
    if inp.mode == Judge.Mode.PAIRWISE:
        lo = lo_scores(SCORE[inp.verdict], inp.first_is_lo)
        return _pair_means(inp.pair, lo, np.ones(lo.size), inp.n_pairs)
    answers, inverse = np.unique(inp.grade_answer, return_inverse=True)
    mean_grade = np.bincount(inverse, weights=inp.grade) / np.bincount(inverse)
    result = np.full(inp.n_pairs, np.nan)
    if answers.size == 0 or inp.pair_lo_answer.size == 0:
        return result
    lo_pos = np.searchsorted(answers, inp.pair_lo_answer).clip(0, answers.size - 1)
    hi_pos = np.searchsorted(answers, inp.pair_hi_answer).clip(0, answers.size - 1)
    known = (answers[lo_pos] == inp.pair_lo_answer) & (answers[hi_pos] == inp.pair_hi_answer)
    g_lo, g_hi = mean_grade[lo_pos], mean_grade[hi_pos]
    result[known] = np.where(g_lo > g_hi, 1.0, np.where(g_lo < g_hi, 0.0, 0.5))[known]
    return result


def _agreement_section(inp: ReportInput, judge_pair: FloatArray) -> dict[str, Any]:
    """Agreement on the human votes whose answer pair the judge judged, overall and per
    category and language, and the pairs where the two disagree most."""
    if inp.h_pair.size == 0:
        return {"overall": None, "by_category": {}, "by_language": {}, "disagreements": []}
    h_lo = lo_scores(np.array([1.0, 0.0, 0.5, 0.5])[inp.h_outcome], inp.h_first_is_lo)
    judged = inp.h_pair >= 0
    judged[judged] = np.isfinite(judge_pair[inp.h_pair[judged]])
    human_cls = classes(h_lo)
    judge_cls = np.zeros_like(human_cls)
    judge_cls[judged] = classes(judge_pair[inp.h_pair[judged]])

    def measure(keep: BoolArray) -> Agreement:
        return agreement(
            human_cls[keep],
            judge_cls[keep],
            weights=inp.h_count[keep],
            rounds=inp.rounds,
            seed=SEED,
        )

    def slices(keys: Sequence[str]) -> dict[str, Any]:
        values = np.asarray(list(keys), dtype=object)
        out: dict[str, Any] = {}
        for value in sorted({k for k in keys if k}):
            keep = judged & (values == value)
            if keep.any():
                out[value] = measure(keep).to_json()
        return out

    human_pair = _pair_means(
        inp.h_pair[judged], h_lo[judged], inp.h_count[judged].astype(np.float64), inp.n_pairs
    )
    votes_per_pair = np.bincount(
        inp.h_pair[judged], weights=inp.h_count[judged], minlength=inp.n_pairs
    )
    gap = np.abs(human_pair - judge_pair)
    ranked = [
        int(p)
        for p in np.argsort(-np.nan_to_num(gap, nan=-1.0), kind="stable")
        if np.isfinite(gap[p]) and gap[p] > 0
    ][:DISAGREEMENTS]
    return {
        "overall": measure(judged).to_json() if judged.any() else None,
        "by_category": slices(inp.h_category),
        "by_language": slices(inp.h_language),
        "disagreements": [
            {
                "pair": p,
                "human_lo_score": float(human_pair[p]),
                "judge_lo_score": float(judge_pair[p]),
                "gap": float(gap[p]),
                "votes": int(votes_per_pair[p]),
            }
            for p in ranked
        ],
    }


def _style(
    inp: ReportInput,
    outcome: IntArray,
    counts: IntArray,
    shown: Sequence[str],
    anchor: tuple[str, float] | None,
) -> dict[str, Any] | None:
    names = list(inp.names)
    position = np.full(len(names), -1, dtype=np.int64)
    for k, name in enumerate(shown):
        position[names.index(name)] = k
    a, b = position[inp.first], position[inp.second]
    rows = (a >= 0) & (b >= 0)
    if len(shown) < 2 or not rows.any():
        return None
    fit = style_control(
        a[rows],
        b[rows],
        outcome[rows],
        inp.features_first[rows],
        inp.features_second[rows],
        list(shown),
        counts=counts[rows],
        anchor=anchor if anchor is not None and anchor[0] in shown else None,
    )
    return fit.to_json()


def report_compute(inp: ReportInput, *, style: bool = True) -> dict[str, Any]:
    """The whole report as a JSON-serialisable dict (see the module); ``style=False`` leaves
    out style control (the benchmark times it on its own)."""
    n = len(inp.names)
    names = list(inp.names)
    pairwise = inp.mode == Judge.Mode.PAIRWISE
    if pairwise:
        jcells = judgment_cells(
            inp.first, inp.second, inp.verdict, n, strong_weight=inp.strong_weight
        )
        outcome = _OUTCOME_OF_VERDICT[inp.verdict]
        counts = np.where(np.isin(inp.verdict, [0, 4]), inp.strong_weight, 1).astype(np.int64)
    else:
        jcells = grade_cells(inp.question, inp.trial, inp.first, inp.grade, n)
        outcome, counts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    out: dict[str, Any] = {"mode": inp.mode, "judgments": int(inp.first.size)}
    judge_board = None
    if jcells.total:
        judge_board = leaderboard(
            jcells, names, rounds=inp.rounds, seed=SEED, anchor=inp.anchor, min_votes=inp.min_votes
        )
        sandwich = leaderboard(
            jcells, names, ci="sandwich", anchor=inp.anchor, min_votes=inp.min_votes
        )
        board = judge_board.to_json()
        by_name = {s.name: s for s in sandwich.standings}
        for row in board["contestants"]:
            s = by_name[row["name"]]
            row["sandwich_lower"], row["sandwich_upper"] = s.ci_lower, s.ci_upper
        board["separability"] = separability(
            [s.ci_lower for s in judge_board.standings], [s.ci_upper for s in judge_board.standings]
        )
        board["strong_weight"] = inp.strong_weight if pairwise else None
        out["judge_board"] = board
        out["judge_style"] = (
            _style(inp, outcome, counts, judge_board.names, inp.anchor)
            if pairwise and style
            else None
        )
    else:
        out["judge_board"] = None
        out["judge_style"] = None
    if not pairwise and inp.grade.size:
        per = np.bincount(inp.first, weights=inp.grade, minlength=n)
        seen = np.bincount(inp.first, minlength=n)
        out["mean_grades"] = {names[k]: float(per[k] / seen[k]) for k in np.flatnonzero(seen)}
    # Run-to-run variation: each trial rated on its own.
    anchor_obj = None
    if inp.anchor is not None and inp.anchor[0] in names:
        anchor_obj = Anchor(names.index(inp.anchor[0]), float(inp.anchor[1]))
    if pairwise:
        spread = trial_spread(
            inp.first, inp.second, outcome, counts, inp.trial, n, anchor=anchor_obj
        )
    else:
        spread = grade_trial_spread(
            inp.question, inp.trial, inp.first, inp.grade, n, anchor=anchor_obj
        )
    # Each contestant's spread over trials stands beside its bootstrap interval.
    boot = {} if judge_board is None else {s.name: s for s in judge_board.standings}
    out["variation"] = (
        None
        if spread is None
        else {
            "trials": int(spread.ratings.shape[0]),
            "contestants": [
                {
                    "name": names[k],
                    "mean": float(spread.mean[k]),
                    "std": float(spread.std[k]),
                    "lower": float(spread.lower[k]),
                    "upper": float(spread.upper[k]),
                    "per_trial": [float(v) for v in spread.ratings[:, k]],
                    "bootstrap_lower": boot[names[k]].ci_lower,
                    "bootstrap_upper": boot[names[k]].ci_upper,
                }
                for k in np.argsort(-spread.mean).tolist()
                if names[k] in boot
            ],
        }
    )
    # Diagnostics.
    if pairwise and inp.first.size:
        score = SCORE[inp.verdict]
        out["consistency"] = consistency(inp.pair, inp.trial, inp.first_is_lo, score).to_json()
        # Counted per judgment: with strong verdicts weighted (x3) the board's cells would
        # count one judgment several times and narrow the Wilson interval falsely.
        bias = position_bias(judgment_cells(inp.first, inp.second, inp.verdict, n))
        out["position_bias"] = (
            None
            if bias is None
            else {
                "decisive": bias.decisive,
                "first_wins": bias.a_wins,
                "share": bias.share,
                "ci_lower": bias.ci_lower,
                "ci_upper": bias.ci_upper,
            }
        )
        out["length_bias"] = length_bias(
            inp.features_first[:, 0], inp.features_second[:, 0], score
        ).to_json()
        out["strong_share"] = float(np.isin(inp.verdict, [0, 4]).mean())
    else:
        out["consistency"] = out["position_bias"] = out["length_bias"] = None
    # Humans, agreement, correlation.
    # Weighted as the campaign's own ratings weigh its votes (inverse propensity, experts).
    hcells = aggregate(
        inp.h_first, inp.h_second, inp.h_outcome, n, counts=inp.h_count, weights=inp.h_weight
    )
    human_board = None
    if hcells.total:
        human_board = leaderboard(
            hcells,
            names,
            rounds=inp.rounds,
            seed=SEED,
            anchor=inp.anchor,
            drop_both_bad=inp.drop_both_bad,
            min_votes=inp.min_votes,
        )
    out["human_board"] = None if human_board is None else human_board.to_json()
    judge_pair = _judge_pair_scores(inp)
    out["agreement"] = _agreement_section(inp, judge_pair)
    out["correlation"] = None
    if human_board is not None and judge_board is not None:
        common = [s for s in judge_board.names if s in set(human_board.names)]
        if len(common) >= 2:
            counted_h = hcells.without_both_bad() if inp.drop_both_bad else hcells
            rounds = min(inp.rounds, CORRELATION_ROUNDS)
            hs = _board_samples(counted_h, names, human_board.names, rounds, inp.anchor)
            js = _board_samples(jcells, names, judge_board.names, rounds, inp.anchor)
            hi = [list(human_board.names).index(c) for c in common]
            ji = [list(judge_board.names).index(c) for c in common]
            hr = {s.name: s.rating for s in human_board.standings}
            jr = {s.name: s.rating for s in judge_board.standings}
            corr = rank_correlation(
                np.array([hr[c] for c in common]),
                np.array([jr[c] for c in common]),
                hs[:, hi],
                js[:, ji],
            )
            out["correlation"] = corr.to_json()
    # Combined ranking.
    out["combined"] = None
    if inp.combine_weight > 0 and hcells.total and jcells.total:
        counted_h = hcells.without_both_bad() if inp.drop_both_bad else hcells
        anchor_obj = None
        if inp.anchor is not None and inp.anchor[0] in names:
            anchor_obj = Anchor(names.index(inp.anchor[0]), float(inp.anchor[1]))
        combined = composite_bt(
            [(counted_h, 1.0), (jcells, inp.combine_weight)],
            rounds=min(inp.rounds, 200),
            seed=SEED,
            anchor=anchor_obj,
        )
        present = np.flatnonzero(counted_h.votes_per_model() + jcells.votes_per_model())
        out["combined"] = {
            "weights": {"human": 1.0, "judge": inp.combine_weight},
            "contestants": [
                {
                    "name": names[k],
                    "rating": float(combined.ratings[k]),
                    "ci_lower": float(combined.lower[k]),
                    "ci_upper": float(combined.upper[k]),
                }
                for k in sorted(present.tolist(), key=lambda k: -combined.ratings[k])
            ],
        }
    return out


# From the database ---------------------------------------------------------------------------


def self_preference(
    *, judge_identity: dict[str, Any], maker: str, contestants: Sequence[dict[str, Any]]
) -> list[str]:
    """Contestants of the judge's family or maker (or its very model): the judge may favour
    them (self-preference), so their judge ratings need a second look."""

    def terms(row: dict[str, Any]) -> str:
        found = row.get("aliases")
        aliases: list[Any] = found if isinstance(found, list) else []
        return " ".join(
            [str(row["name"]), str(row["family"]), str(row["model"]), *map(str, aliases)]
        ).lower()

    family = str(judge_identity.get("family") or "").strip().lower()
    warnings = []
    for row in contestants:
        reasons = []
        if row["id"] == judge_identity["id"] or row["model"] == judge_identity["model"]:
            reasons.append("the same model as the judge")
        if family and str(row["family"]).strip().lower() == family:
            reasons.append(f"the judge's family ({family})")
        if maker and maker.strip().lower() in terms(row):
            reasons.append(f"the judge's maker ({maker})")
        if reasons:
            warnings.append(f"{row['name']}: {', '.join(reasons)}")
    return warnings


def _positions(ids: IntArray, index: dict[int, int]) -> IntArray:
    return np.array([index[int(v)] for v in ids.tolist()], dtype=np.int64)


def report_input(*, run: JudgeRun, rounds: int | None = None) -> tuple[ReportInput, dict[str, Any]]:
    """Read ``run`` and its campaign's counted votes into a `ReportInput`, and the lookups
    (pair id → answers and question) the pages need to show the disagreements."""
    campaign: Campaign = run.campaign
    judged = store.run_judgments(run_id=run.pk)
    humans = store.human_votes(campaign_id=campaign.pk)
    ids = sorted(
        {
            *judged.contestant_a.tolist(),
            *judged.contestant_b.tolist(),
            *humans.contestant_a.tolist(),
            *humans.contestant_b.tolist(),
        }
        - {-1}
    )
    names_by_id = store.contestant_names(ids=ids)
    names = [names_by_id[i] for i in ids]
    index = {pk: k for k, pk in enumerate(ids)}
    pairwise = run.config["mode"] == Judge.Mode.PAIRWISE
    # Pair ids over both sources: unordered answer pairs.
    ja, jb = judged.answer_a, judged.answer_b
    keys_j = (
        np.column_stack([np.minimum(ja, jb), np.maximum(ja, jb)])
        if pairwise
        else np.zeros((0, 2), dtype=np.int64)
    )
    ha, hb = humans.answer_a, humans.answer_b
    keys_h = np.column_stack([np.minimum(ha, hb), np.maximum(ha, hb)])
    all_keys = np.unique(np.vstack([keys_j, keys_h]).reshape(-1, 2), axis=0)

    def pair_ids(keys: IntArray) -> IntArray:
        if keys.size == 0:
            return np.zeros(0, dtype=np.int64)
        flat = all_keys[:, 0] * (all_keys[:, 1].max() + 1) + all_keys[:, 1]
        want = keys[:, 0] * (all_keys[:, 1].max() + 1) + keys[:, 1]
        found: IntArray = np.searchsorted(flat, want).astype(np.int64)
        return found

    features = store.answer_lengths(answer_ids=np.concatenate([ja, jb[jb >= 0]]))
    zero = (0.0, 0.0, 0.0, 0.0)
    feats_a = np.array([features.get(int(a), zero) for a in ja.tolist()]).reshape(-1, 4)
    feats_b = np.array([features.get(int(b), zero) for b in jb.tolist()]).reshape(-1, 4)
    campaign_anchor = None
    if campaign.baseline_id is not None and campaign.baseline_id in names_by_id:
        campaign_anchor = (names_by_id[campaign.baseline_id], float(campaign.baseline_rating))
    inp = ReportInput(
        mode=str(run.config["mode"]),
        names=names,
        strong_weight=int(run.config.get("strong_weight", 1)),
        first=_positions(judged.contestant_a, index),
        second=_positions(judged.contestant_b, index)
        if pairwise
        else np.zeros(judged.contestant_a.size, dtype=np.int64),
        verdict=judged.verdict if pairwise else np.zeros(judged.verdict.size, dtype=np.int64),
        trial=judged.trial,
        pair=pair_ids(keys_j) if pairwise else np.zeros(0, dtype=np.int64),
        first_is_lo=ja < jb,
        features_first=feats_a,
        features_second=feats_b,
        question=judged.question,
        grade=judged.grade,
        grade_answer=judged.answer_a,
        h_first=_positions(humans.contestant_a, index),
        h_second=_positions(humans.contestant_b, index),
        h_outcome=np.array([HUMAN_CODES[o] for o in humans.outcome], dtype=np.int64),
        h_count=humans.count,
        h_weight=humans.weight,
        h_pair=pair_ids(keys_h),
        h_first_is_lo=ha < hb,
        h_category=humans.category,
        h_language=humans.language,
        pair_lo_answer=all_keys[:, 0].astype(np.int64) if all_keys.size else np.zeros(0, np.int64),
        pair_hi_answer=all_keys[:, 1].astype(np.int64) if all_keys.size else np.zeros(0, np.int64),
        n_pairs=int(all_keys.shape[0]),
        rounds=int(settings.ARENA_BOOTSTRAP_ROUNDS if rounds is None else rounds),
        anchor=campaign_anchor,
        drop_both_bad=campaign.both_bad == Campaign.BothBad.DROP,
        combine_weight=float(run.combine_weight),
    )
    return inp, {"pairs": all_keys.tolist()}


def judge_report_build(*, run_id: int, rounds: int | None = None) -> dict[str, Any]:
    """Compute the run's report from its judgments and the campaign's votes, and store it."""
    run = JudgeRun.objects.select_related("campaign", "judge__serving").get(pk=run_id)
    inp, lookups = report_input(run=run, rounds=rounds)
    report = report_compute(inp)
    progress = store.run_progress(run=run)
    serving = run.judge.serving
    contestants = store.contestant_identities(
        ids=list(run.campaign.contestants.values_list("id", flat=True))
    )
    report["progress"] = progress.to_json()
    report["self_preference"] = self_preference(
        judge_identity={"id": serving.pk, "family": serving.family, "model": serving.model},
        maker=run.judge.maker,
        contestants=contestants,
    )
    pairs = lookups["pairs"]
    for row in report["agreement"]["disagreements"]:
        row["answers"] = pairs[row["pair"]]
    now = timezone.now()
    report["computed_at"] = now.isoformat()
    store.report_store(run_id=run_id, report=report, computed_at=now)
    return report
