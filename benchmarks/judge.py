"""The judge benchmark.

(a) vLLM alone: the judge prompts of one pairwise run (both orders of every pair), all
    submitted at once to an in-process engine with the run's sampling — the baseline, measured
    in this run;
(b) the pipeline: the same judgments as a judge run — one Celery task each on a generation
    worker (threads pool, one engine), prompts built from PostgreSQL, verdicts parsed and
    stored; judgments per second and the ratio b/a;
(c) the judge report (judge leaderboard with bootstrap and sandwich intervals, style control,
    trial variation, diagnostics, human leaderboard, agreement with kappa bootstrap, rank
    correlation with intervals, combined ranking) on 100,000 synthetic judgments and 20,000
    human votes: seconds, target < 1.

Greedy decoding makes (a) and (b) produce the same text. (a)+(b) need local PostgreSQL,
Redis and the demo model; they create and drop the database ``arena_bench_judge``.
``python -m benchmarks.judge --report-only`` runs (c) alone (no database, no model).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB = "arena_bench_judge"
SERVER = "postgres://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/13"
QUEUE = "gen.bench-judge"
QUESTIONS = 16  # x 2 contestants' answers = 16 pairs = 32 judgments (both orders)
MAX_TOKENS = 48


# (c) the report on synthetic arrays ---------------------------------------------------------


def synthetic_input(judgments: int = 100_000, votes: int = 20_000, models: int = 20) -> Any:
    from arena.judging.report import ReportInput

    rng = np.random.default_rng(0)
    strength = rng.normal(scale=1.0, size=models)
    pairs = judgments // 4  # two trials x two orders
    lo_model = rng.integers(0, models, pairs)
    hi_model = (lo_model + rng.integers(1, models, pairs)) % models
    pair = np.repeat(np.arange(pairs), 4)
    trial = np.tile([0, 0, 1, 1], pairs)
    first_is_lo = np.tile([True, False, True, False], pairs)
    first = np.where(first_is_lo, lo_model[pair], hi_model[pair])
    second = np.where(first_is_lo, hi_model[pair], lo_model[pair])
    p = 1.0 / (1.0 + np.exp(-(strength[first] - strength[second] + 0.2)))
    u = rng.random(judgments)
    verdict = np.select([u < p * 0.3, u < p, u < p + 0.1], [0, 1, 2], default=3)
    verdict[(verdict == 3) & (rng.random(judgments) < 0.3)] = 4
    length = rng.integers(20, 600, size=(models, 1)) + rng.integers(0, 200, size=(models, 1))
    feats_first = np.column_stack([length[first, 0], rng.integers(0, 5, (judgments, 3))])
    feats_second = np.column_stack([length[second, 0], rng.integers(0, 5, (judgments, 3))])
    voted = rng.choice(pairs, size=votes)
    h_first_is_lo = rng.random(votes) < 0.5
    h_first = np.where(h_first_is_lo, lo_model[voted], hi_model[voted])
    h_second = np.where(h_first_is_lo, hi_model[voted], lo_model[voted])
    hp = 1.0 / (1.0 + np.exp(-(strength[h_first] - strength[h_second])))
    hu = rng.random(votes)
    h_outcome = np.select([hu < hp * 0.85, hu < hp * 0.85 + 0.1], [0, 2], default=1)
    categories = np.array(["math", "coding", "writing", "reasoning"], dtype=object)
    languages = np.array(["en", "ko"], dtype=object)
    return ReportInput(
        mode="pairwise",
        names=[f"model-{k}" for k in range(models)],
        strong_weight=3,
        first=first,
        second=second,
        verdict=verdict.astype(np.int64),
        trial=trial,
        pair=pair,
        first_is_lo=first_is_lo,
        features_first=feats_first.astype(np.float64),
        features_second=feats_second.astype(np.float64),
        h_first=h_first,
        h_second=h_second,
        h_outcome=h_outcome.astype(np.int64),
        h_count=np.ones(votes, dtype=np.int64),
        h_pair=voted,
        h_first_is_lo=h_first_is_lo,
        h_category=list(categories[rng.integers(0, 4, votes)]),
        h_language=list(languages[rng.integers(0, 2, votes)]),
        n_pairs=pairs,
        rounds=1000,
        combine_weight=0.5,
    )


def report_timing(repeats: int = 3) -> dict[str, Any]:
    from arena.judging.report import report_compute

    inp = synthetic_input()
    report_compute(inp)  # warm caches and imports
    times, with_style = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        report = report_compute(inp, style=False)
        times.append(time.perf_counter() - started)
        started = time.perf_counter()
        report_compute(inp, style=True)
        with_style.append(time.perf_counter() - started)
    return {
        "report_judgments": int(inp.first.size),
        "report_human_votes": int(inp.h_count.sum()),
        "report_seconds": round(min(times), 3),
        "report_with_style_seconds": round(min(with_style), 3),
        "report_kappa": round(report["agreement"]["overall"]["kappa"], 3),
    }


# (a) and (b) --------------------------------------------------------------------------------


def _scratch_db() -> str:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    return f"{SERVER}/{DB}"


def _drop_db() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def _setup(model_dir: Path) -> tuple[Any, Any, dict[str, str]]:
    """A scratch database with a campaign of two contestants' answers and a greedy judge."""
    url = _scratch_db()
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS, "DEBUG": "true"}
    env.setdefault("SECRET_KEY", "benchmark-only")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update({"DATABASE_URL": url, "REDIS_URL": REDIS, "DEBUG": "true"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    import django

    django.setup()
    from arena.models import Answer, Campaign, Contestant, Judge, Question, QuestionSet
    from benchmarks.generation import PROMPTS

    question_set = QuestionSet.objects.create(name="bench-judge")
    contestants = [
        Contestant.objects.create(name=f"c{k}", slug=f"c{k}", backend="vllm", model=f"/m/{k}")
        for k in range(2)
    ]
    for i, prompt in enumerate(PROMPTS[:QUESTIONS]):
        question = Question.objects.create(
            question_set=question_set, external_id=str(i), text=prompt
        )
        for k, contestant in enumerate(contestants):
            text = f"Here is a {'short' if k else 'careful'} answer to: {prompt}\n\n" + (
                "It depends on the details. " * (3 + 2 * k)
            )
            Answer.objects.create(
                question=question,
                contestant=contestant,
                config_hash=contestant.config_hash,
                status="done",
                raw_text=text,
                shown_text=text,
            )
    campaign = Campaign.objects.create(name="bench-judge", slug="bench-judge")
    campaign.question_sets.add(question_set)
    campaign.contestants.add(*contestants)
    serving = Contestant.objects.create(
        name="judge-model",
        slug="judge-model",
        backend="vllm",
        model=str(model_dir),
        queue=QUEUE,
        active=False,
    )
    judge = Judge.objects.create(
        name="bench judge",
        slug="bench-judge",
        serving=serving,
        temperature=0.0,
        max_tokens=MAX_TOKENS,
    )
    return campaign, judge, env


def baseline(model_dir: Path, campaign: Any, judge: Any) -> dict[str, Any]:
    """(a): the run's prompts straight into one in-process engine, all at once."""
    import redis as redis_lib

    from arena.judging.runs import judge_run_create, judgment_prompt, judgment_sampling
    from arena.models import Judgment
    from models_backend.backends.base import ChatMessage, GenerationRequest, ModelSpec
    from models_backend.runtime import Runtime

    run = judge_run_create(campaign=campaign, judge=judge, trials=1)
    redis_lib.Redis.from_url(REDIS).flushdb()  # its tasks: this part runs no worker
    requests = []
    for judgment in Judgment.objects.filter(run=run).select_related(
        "question", "answer_a", "answer_b"
    ):
        message = judgment_prompt(judgment=judgment, config=run.config)
        requests.append(
            GenerationRequest(
                request_id=f"base-{judgment.pk}",
                messages=(ChatMessage("user", message.user),),
                sampling=judgment_sampling(config=run.config, trial=judgment.trial),
                system_prompt=message.system,
            )
        )
    spec = ModelSpec(backend="vllm", model=str(model_dir), enforce_eager=True)
    runtime = Runtime()
    try:
        engine = runtime.get_backend(spec)
        runtime.run(requests[0], spec, timeout=600)  # warm-up

        async def batch() -> float:
            started = time.perf_counter()
            await asyncio.gather(*(engine.generate(r) for r in requests))
            return time.perf_counter() - started

        seconds = runtime.run_coroutine(batch(), timeout=3600)
    finally:
        runtime.shutdown()
    return {"judgments": len(requests), "seconds": seconds}


def pipeline(model_dir: Path, campaign: Any, judge: Any, env: dict[str, str]) -> dict[str, Any]:
    """(b): the same judgments as a judge run on a real generation worker."""
    import redis as redis_lib

    from arena.judging.runs import judge_run_create
    from arena.models import Judgment

    redis_lib.Redis.from_url(REDIS).flushdb()
    log = (ROOT / "var" / "logs").resolve()
    log.mkdir(parents=True, exist_ok=True)
    path = log / "bench-judge-worker.log"
    handle = path.open("wb")
    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "generation_worker",
            "--queue",
            QUEUE,
            "--warm-model",
            str(model_dir),
            "--concurrency",
            "64",
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        deadline = time.monotonic() + 300
        while " ready." not in path.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready; see {path}")
            time.sleep(0.2)

        def finish(run: Any) -> None:
            unfinished = Judgment.objects.filter(run=run, status__in=["pending", "running"])
            deadline = time.monotonic() + 900
            while unfinished.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("the pipeline did not finish")
                time.sleep(0.05)

        finish(judge_run_create(campaign=campaign, judge=judge, trials=1, pairs=1))  # warm-up
        started = time.perf_counter()
        run = judge_run_create(campaign=campaign, judge=judge, trials=1)
        finish(run)
        seconds = time.perf_counter() - started
        statuses = list(Judgment.objects.filter(run=run).values_list("status", flat=True))
        return {
            "judgments": len(statuses),
            "seconds": seconds,
            "unparsed": statuses.count("unparsed"),
            "failed": statuses.count("failed"),
        }
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        handle.close()


def main() -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    report_only = "--report-only" in sys.argv
    if report_only:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
        os.environ.setdefault("DEBUG", "true")
        import django

        django.setup()
    else:
        from models_backend.backends.vllm_engine import cpu_env_defaults
        from models_backend.demo_model import prepare_demo_model

        for name, value in cpu_env_defaults().items():
            os.environ.setdefault(name, value)
        os.environ.setdefault("ARENA_VLLM_EAGER", "true")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        model_dir = prepare_demo_model()
        campaign, judge, env = _setup(model_dir)
        try:
            base = baseline(model_dir, campaign, judge)
            pipe = pipeline(model_dir, campaign, judge, env)
        finally:
            from django.db import connections

            connections.close_all()
            _drop_db()
        base_rate = base["judgments"] / base["seconds"]
        pipe_rate = pipe["judgments"] / pipe["seconds"]
        print(
            f"{base['judgments']} judgments (both orders of {QUESTIONS} pairs), greedy, "
            f"max_tokens {MAX_TOKENS}, model {model_dir}"
        )
        print(f"  vllm_alone_judgments_per_s       {base_rate:.2f}")
        print(
            f"  pipeline_judgments_per_s         {pipe_rate:.2f}"
            f"  (unparsed {pipe['unparsed']}, failed {pipe['failed']})"
        )
        print(
            f"  judgments_per_s ratio pipeline/vllm {pipe_rate / base_rate:.3f}  (target >= 0.85)"
        )
    timing = report_timing()
    print(
        f"  leaderboard + agreement on {timing['report_judgments']:,} judgments + "
        f"{timing['report_human_votes']:,} human votes: {timing['report_seconds']:.3f} s"
        f"  (target < 1 s; kappa {timing['report_kappa']})"
    )
    print(
        "  the same with the judge's style-controlled ratings: "
        f"{timing['report_with_style_seconds']:.3f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
