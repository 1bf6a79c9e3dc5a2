"""Rating benchmarks on the public Chatbot Arena battles: ``python -m benchmarks.ratings``.

The 2024-08-14 counts are expanded to one row per battle (1,670,250 rows, random order and
sides), then timed:

  (a) our Bradley–Terry fit from rows, aggregation included;
  (b) the full leaderboard: BT + 1000-round cell bootstrap + ranks + matrices, and online Elo,
      as the snapshot task computes it (the bootstrap's batches on two threads, Elo on a third
      meanwhile), and all on one thread in the same run for comparison;
  (c) a classic per-row implementation of the same model (logistic regression over rows,
      bootstrap by resampling rows), a few rounds, reported per round;
  (d) the ``evalica`` package's Bradley–Terry on the same rows (a dev dependency only).

(e), the snapshot task on PostgreSQL, runs when DATABASE_URL names a scratch database whose
name ends in ``_bench``; the benchmark configures Django itself (a throwaway secret key unless
one is set). It times a worker's first recompute (which reads every vote) and then, as the
task runs in a worker, a recompute after each of five batches of new votes (which reads only
those, `arena.ratings.store` keeping the rest); the target is on the latter.
``--sections abe`` runs some sections only; ``--keep-database`` keeps (e)'s database and
reuses it next time, which saves the minutes of loading.

Each section is a function in ``SECTIONS`` that takes the shared `Context` and returns
`Timing` rows; a new section (say, a database snapshot) is one more function appended there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before numpy loads its BLAS: on 129 x 129 matrices threads buy nothing, and on a busy 2-core
# machine their hand-offs cost more than the maths (measured: a 12 ms fit took 70 ms under load).
# Rating workers should run the same way. Set the variables yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import minimize
from scipy.special import expit

from arena.ranking import (
    ALPHA,
    BOOTSTRAP_THREADS,
    Anchor,
    aggregate,
    bootstrap_theta,
    bt_fit,
    elo_online,
    leaderboard,
    to_ratings,
)

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
COUNTS_FILE = DATA / "chatbot_arena_20240814_counts.json"
ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)

TARGET_FIT_S = 0.3
TARGET_LEADERBOARD_S = 1.0
TARGET_BOOTSTRAP_SPEEDUP = 100.0
TARGET_EVALICA_SPEEDUP = 10.0

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Timing:
    """One line of the summary: a measured figure and, where there is one, its target."""

    label: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None


@dataclass
class Context:
    """Rows shared by all sections, and figures sections hand to later ones."""

    names: list[str]
    a: IntArray
    b: IntArray
    outcome: IntArray
    repeats: int
    rounds: int
    classic_rounds: int
    seed: int
    figures: dict[str, float] = field(default_factory=dict)
    keep_database: bool = False

    @property
    def n_models(self) -> int:
        return len(self.names)

    @property
    def anchor(self) -> Anchor:
        return Anchor(self.names.index(ANCHOR[0]), ANCHOR[1])


def expand_rows(seed: int) -> Context:
    """One row per battle from the per-pair counts, shuffled, sides assigned at random."""
    raw = json.loads(COUNTS_FILE.read_text())
    pairs = np.asarray(raw["X"], dtype=np.int64)
    counts = np.asarray(raw["Y"], dtype=np.int64)
    per_cell = counts.reshape(-1)
    first = np.repeat(np.repeat(pairs[:, 0], 4), per_cell)
    second = np.repeat(np.repeat(pairs[:, 1], 4), per_cell)
    outcome = np.repeat(np.tile(np.arange(4, dtype=np.int64), pairs.shape[0]), per_cell)
    rng = np.random.default_rng(seed)
    order = rng.permutation(outcome.size)
    first, second, outcome = first[order], second[order], outcome[order]
    swap = rng.random(outcome.size) < 0.5
    a = np.where(swap, second, first)
    b = np.where(swap, first, second)
    # A swapped decisive vote changes which side won; ties and both-bad stay.
    outcome = np.where(swap & (outcome < 2), 1 - outcome, outcome)
    return Context(
        list(raw["models"]), a, b, outcome, repeats=11, rounds=1000, classic_rounds=3, seed=seed
    )


def timed(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls after one warm-up call, and the last result."""
    result = function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


# (a) ---------------------------------------------------------------------------------------


def section_fit(ctx: Context) -> list[Timing]:
    def fit_from_rows() -> FloatArray:
        fit = bt_fit(aggregate(ctx.a, ctx.b, ctx.outcome, ctx.n_models))
        return to_ratings(fit.theta, fit.component, ctx.anchor)

    seconds, ratings = timed(fit_from_rows, ctx.repeats)
    ctx.figures["fit_s"] = seconds
    top = int(np.argmax(ratings))
    print(f"(a) BT fit from {ctx.a.size:,} rows (aggregation included): {seconds * 1e3:.1f} ms")
    print(f"    top: {ctx.names[top]} {ratings[top]:.1f}")
    return [
        Timing("(a) BT fit from rows", seconds, "s", f"< {TARGET_FIT_S} s", seconds < TARGET_FIT_S)
    ]


# (b) ---------------------------------------------------------------------------------------


def section_leaderboard(ctx: Context) -> list[Timing]:
    def full() -> Any:
        cells = aggregate(ctx.a, ctx.b, ctx.outcome, ctx.n_models)
        elo = elo_online(ctx.a, ctx.b, ctx.outcome, ctx.n_models)
        return leaderboard(
            cells, ctx.names, rounds=ctx.rounds, seed=ctx.seed, anchor=ANCHOR, online_elo=elo
        )

    def threaded() -> Any:
        # As the snapshot task rates a campaign: the bootstrap's batches on two threads and
        # online Elo on a third meanwhile (figures depend on the seed only).
        cells = aggregate(ctx.a, ctx.b, ctx.outcome, ctx.n_models)
        return leaderboard(
            cells,
            ctx.names,
            rounds=ctx.rounds,
            seed=ctx.seed,
            anchor=ANCHOR,
            online_elo=lambda: elo_online(ctx.a, ctx.b, ctx.outcome, ctx.n_models),
            workers=BOOTSTRAP_THREADS,
        )

    repeats = max(1, ctx.repeats // 2)
    sequential_s, _board = timed(full, repeats)
    seconds, board = timed(threaded, repeats)
    fit = bt_fit(aggregate(ctx.a, ctx.b, ctx.outcome, ctx.n_models))
    boot_s, _ = timed(lambda: bootstrap_theta(fit, rounds=ctx.rounds, seed=ctx.seed), repeats)
    elo_s, _ = timed(lambda: elo_online(ctx.a, ctx.b, ctx.outcome, ctx.n_models), 1)
    per_round = boot_s / ctx.rounds
    ctx.figures["bootstrap_round_s"] = per_round
    print(
        f"(b) full leaderboard (BT + {ctx.rounds}-round bootstrap + ranks + matrices "
        f"+ online Elo): {seconds:.2f} s with the bootstrap on {BOOTSTRAP_THREADS} threads and "
        f"Elo beside it, {sequential_s:.2f} s all on one thread"
    )
    print(
        f"    of which bootstrap {boot_s:.2f} s ({per_round * 1e3:.2f} ms per round), "
        f"online Elo {elo_s:.2f} s"
    )
    for row in board.standings[:3]:
        print(
            f"    {row.rank:>3} {row.name:<32} {row.rating:7.1f} "
            f"[{row.ci_lower:7.1f}, {row.ci_upper:7.1f}]  Elo {row.elo:7.1f}"
        )
    return [
        Timing(
            "(b) full leaderboard + online Elo",
            seconds,
            "s",
            f"< {TARGET_LEADERBOARD_S} s",
            seconds < TARGET_LEADERBOARD_S,
        ),
        Timing("    the same on one thread", sequential_s, "s"),
        Timing("    our bootstrap, per round", per_round, "s"),
    ]


# (c) ---------------------------------------------------------------------------------------


def classic_fit(
    a: IntArray, b: IntArray, target: FloatArray, n: int, start: FloatArray, alpha: float = ALPHA
) -> FloatArray:
    """Logistic regression over rows, as per-row code does it: a sparse +1/-1 design matrix
    and L-BFGS on the summed cross-entropy (target 1, 0, or 0.5 for ties)."""
    rows = np.arange(a.size)
    design = sparse.csr_array(
        (
            np.concatenate([np.ones(a.size), -np.ones(a.size)]),
            (np.concatenate([rows, rows]), np.concatenate([a, b])),
        ),
        shape=(a.size, n),
    )

    def loss(theta: FloatArray) -> tuple[float, FloatArray]:
        d = design @ theta
        value = (target * np.logaddexp(0.0, -d) + (1.0 - target) * np.logaddexp(0.0, d)).sum()
        grad = design.T @ (expit(d) - target) + 2.0 * alpha * theta
        return float(value + alpha * theta @ theta), np.asarray(grad, dtype=np.float64)

    result = minimize(
        loss,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 10_000, "gtol": 1e-8, "ftol": 1e-15},
    )
    return np.asarray(result.x, dtype=np.float64)


def section_classic(ctx: Context) -> list[Timing]:
    n = ctx.n_models
    target = np.array([1.0, 0.0, 0.5, 0.5])[ctx.outcome]
    start = time.perf_counter()
    theta = classic_fit(ctx.a, ctx.b, target, n, np.zeros(n))
    fit_s = time.perf_counter() - start
    ours = bt_fit(aggregate(ctx.a, ctx.b, ctx.outcome, n))
    gap = np.abs(
        to_ratings(theta, ours.component, ctx.anchor)
        - to_ratings(ours.theta, ours.component, ctx.anchor)
    ).max()
    rng = np.random.default_rng(ctx.seed)
    start = time.perf_counter()
    for _ in range(ctx.classic_rounds):
        pick = rng.integers(0, ctx.a.size, ctx.a.size)
        classic_fit(ctx.a[pick], ctx.b[pick], target[pick], n, theta)
    per_round = (time.perf_counter() - start) / ctx.classic_rounds
    ours_round = ctx.figures["bootstrap_round_s"]
    speedup = per_round / ours_round
    print(
        f"(c) classic per-row logistic regression: fit {fit_s:.2f} s "
        f"(max gap to ours {gap:.3f} rating points); bootstrap {per_round:.2f} s per round "
        f"({ctx.classic_rounds} rounds, warm-started)"
    )
    print(f"    per-round bootstrap speed-up, ours vs classic: {speedup:,.0f}x")
    return [
        Timing("(c) classic per-row fit", fit_s, "s"),
        Timing("(c) classic bootstrap, per round", per_round, "s"),
        Timing(
            "    bootstrap speed-up per round (c / ours)",
            speedup,
            "x",
            f">= {TARGET_BOOTSTRAP_SPEEDUP:.0f}x",
            speedup >= TARGET_BOOTSTRAP_SPEEDUP,
        ),
    ]


# (d) ---------------------------------------------------------------------------------------


def section_evalica(ctx: Context) -> list[Timing]:
    try:
        import evalica
    except ImportError:
        print("(d) evalica is not installed; skipped (pip install evalica)")
        return []
    winners = np.array(
        [evalica.Winner.X, evalica.Winner.Y, evalica.Winner.Draw, evalica.Winner.Draw], dtype=object
    )[ctx.outcome].tolist()

    def default_call() -> Any:
        return evalica.bradley_terry(ctx.a, ctx.b, winners, tie_weight=0.5)

    seconds, result = timed(default_call, ctx.repeats)

    def with_index() -> Any:
        # The index of the first answer, reused: evalica then skips collecting the labels.
        return evalica.bradley_terry(ctx.a, ctx.b, winners, tie_weight=0.5, index=result.index)

    indexed_s, _ = timed(with_index, ctx.repeats)
    scores = result.scores.reindex(range(ctx.n_models)).to_numpy(dtype=np.float64)
    theirs = to_ratings(np.log(scores), np.zeros(ctx.n_models, dtype=np.int64), ctx.anchor)
    ours = bt_fit(aggregate(ctx.a, ctx.b, ctx.outcome, ctx.n_models))
    gap = np.abs(theirs - to_ratings(ours.theta, ours.component, ctx.anchor)).max()
    speedup = seconds / ctx.figures["fit_s"]
    indexed_speedup = indexed_s / ctx.figures["fit_s"]
    print(
        f"(d) evalica {evalica.__version__} bradley_terry on the rows: {seconds * 1e3:.0f} ms "
        f"({result.iterations} iterations, {result.solver}; max gap to ours "
        f"{gap:.2f} rating points)"
    )
    print(
        f"    with a prebuilt index: {indexed_s * 1e3:.0f} ms; "
        f"(a) is {speedup:.0f}x / {indexed_speedup:.0f}x faster"
    )
    return [
        Timing("(d) evalica bradley_terry", seconds, "s"),
        Timing("(d) evalica, prebuilt index", indexed_s, "s"),
        Timing(
            "    (a) speed-up vs evalica (d / a)",
            speedup,
            "x",
            f">= {TARGET_EVALICA_SPEEDUP:.0f}x",
            speedup >= TARGET_EVALICA_SPEEDUP,
        ),
        Timing("    (a) speed-up vs evalica, prebuilt index", indexed_speedup, "x"),
    ]


# (e) ---------------------------------------------------------------------------------------
# The snapshot task end to end on PostgreSQL. The rows above become Battle and Vote rows in a
# scratch database (named by DATABASE_URL; the name must end in "_bench": it is created,
# migrated and dropped here) over 129 contestants, one question set with a few questions and
# one answer per (question, contestant). Loading uses COPY with the FK triggers off
# (session_replication_role = replica; the rows are valid by construction) and is not timed.
# Timed: `arena.ratings.recompute.ratings_recompute`, i.e. the GROUP BY count in PostgreSQL,
# the ordered read for online Elo, every scope's leaderboard (BT, bootstrap, Elo, style
# control) and the write of the snapshots, with the settings' bootstrap rounds.

TARGET_SNAPSHOT_S = 2.0
_BENCH_NEW_VOTES = 200
_BENCH_QUESTIONS = 4
_BENCH_SPAN_DAYS = 500  # the public battles span about 16 months
_BENCH_MARKDOWN = ("", "# Heading\n", "- item\n- item\n", "**bold** and **more**\n")
_BENCH_COPY_ROWS = 200_000


def _bench_database() -> tuple[str, str] | None:
    """(DATABASE_URL, database name) when (e) may run: PostgreSQL and a *_bench database."""
    import os
    from urllib.parse import urlparse

    url = os.environ.get("DATABASE_URL", "")
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not parsed.scheme.startswith("postgres") or not name.endswith("_bench"):
        return None
    return url, name


def _bench_admin(url: str, sql: str) -> None:
    """CREATE or DROP DATABASE, from the server's maintenance database."""
    from urllib.parse import urlparse, urlunparse

    import psycopg

    admin_url = urlunparse(urlparse(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql)


def _copy_defaults(model: Any, columns: str) -> tuple[str, str]:
    """The model's other columns and their defaults as COPY text (the benchmark's rows give
    only the columns it needs; Django keeps field defaults out of the table's own)."""
    given = {c.strip() for c in columns.split(",")}
    names, values = [], []
    for f in model._meta.concrete_fields:
        if f.column in given:
            continue
        value = f.get_default()
        if value is None:
            text = "\\N"
        elif isinstance(value, bool):
            text = "t" if value else "f"
        elif isinstance(value, dict | list):
            text = json.dumps(value)
        else:
            text = str(value)
        names.append(f.column)
        values.append(text)
    return "".join(f", {n}" for n in names), "".join(f"\t{v}" for v in values)


def _bench_copy(model: Any, columns: str, render: Callable[[int, int], str], n: int) -> None:
    """COPY ``n`` rows into ``model``'s table; ``render(start, stop)`` writes rows as COPY
    text (columns ``columns``); every other column gets its field's default."""
    from django.db import connection

    table = model._meta.db_table
    extra_columns, extra_values = _copy_defaults(model, columns)
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        with cursor.copy(f"COPY {table} ({columns}{extra_columns}) FROM STDIN") as copy:
            for start in range(0, n, _BENCH_COPY_ROWS):
                text = render(start, min(n, start + _BENCH_COPY_ROWS))
                if extra_values:
                    text = text.replace("\n", extra_values + "\n")
                copy.write(text)
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )
        cursor.execute(f"ANALYZE {table}")
    raw.commit()


def _bench_load(ctx: Context) -> int:
    """The campaign and its rows; returns the campaign's id. Votes keep the order of ``ctx``'s
    rows and are spread over the last `_BENCH_SPAN_DAYS` days; each asks a random question."""
    import datetime as dt

    from django.utils import timezone

    from arena.models import Answer, Battle, Campaign, Contestant, Question, QuestionSet, Vote

    rng = np.random.default_rng(ctx.seed)
    contestants = Contestant.objects.bulk_create(
        Contestant(name=name, slug=f"bench-{k}", backend="vllm", model=f"bench:{name}")
        for k, name in enumerate(ctx.names)
    )
    question_set = QuestionSet.objects.create(name="Benchmark")
    questions = Question.objects.bulk_create(
        Question(question_set=question_set, external_id=f"q{k}", text=f"Q{k}?", language="en")
        for k in range(_BENCH_QUESTIONS)
    )
    answers = Answer.objects.bulk_create(
        Answer(
            question=q,
            contestant=c,
            config_hash="bench",
            status="done",
            shown_text="word " * int(rng.integers(20, 400))
            + "".join(m * int(rng.integers(0, 3)) for m in _BENCH_MARKDOWN),
        )
        for q in questions
        for c in contestants
    )
    campaign = Campaign.objects.create(
        name="Benchmark",
        slug="benchmark",
        baseline=contestants[ctx.names.index(ANCHOR[0])],
        baseline_rating=ANCHOR[1],
    )
    campaign.question_sets.add(question_set)

    n = ctx.a.size
    contestant_ids = np.array([c.pk for c in contestants], dtype=np.int64)
    answer_ids = np.array([a.pk for a in answers], dtype=np.int64).reshape(len(questions), -1)
    asked = rng.integers(0, len(questions), n)
    start = timezone.now() - dt.timedelta(days=_BENCH_SPAN_DAYS)
    seconds = np.sort(rng.integers(0, _BENCH_SPAN_DAYS * 86_400, n))
    stamps = np.datetime_as_string(
        np.datetime64(start.replace(tzinfo=None), "s") + seconds.astype("timedelta64[s]"),
        timezone="UTC",
    ).tolist()
    question = np.array([q.pk for q in questions], dtype=np.int64)[asked].tolist()
    ca, cb = contestant_ids[ctx.a].tolist(), contestant_ids[ctx.b].tolist()
    aa, ab = answer_ids[asked, ctx.a].tolist(), answer_ids[asked, ctx.b].tolist()
    outcome = np.array(["a", "b", "tie", "both_bad"])[ctx.outcome].tolist()
    cid = campaign.pk

    def battles(lo: int, hi: int) -> str:
        return "".join(
            f"{k + 1}\t{k + 1:032x}\t{cid}\t\\N\tbench\tstored\t{question[k]}\t{aa[k]}\t{ab[k]}"
            f"\tvoted\t{stamps[k]}\t{stamps[k]}\n"
            for k in range(lo, hi)
        )

    def votes(lo: int, hi: int) -> str:
        return "".join(
            f"{k + 1}\t{k + 1}\t{cid}\t\\N\t{question[k]}\t{ca[k]}\t{cb[k]}\t{outcome[k]}\t\t\\N"
            f"\t{stamps[k]}\n"
            for k in range(lo, hi)
        )

    _bench_copy(
        Battle,
        "id, code, campaign_id, evaluator_id, session_key, mode, question_id, answer_a_id,"
        " answer_b_id, state, served_at, expires_at",
        battles,
        n,
    )
    _bench_copy(
        Vote,
        "id, battle_id, campaign_id, evaluator_id, question_id, contestant_a_id, contestant_b_id,"
        " outcome, reason, time_to_vote_ms, created_at",
        votes,
        n,
    )
    return int(cid)


def _bench_add_votes(campaign_id: int, n: int, seed: int) -> int:
    """``n`` new votes cast now: copies of random stored battles and their votes under new
    ids (`_bench_drop_added` removes them, so a kept database stays as loaded)."""
    from django.db import connection

    rng = np.random.default_rng(seed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM arena_vote WHERE campaign_id = %s", [campaign_id])
        top = int(cursor.fetchone()[0])
        picked = rng.integers(1, top + 1, n).tolist()
        offset = top + 1 - min(picked)
        ids = sorted(set(picked))
        cursor.execute("DROP TABLE IF EXISTS bench_battle, bench_vote")
        cursor.execute(
            "CREATE TEMP TABLE bench_battle AS SELECT * FROM arena_battle WHERE id = ANY(%s)",
            [ids],
        )
        cursor.execute(
            "UPDATE bench_battle SET id = id + %s, code = lpad(to_hex(id + %s), 32, '0')::uuid,"
            " served_at = now(), expires_at = now()",
            [offset, offset],
        )
        cursor.execute(
            "CREATE TEMP TABLE bench_vote AS SELECT * FROM arena_vote WHERE battle_id = ANY(%s)",
            [ids],
        )
        cursor.execute(
            "UPDATE bench_vote SET id = id + %s, battle_id = battle_id + %s, created_at = now()",
            [offset, offset],
        )
        cursor.execute("INSERT INTO arena_battle SELECT * FROM bench_battle")
        cursor.execute("INSERT INTO arena_vote SELECT * FROM bench_vote ORDER BY id")
        cursor.execute("DROP TABLE bench_battle, bench_vote")
    return len(ids)


def _bench_drop_added(campaign_id: int, loaded: int) -> None:
    """Remove the votes and battles `_bench_add_votes` added (ids past the loaded rows)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM arena_vote WHERE id > %s", [loaded])
        cursor.execute("DELETE FROM arena_battle WHERE id > %s", [loaded])


def _django_setup() -> None:
    """Django for (e), configured here so that ``DATABASE_URL=… python -m benchmarks.ratings``
    is all it takes: a throwaway secret key (the scratch database is dropped at the end; no
    cookie is ever signed) unless one is set, and the settings module."""
    import secrets

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    if not os.environ.get("SECRET_KEY") and not os.environ.get("SECRET_KEY_FILE"):
        os.environ["SECRET_KEY"] = secrets.token_urlsafe(32)
    django.setup()


def _bench_reuse(url: str, name: str, ctx: Context) -> int | None:
    """The benchmark campaign of a database kept by an earlier ``--keep-database`` run, if it
    holds this run's votes and its schema is current; None otherwise."""
    import psycopg
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from arena.models import Campaign

    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            return None
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return None
    campaign = Campaign.objects.filter(slug="benchmark").first()
    if campaign is None or campaign.votes.count() != ctx.a.size:
        return None
    return int(campaign.pk)


def section_snapshot(ctx: Context) -> list[Timing]:
    target = _bench_database()
    if target is None:
        print(
            "(e) skipped: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/arena_bench "
            "(a scratch database whose name ends in _bench; it is created and dropped)"
        )
        return []
    url, name = target
    _django_setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    from arena.ratings.recompute import ratings_recompute

    campaign_id = _bench_reuse(url, name, ctx) if ctx.keep_database else None
    if campaign_id is None:
        _bench_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _bench_admin(url, f'CREATE DATABASE "{name}"')
    added = 0
    try:
        started = time.perf_counter()
        if campaign_id is None:
            call_command("migrate", verbosity=0)
            campaign_id = _bench_load(ctx)
        load_s = time.perf_counter() - started
        # A worker's first recompute reads every vote; each later one, run after new votes
        # arrived (`_BENCH_NEW_VOTES` per debounce interval), reads only those (ratings/store.py
        # keeps the scan). The target is the later one: the task's steady state.
        first = ratings_recompute(campaign_id=campaign_id)
        later: list[float] = []
        for _ in range(max(1, min(5, ctx.repeats))):
            added += _bench_add_votes(campaign_id, _BENCH_NEW_VOTES, ctx.seed + added)
            result = ratings_recompute(campaign_id=campaign_id)
            later.append(result.seconds)
        seconds = statistics.median(later)
    finally:
        if added:
            _bench_drop_added(campaign_id, ctx.a.size)
        connections.close_all()
        if not ctx.keep_database:
            _bench_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(
        f"(e) snapshot task on PostgreSQL ({first.vote_count:,} votes, loaded by COPY in "
        f"{load_s:.0f} s, not timed), {settings.ARENA_BOOTSTRAP_ROUNDS} bootstrap rounds, "
        f"{len(result.scopes)} scopes: a worker's first run (reads every vote) "
        f"{first.seconds:.2f} s; each later run after {_BENCH_NEW_VOTES} new votes: median "
        f"{seconds:.2f} s of {len(later)}"
    )
    parts = ", ".join(f"{k} {v:.2f} s" for k, v in first.timings.items())
    print(f"    first run: {parts}")
    parts = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items())
    print(f"    last later run: {parts}")
    print(f"    scopes: {', '.join(result.scopes)}")
    return [
        Timing(
            "(e) snapshot task, a worker's first run",
            first.seconds,
            "s",
        ),
        Timing(
            "(e) snapshot task on PostgreSQL",
            seconds,
            "s",
            f"< {TARGET_SNAPSHOT_S:.0f} s",
            seconds < TARGET_SNAPSHOT_S,
        ),
    ]


# Further sections (e.g. (e) a PostgreSQL GROUP BY snapshot) are appended here.
SECTIONS: list[Callable[[Context], list[Timing]]] = [
    section_fit,
    section_leaderboard,
    section_classic,
    section_evalica,
    section_snapshot,
]


def print_summary(timings: Sequence[Timing]) -> None:
    print()
    print(f"{'measure':<48} {'value':>12}  {'target':<10} ok")
    print("-" * 76)
    for t in timings:
        if t.unit == "s":
            value = f"{t.value * 1e3:,.1f} ms" if t.value < 1 else f"{t.value:,.2f} s"
        else:
            value = f"{t.value:,.0f}x"
        ok = "" if t.ok is None else ("yes" if t.ok else "NO")
        print(f"{t.label:<48} {value:>12}  {t.target:<10} {ok}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=11, help="timed repeats after a warm-up")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds for (b)")
    parser.add_argument("--classic-rounds", type=int, default=3, help="row-bootstrap rounds")
    parser.add_argument(
        "--sections",
        default="abcde",
        help="which sections to run, by letter (default abcde; c needs b, d needs a)",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="(e): keep the scratch database, and reuse one kept before (saves the load)",
    )
    args = parser.parse_args(argv)
    if "e" in args.sections and _bench_database() is not None:
        _django_setup()  # fail now, not after the other sections, if Django cannot start
    ctx = expand_rows(args.seed)
    ctx.repeats, ctx.rounds, ctx.classic_rounds = args.repeats, args.rounds, args.classic_rounds
    ctx.keep_database = args.keep_database
    print(
        f"{ctx.a.size:,} battle rows between {ctx.n_models} models; medians of "
        f"{ctx.repeats} runs after a warm-up unless stated\n"
    )
    timings: list[Timing] = []
    for letter, section in zip("abcde", SECTIONS, strict=True):
        if letter in args.sections:
            timings += section(ctx)
    print_summary(timings)
    return 0 if all(t.ok is not False for t in timings) else 1


if __name__ == "__main__":
    raise SystemExit(main())
