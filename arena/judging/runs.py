"""Judge runs: choose the answer pairs of a campaign, create one judgment per pair, order and
trial (or per answer and trial in single mode), queue them on the judge's generation queue, and
execute each one idempotently.

State machine of a Judgment, as of an Answer: pending → running → done | unparsed | failed, with
compare-and-set updates, so a redelivered or duplicated task never judges twice nor overwrites
a finished judgment. ``unparsed`` is a finished judgment whose text held no readable verdict:
kept with its raw text and reason, counted, never retried (the model answered; asking again
would bias the sample towards parseable verdicts).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from arena import dispatch
from arena.generation import backend
from arena.generation.backend import (
    BackendUnavailable,
    ChatMessage,
    GenerationFailed,
    GenerationRequest,
    SamplingConfig,
)
from arena.judging import prompts, store
from arena.judging.verdicts import parse_grade, parse_pairwise
from arena.models import Campaign, Judge, JudgeRun, Judgment

logger = logging.getLogger(__name__)

Pairs = Literal["all"] | int
FALLBACK_NOTE = "read by the fallback rule (last line), not a [[…]] marker"


class JudgeConfigError(ValueError):
    """The judge's configuration cannot run (a broken template, nothing to judge)."""


def judge_config(judge: Judge) -> dict[str, Any]:
    """Everything that changes what the judge writes, frozen into a run."""
    system = judge.system_prompt or prompts.default_system(judge.mode, judge.language)
    template = judge.prompt_template or prompts.default_template(judge.mode, judge.language)
    errors = prompts.template_errors(template, judge.mode)
    if errors:
        raise JudgeConfigError("; ".join(errors))
    return {
        "judge": judge.name,
        "mode": judge.mode,
        "language": judge.language,
        "system_prompt": system,
        "template": template,
        "use_reference": judge.use_reference,
        "temperature": judge.temperature,
        "top_p": judge.top_p,
        "max_tokens": judge.max_tokens,
        "seed": judge.seed,
        "strong_weight": judge.strong_weight,
        "serving_id": judge.serving_id,
        "queue": judge.queue_name,
        "price_input": judge.price_input,
        "price_output": judge.price_output,
    }


def _choose(
    pairs: list[store.AnswerPair], voted: dict[tuple[int, int], int], limit: int | None, seed: int
) -> list[store.AnswerPair]:
    """All pairs, or ``limit`` of them: those humans voted on first (most votes first), then a
    seeded random sample of the rest, so that a small run still measures agreement."""
    if limit is None or limit >= len(pairs):
        return pairs
    rest = [p for p in pairs if (p.lo, p.hi) not in voted]
    random.Random(seed).shuffle(rest)  # noqa: S311 - a reproducible sample, not a secret
    first = sorted((p for p in pairs if (p.lo, p.hi) in voted), key=lambda p: -voted[(p.lo, p.hi)])
    return (first + rest)[:limit]


@transaction.atomic
def judge_run_create(
    *,
    campaign: Campaign,
    judge: Judge,
    trials: int | None = None,
    pairs: Pairs = "all",
    combine_weight: float = 0.0,
    created_by: Any = None,
    seed: int = 0,
) -> JudgeRun:
    """Create a run of ``judge`` over ``campaign`` with its judgments and queue them after
    commit. Pairwise: both orders of every chosen pair in every trial. Single: every answer of
    the chosen pairs in every trial. Raises JudgeConfigError when there is nothing to judge."""
    config = judge_config(judge)
    trials = judge.trials if trials is None else trials
    if not 1 <= trials <= 50:
        raise JudgeConfigError("trials must be between 1 and 50")
    if not math.isfinite(combine_weight) or not 0.0 <= combine_weight <= 100.0:
        raise JudgeConfigError("the combined-ranking weight must be between 0 and 100")
    limit = None if pairs == "all" else int(pairs)
    if limit is not None and limit < 1:
        raise JudgeConfigError("pairs must be 'all' or a positive number")
    candidates = store.campaign_pairs(campaign_id=campaign.pk)
    chosen = _choose(candidates, store.voted_pairs(campaign_id=campaign.pk), limit, seed)
    if not chosen:
        raise JudgeConfigError(
            "the campaign has no two done answers to one question: generate answers first"
        )
    run = JudgeRun.objects.create(
        campaign=campaign,
        judge=judge,
        trials=trials,
        pairs_limit=limit,
        config=config,
        combine_weight=combine_weight,
        created_by=created_by,
    )
    rows: list[Judgment] = []
    if judge.mode == Judge.Mode.PAIRWISE:
        for pair in chosen:
            for trial in range(trials):
                rows.append(_judgment(run, pair, trial, swapped=False))
                rows.append(_judgment(run, pair, trial, swapped=True))
    else:
        answers = {p.lo: (p.question, p.lo_contestant) for p in chosen}
        answers.update({p.hi: (p.question, p.hi_contestant) for p in chosen})
        for answer_id, (question_id, contestant_id) in sorted(answers.items()):
            rows.extend(
                Judgment(
                    run=run,
                    question_id=question_id,
                    answer_a_id=answer_id,
                    contestant_a_id=contestant_id,
                    trial=trial,
                )
                for trial in range(trials)
            )
    Judgment.objects.bulk_create(rows, batch_size=2000)
    judge_run_enqueue(run=run)
    return run


def _judgment(run: JudgeRun, pair: store.AnswerPair, trial: int, *, swapped: bool) -> Judgment:
    first, second = (pair.hi, pair.lo) if swapped else (pair.lo, pair.hi)
    c_first, c_second = (
        (pair.hi_contestant, pair.lo_contestant)
        if swapped
        else (pair.lo_contestant, pair.hi_contestant)
    )
    return Judgment(
        run=run,
        question_id=pair.question,
        answer_a_id=first,
        answer_b_id=second,
        contestant_a_id=c_first,
        contestant_b_id=c_second,
        trial=trial,
    )


@transaction.atomic
def judge_run_enqueue(*, run: JudgeRun, retry_failed: bool = False) -> int:
    """Queue every pending judgment of ``run`` (again: an earlier message may be lost; a
    duplicate is harmless), every running one whose claim is stale (its worker died and its
    message may be gone) and, with ``retry_failed``, the failed ones too. Finished ones never."""
    if retry_failed:
        Judgment.objects.filter(run=run, status=Judgment.Status.FAILED).update(
            status=Judgment.Status.PENDING, reason="", attempts=0
        )
    stale = timezone.now() - dt.timedelta(seconds=settings.ARENA_GENERATION_HARD_LIMIT)
    ids = list(
        Judgment.objects.filter(run=run)
        .filter(
            Q(status=Judgment.Status.PENDING)
            | Q(status=Judgment.Status.RUNNING, started_at__lt=stale)
        )
        .values_list("id", flat=True)
    )
    dispatch.judgments_after_commit(judgment_ids=ids, queue=str(run.config["queue"]))
    return len(ids)


class JudgmentBusy(Exception):
    """Another worker holds a fresh claim on this judgment."""


def judgment_claim(*, judgment_id: int) -> bool:
    """Compare-and-set pending → running (a running one older than the hard time limit
    belongs to a dead worker). False when finished or gone; JudgmentBusy when claimed."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.ARENA_GENERATION_HARD_LIMIT)
    claimed = (
        Judgment.objects.filter(pk=judgment_id)
        .filter(
            Q(status=Judgment.Status.PENDING)
            | Q(status=Judgment.Status.RUNNING, started_at__lt=stale)
        )
        .update(status=Judgment.Status.RUNNING, started_at=now, attempts=F("attempts") + 1)
    )
    if claimed == 1:
        return True
    if Judgment.objects.filter(pk=judgment_id, status=Judgment.Status.RUNNING).exists():
        raise JudgmentBusy(judgment_id)
    return False


def judgment_release(*, judgment_id: int) -> None:
    """Give a claimed judgment back (a transient error: the task retries)."""
    Judgment.objects.filter(pk=judgment_id, status=Judgment.Status.RUNNING).update(
        status=Judgment.Status.PENDING
    )


def judgment_fail(*, judgment_id: int, reason: str) -> None:
    """Record a permanent failure; a finished judgment is never touched."""
    updated = Judgment.objects.filter(
        pk=judgment_id, status__in=[Judgment.Status.PENDING, Judgment.Status.RUNNING]
    ).update(
        status=Judgment.Status.FAILED,
        reason=reason[:2000] or "unknown error",
        finished_at=timezone.now(),
    )
    if updated:
        _after_finish(judgment_id)


@dataclass(frozen=True)
class JudgePrompt:
    system: str
    user: str


def judgment_prompt(*, judgment: Judgment, config: dict[str, Any]) -> JudgePrompt:
    """The system and user messages of one judgment, from the run's frozen configuration."""
    question = judgment.question
    language = str(config["language"])
    reference = question.reference_answer if config["use_reference"] else ""
    sides = [judgment.answer_a] + ([judgment.answer_b] if judgment.answer_b is not None else [])
    turns = [str(t) for t in question.turns]
    conversations = tuple(
        prompts.Conversation(
            first=answer.shown_text,
            followups=tuple(
                (turn, str(f.get("shown", "")) if isinstance(f, dict) else "")
                for turn, f in zip(turns, answer.followups, strict=False)
            ),
        )
        for answer in sides
    )
    user = prompts.render(
        str(config["template"]),
        language=language,
        question=question.text,
        reference=reference,
        answers=conversations,
    )
    return JudgePrompt(system=str(config["system_prompt"]), user=user)


def judgment_sampling(*, config: dict[str, Any], trial: int) -> SamplingConfig:
    """The run's sampling; a fixed seed moves on by trial, so trials are distinct draws."""
    seed = config.get("seed")
    return SamplingConfig(
        temperature=float(config["temperature"]),
        top_p=float(config["top_p"]),
        max_tokens=int(config["max_tokens"]),
        seed=None if seed is None else int(seed) + trial,
    )


def judgment_execute(*, judgment_id: int) -> str:
    """Run one judgment, idempotently: "done", "unparsed", "failed" or "skipped" (finished, or
    someone else's). Raises BackendUnavailable for a retry, JudgmentBusy while claimed."""
    if not judgment_claim(judgment_id=judgment_id):
        return "skipped"
    judgment = Judgment.objects.select_related("run", "question", "answer_a", "answer_b").get(
        pk=judgment_id
    )
    config = judgment.run.config
    serving = store.serving_get(contestant_id=int(config["serving_id"]))
    if serving is None:
        judgment_fail(judgment_id=judgment_id, reason="the judge's serving contestant is gone")
        return "failed"
    message = judgment_prompt(judgment=judgment, config=config)
    request = GenerationRequest(
        request_id=f"judgment-{judgment_id}-{judgment.attempts}",
        messages=(ChatMessage("user", message.user),),
        sampling=judgment_sampling(config=config, trial=judgment.trial),
        system_prompt=message.system,
    )
    # Judging takes seconds: give the connection back to the pool meanwhile (as answers do).
    connection.close()
    started = time.monotonic()
    try:
        result = backend.generate(
            request, serving, timeout=float(settings.ARENA_GENERATION_SOFT_LIMIT)
        )
    except BackendUnavailable:
        judgment_release(judgment_id=judgment_id)
        raise
    except GenerationFailed as exc:
        judgment_fail(judgment_id=judgment_id, reason=f"generation failed: {exc}")
        return "failed"
    return judgment_store(
        judgment_id=judgment_id,
        text=result.text,
        mode=str(config["mode"]),
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        finish_reason=result.finish_reason,
        latency_ms=int((time.monotonic() - started) * 1000),
    )


@transaction.atomic
def judgment_store(
    *,
    judgment_id: int,
    text: str,
    mode: str,
    prompt_tokens: int,
    completion_tokens: int,
    finish_reason: str,
    latency_ms: int,
) -> str:
    """Parse and store a finished judge call; only a running judgment is written."""
    parsed = parse_pairwise(text) if mode == Judge.Mode.PAIRWISE else parse_grade(text)
    if parsed.ok:
        status, reason = Judgment.Status.DONE, FALLBACK_NOTE if parsed.fallback else ""
    else:
        status, reason = Judgment.Status.UNPARSED, parsed.reason
        if finish_reason == "length":
            reason += " (the output hit max tokens)"
    updated = Judgment.objects.filter(pk=judgment_id, status=Judgment.Status.RUNNING).update(
        status=status,
        verdict=parsed.verdict,
        grade=parsed.grade,
        raw_text=text,
        reason=reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
        finished_at=timezone.now(),
    )
    if not updated:
        logger.info("judgment %s was finished elsewhere; result dropped", judgment_id)
        return "skipped"
    _after_finish(judgment_id)
    return str(status)


def _after_finish(judgment_id: int) -> None:
    """When a run's last judgment finishes, its report is computed (on the default queue).

    Judgments of one run finish at the same moment on many worker threads. Each counts the
    unfinished ones only once it holds the run's row lock, which it keeps until its own
    finish commits; so whoever counts last sees every other finish committed. Counting
    without the lock, the last two could each see the other still running and neither would
    queue the report."""
    run_id = store.run_of(judgment_id=judgment_id)
    if run_id is None:
        return
    with transaction.atomic():
        store.run_lock(run_id=run_id)
        if not store.run_unfinished(run_id=run_id):
            dispatch.judge_report_after_commit(run_id=run_id)


def judge_runs_retry(*, runs: Iterable[JudgeRun]) -> int:
    """Queue the failed judgments of these runs again."""
    return sum(judge_run_enqueue(run=run, retry_failed=True) for run in runs)
