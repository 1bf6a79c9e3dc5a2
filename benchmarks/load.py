"""Load benchmark of the evaluator API: ``python -m benchmarks.load``.

Simulated evaluators on loopback do next-battle → vote against the ASGI server on PostgreSQL,
in a campaign of 1,000 questions x 10 contestants that already holds 100,000 votes. Printed, in
one run: the saturation votes/s of a closed loop (N clients, each sends its next request as
soon as the last one is answered), p50/p99 latency of both requests, the errors and the CPU per
vote; the framework floor (GET /healthz through the same server, halved: a vote takes two
requests) and capacity/floor; an open loop at fixed arrival rates (50% and 80% of that
saturation) with p50/p99 of both requests at each; then the rate of inserting the same number
of battle + vote rows through raw psycopg (the ceiling: one vote per transaction on one
connection, on N connections, and all in one COPY), and the ratio app/ceiling.

What it does, in order (everything it starts is stopped, and the scratch database dropped):

1. Drops and creates the scratch database ``arena_load`` on ``--pg`` (PostgreSQL, trust auth)
   and runs ``manage.py migrate`` on it in a subprocess.
2. Seeds it: contestants and campaign through the ORM (their config hashes are the model's),
   the rest through COPY: 1,000 questions, 10 done answers each, 200 synthetic evaluators with
   100,000 voted battles (each evaluator sees a question at most once; pairs and outcomes at
   random; all older than the vote rate-limit window) and their PairLoad counts, plus
   ``--evaluators`` fresh ones with API tokens for the load phases.
3. Starts the server: by default ``uvicorn --workers 4`` (two processes per core, as a 2-core
   deployment would run it; uvloop + httptools), or ``--server daphne`` (one process). It runs
   with DEBUG=false (but ARENA_SSL_REDIRECT=false: plain http), a random SECRET_KEY,
   ALLOWED_HOSTS=127.0.0.1 and REDIS_URL on Redis
   db ``--redis-db`` (14), which is flushed before and after: votes schedule the debounced
   ratings recompute there through Redis + Celery; no worker consumes it.
4. Closed loop, the saturation figure: N clients (one keep-alive HTTP/1.1 connection each, on
   uvloop), each with its own slice of the evaluators (round robin, so no evaluator exceeds
   the per-minute vote limit and no two clients share an open battle), loop
   POST /api/v1/campaigns/<slug>/next → POST /api/v1/battles/<code>/vote for ``--seconds``
   after ``--warmup`` seconds that are not counted. Over the measured window it also reads the
   CPU time (Linux /proc) of the server's processes, of the scratch database's PostgreSQL
   backends and of itself, and prints it per vote: on a machine that other work shares,
   CPU per vote is a steadier figure than votes/s.
5. Framework floor: the same server answers GET /healthz (one ``SELECT 1``; the request that
   ``benchmarks.asgi_overhead`` measures, driven by its client loop) on N connections for
   ``--floor-seconds`` after a 1 s warm-up. Half that rate is what the server could reach if
   the two API views cost no more than the framework around them.
6. Open loop (unless ``--no-open-loop``), at each of ``--open-levels`` percent of the
   saturation: evaluator sessions arrive as a Poisson process (exponential gaps, seeded) at
   that many votes/s for ``--warmup`` + ``--open-seconds``, whatever the latency. Each takes an
   idle evaluator (least recently used), sends next, reads for a reading time drawn uniformly
   from ``--reading`` (0.3 to 3 s), then votes. Requests share at most ``--open-connections``
   keep-alive connections; a latency counts from when its request was due (the arrival; the
   end of the reading), so waiting for a connection or a late client is in the figure rather
   than hidden. Counted: the sessions that arrive in the measured window; those still running
   ``--reading`` max + 10 s after it are cancelled and reported as unfinished.
7. Stops the server, then inserts as many battle + vote rows as the closed loop recorded
   (1,000 at least) through psycopg and prints the rates and the ratios.

Targets (the issue; 500 votes/s, the old one, exceeds what an empty Django ASGI app reaches on
2 cores): capacity (the saturation votes/s) >= 50% of the framework floor, and p99 of both
requests < 100 ms in the open loop at 50% of saturation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
import uvloop

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "arena_load"
CAMPAIGN_SLUG = "load"
OUTCOMES = ("a", "b", "tie", "both_bad")
# The targets (see the docstring): capacity / framework floor, and p99 at one open-loop level.
TARGET_FLOOR_SHARE = 0.5
TARGET_P99_MS = 100.0
TARGET_P99_LEVEL = 50
# Seconds an open-loop level waits, after its last arrival and the longest reading, for the
# sessions still running before it cancels them: bounded however slow the server gets.
OPEN_DRAIN_S = 10.0

ANSWER_TEXT = (
    "Here is a short answer to question {q}, from contestant {c}.\n\n"
    "1. **First**, restate the problem in plain words.\n"
    "2. *Then* work through it step by step, keeping track of units.\n"
    "3. Finally, check the result against a simple case.\n\n"
    "> A quoted remark, to exercise block quotes.\n\n"
    "Some `inline code`, and a closing paragraph long enough to look like a real reply from a "
    "small instruction-tuned model that likes to explain itself at some length."
)


@dataclass(frozen=True)
class Scale:
    questions: int
    contestants: int
    stored_votes: int
    stored_evaluators: int
    load_evaluators: int
    sampling: str = "balanced"  # the campaign's pair sampling (Campaign.Sampling)


@dataclass
class Seeded:
    campaign_id: int
    contestant_ids: list[int]
    question_ids: list[int]
    # answers[question_id][contestant_id] = answer id
    answers: dict[int, dict[int, int]]
    stored_evaluator_ids: list[int]
    tokens: list[str]
    seed_vote_max_id: int


@dataclass
class LoadStats:
    next_ms: list[float] = field(default_factory=list)
    vote_ms: list[float] = field(default_factory=list)
    votes: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    # CPU seconds used in the measured window: the server's processes, the PostgreSQL
    # backends of the scratch database, this process (the clients). Figures per vote are
    # steadier than votes/s on a machine that other work shares.
    cpu_s: dict[str, float] = field(default_factory=dict)
    # The whole machine over the same window (/proc/stat): busy and stolen shares. Busy well
    # under 100% means something other than CPU (locks, the pool, fsync) held the rate.
    machine: dict[str, float] = field(default_factory=dict)


@dataclass
class OpenStats(LoadStats):
    """One open-loop level. Latencies, votes and the counts below are of the sessions that
    arrived in the measured window; errors are of all sessions, warm-up included."""

    offered: int = 0
    # Arrivals that found no idle evaluator (every token already in a session) and were not
    # sent: the client's bound on sessions in flight.
    dropped: int = 0
    # Still running at the drain deadline, then cancelled.
    unfinished: int = 0


# --- database --------------------------------------------------------------------------------


def _url(base: str, dbname: str) -> str:
    return f"{base.rstrip('/')}/{dbname}"


def db_recreate(pg: str) -> None:
    with psycopg.connect(_url(pg, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def db_drop(pg: str) -> None:
    with psycopg.connect(_url(pg, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def _copy(conn: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Any) -> None:
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _setval(conn: psycopg.Connection[Any], table: str) -> None:
    conn.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
        f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
    )


def _users(first_id: int, count: int, prefix: str, now: dt.datetime) -> Iterator[tuple[Any, ...]]:
    for i in range(count):
        yield (first_id + i, "!", False, f"{prefix}{i}", "", "", "", False, True, now)


USER_COLUMNS = (
    "id",
    "password",
    "is_superuser",
    "username",
    "first_name",
    "last_name",
    "email",
    "is_staff",
    "is_active",
    "date_joined",
)


def seed(env: dict[str, str], scale: Scale, rng: random.Random) -> Seeded:
    """Contestants and the campaign through the ORM, everything else through COPY."""
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connections

    from arena import models

    qset = models.QuestionSet.objects.create(name="load questions")
    contestants = [
        models.Contestant.objects.create(
            name=f"Load-{i}", slug=f"load-{i}", backend="vllm", model=f"/models/load-{i}"
        )
        for i in range(scale.contestants)
    ]
    campaign = models.Campaign.objects.create(
        name="Load", slug=CAMPAIGN_SLUG, sampling=scale.sampling
    )
    campaign.question_sets.add(qset)
    campaign.contestants.add(*contestants)
    hashes = {c.pk: c.config_hash for c in contestants}
    contestant_ids = sorted(hashes)
    connections.close_all()

    now = dt.datetime.now(dt.UTC)
    long_ago = now - dt.timedelta(days=30)
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        question_ids = list(range(1, scale.questions + 1))
        _copy(
            conn,
            models.Question._meta.db_table,
            (
                "id",
                "question_set_id",
                "external_id",
                "text",
                "category",
                "language",
                "reference_answer",
                "turns",
                "created_at",
                "named_terms",
                "asks_identity",
            ),
            (
                (
                    q,
                    qset.pk,
                    f"q{q}",
                    f"Question {q}: explain step {q} of the method?",
                    "",
                    "en",
                    "",
                    "[]",
                    long_ago,
                    "[]",
                    False,
                )
                for q in question_ids
            ),
        )
        answers: dict[int, dict[int, int]] = {}
        answer_rows = []
        next_id = 1
        for q in question_ids:
            answers[q] = {}
            for c in contestant_ids:
                answers[q][c] = next_id
                text = ANSWER_TEXT.format(q=q, c=c)
                answer_rows.append(
                    (
                        next_id,
                        q,
                        c,
                        hashes[c],
                        "done",
                        "",
                        text,
                        text,
                        "{}",
                        "[]",
                        False,
                        False,
                        0,
                        long_ago,
                        "[]",
                    )
                )
                next_id += 1
        _copy(
            conn,
            models.Answer._meta.db_table,
            (
                "id",
                "question_id",
                "contestant_id",
                "config_hash",
                "status",
                "failure_reason",
                "raw_text",
                "shown_text",
                "strip_report",
                "followups",
                "flagged",
                "released",
                "attempts",
                "created_at",
                "named_terms",
            ),
            answer_rows,
        )

        user_table = User._meta.db_table
        stored_ids = list(range(1_000_001, 1_000_001 + scale.stored_evaluators))
        load_ids = list(range(2_000_001, 2_000_001 + scale.load_evaluators))
        _copy(conn, user_table, USER_COLUMNS, _users(stored_ids[0], len(stored_ids), "past", now))
        _copy(conn, user_table, USER_COLUMNS, _users(load_ids[0], len(load_ids), "load", now))
        _copy(
            conn,
            models.Campaign.evaluators.through._meta.db_table,
            ("campaign_id", "user_id"),
            ((campaign.pk, u) for u in stored_ids + load_ids),
        )
        tokens = []
        token_rows = []
        for u in load_ids:
            # The same key format and digest as arena.accounts.tokens.api_token_create; a
            # mismatch shows up at once as 401s.
            key = "arena_" + secrets.token_urlsafe(32)
            tokens.append(key)
            digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
            token_rows.append((u, "load", digest, key[6:14], "evaluate", now))
        _copy(
            conn,
            models.ApiToken._meta.db_table,
            ("user_id", "name", "key_hash", "prefix", "scopes", "created_at"),
            token_rows,
        )

        pairs = [(lo, hi) for i, lo in enumerate(contestant_ids) for hi in contestant_ids[i + 1 :]]
        per_evaluator = -(-scale.stored_votes // scale.stored_evaluators)
        if per_evaluator > scale.questions:
            raise SystemExit("more stored votes than evaluators x questions allow")
        battle_rows = []
        vote_rows = []
        loads: Counter[tuple[int, int]] = Counter()
        n = 0
        for evaluator in stored_ids:
            for q in rng.sample(question_ids, per_evaluator):
                if n == scale.stored_votes:
                    break
                n += 1
                lo, hi = rng.choice(pairs)
                loads[lo, hi] += 1
                a, b = (lo, hi) if rng.random() < 0.5 else (hi, lo)
                served = long_ago + dt.timedelta(seconds=rng.uniform(0, 29 * 86400))
                battle_rows.append(
                    (
                        n,
                        uuid.uuid4(),
                        campaign.pk,
                        evaluator,
                        "",
                        "stored",
                        q,
                        answers[q][a],
                        answers[q][b],
                        "voted",
                        served,
                        served,
                    )
                )
                voted = served + dt.timedelta(seconds=rng.uniform(5, 120))
                vote_rows.append(
                    (
                        n,
                        n,
                        campaign.pk,
                        evaluator,
                        q,
                        a,
                        b,
                        rng.choice(OUTCOMES),
                        "",
                        int((voted - served).total_seconds() * 1000),
                        voted,
                        False,
                        "{}",
                    )
                )
        _copy(conn, models.Battle._meta.db_table, BATTLE_COLUMNS, battle_rows)
        _copy(conn, models.Vote._meta.db_table, VOTE_COLUMNS, vote_rows)
        _copy(
            conn,
            models.PairLoad._meta.db_table,
            ("campaign_id", "contestant_lo_id", "contestant_hi_id", "battles"),
            ((campaign.pk, lo, hi, loads[lo, hi]) for lo, hi in pairs),
        )
        for model in (models.Question, models.Answer, models.Battle, models.Vote):
            _setval(conn, model._meta.db_table)
        _setval(conn, user_table)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    if scale.sampling == models.Campaign.Sampling.ACTIVE:
        # The plan of a snapshot of the stored votes, as the recompute task leaves it.
        from arena.battles.active import sampling_plan_update
        from arena.ratings.recompute import ratings_recompute

        ratings_recompute(campaign_id=campaign.pk)
        sampling_plan_update(campaign_id=campaign.pk)
        connections.close_all()
    return Seeded(
        campaign_id=campaign.pk,
        contestant_ids=contestant_ids,
        question_ids=question_ids,
        answers=answers,
        stored_evaluator_ids=stored_ids,
        tokens=tokens,
        seed_vote_max_id=n,
    )


BATTLE_COLUMNS = (
    "id",
    "code",
    "campaign_id",
    "evaluator_id",
    "session_key",
    "mode",
    "question_id",
    "answer_a_id",
    "answer_b_id",
    "state",
    "served_at",
    "expires_at",
)
VOTE_COLUMNS = (
    "id",
    "battle_id",
    "campaign_id",
    "evaluator_id",
    "question_id",
    "contestant_a_id",
    "contestant_b_id",
    "outcome",
    "reason",
    "time_to_vote_ms",
    "created_at",
    "tainted",
    "taint",
)


# --- server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_start(
    kind: str, workers: int, port: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    if kind == "uvicorn":
        cmd = [sys.executable, "-m", "uvicorn", "arena.asgi:application"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        cmd += ["--lifespan", "off", "--no-access-log", "--log-level", "warning"]
    else:
        cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        cmd += ["-v", "0", "arena.asgi:application"]
    # Its own process group, so stopping it reaches uvicorn's worker processes too.
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)


def server_stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def server_wait(base: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit("the server did not answer /healthz in time")


# --- CPU accounting (Linux /proc) --------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """utime + stime of one process in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            parents.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _backends(monitor: psycopg.Connection[Any]) -> list[int]:
    rows = monitor.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()"
    ).fetchall()
    return [r[0] for r in rows]


def machine_ticks() -> tuple[int, int, int]:
    """(all, idle + iowait, steal) jiffies of the machine since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields), fields[3] + fields[4], fields[7]


def machine_used(before: tuple[int, int, int], after: tuple[int, int, int]) -> dict[str, float]:
    total = max(after[0] - before[0], 1)
    return {
        "busy": 1 - (after[1] - before[1]) / total,
        "steal": (after[2] - before[2]) / total,
    }


def cpu_snapshot(server_pid: int, monitor: psycopg.Connection[Any]) -> dict[str, dict[int, float]]:
    return {
        "server": {p: _cpu_of(p) for p in _children(server_pid)},
        "postgres": {p: _cpu_of(p) for p in _backends(monitor)},
        "clients": {os.getpid(): time.process_time()},
    }


def cpu_used(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """Per group, CPU seconds spent between the snapshots; a process first seen in `after`
    counts from zero (backends the pool opened during the window)."""
    return {
        group: sum(t - before[group].get(pid, 0.0) for pid, t in after[group].items())
        for group in after
    }


# --- clients ---------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection to the server, the least client code that speaks
    it: the clients share the 2 cores with the server and PostgreSQL, and httpx spent 6-11
    ms of CPU per vote (next + vote), as much as the server's views."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, token: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return await self._exchange(head.encode("ascii") + body)

    async def get(self, path: str) -> tuple[int, dict[str, Any]]:
        return await self._exchange(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode("ascii")
        )

    async def _exchange(self, request: bytes) -> tuple[int, dict[str, Any]]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        status = int((await self.reader.readline()).split(b" ", 2)[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _sep, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            await self.reader.readline()
            data = b"".join(parts)
        else:
            data = await self.reader.readexactly(length)
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {}
        return status, parsed if isinstance(parsed, dict) else {}

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class ConnectionPool:
    """At most `size` keep-alive connections for the open loop's sessions, one request at a
    time on each; a request that finds all of them busy waits for one. Idle connections are
    reused oldest first, so requests rotate over every connection opened, and so over the
    server's worker processes (a connection stays with the worker that accepted it)."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port = host, port
        self._slots = asyncio.Semaphore(size)
        self._idle: deque[Connection] = deque()
        self._open: list[Connection] = []

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self._slots:
            if self._idle:
                connection = self._idle.popleft()
            else:
                connection = Connection(self.host, self.port)
                self._open.append(connection)
            try:
                yield connection
            except BaseException:
                # An exchange cut off half way (an error, a cancelled session) leaves the
                # stream out of step with the responses: never reuse it.
                connection.close()
                self._open.remove(connection)
                raise
            self._idle.append(connection)

    def close(self) -> None:
        for connection in self._open:
            connection.close()


async def evaluator_loop(
    connection: Connection,
    tokens: Sequence[str],
    stats: LoadStats,
    rng: random.Random,
    *,
    measure_from: float,
    stop_at: float,
    max_votes: int,
) -> None:
    i = 0
    while time.monotonic() < stop_at and stats.votes < max_votes:
        token = tokens[i % len(tokens)]
        i += 1
        t0 = time.perf_counter()
        status, body = await connection.post(f"/api/v1/campaigns/{CAMPAIGN_SLUG}/next", token)
        t1 = time.perf_counter()
        counted = time.monotonic() >= measure_from
        battle = body.get("battle") if status == 200 else None
        if not isinstance(battle, dict):
            stats.errors[f"next {status} {body.get('code', '')}".rstrip()] += 1
            continue
        t2 = time.perf_counter()
        vote = json.dumps({"outcome": rng.choice(OUTCOMES)}).encode()
        status, body = await connection.post(f"/api/v1/battles/{battle['code']}/vote", token, vote)
        t3 = time.perf_counter()
        if status != 201:
            stats.errors[f"vote {status} {body.get('code', '')}".rstrip()] += 1
            continue
        if counted:
            stats.next_ms.append((t1 - t0) * 1000)
            stats.vote_ms.append((t3 - t2) * 1000)
            stats.votes += 1


async def _cpu_window(
    stats: LoadStats, server_pid: int, dsn: str, measure_from: float, stop_at: float
) -> None:
    # Connected before the load: a server that runs PostgreSQL out of connections must not
    # take the measurement down with it.
    with psycopg.connect(dsn, autocommit=True) as monitor:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        before, ticks = cpu_snapshot(server_pid, monitor), machine_ticks()
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        stats.cpu_s = cpu_used(before, cpu_snapshot(server_pid, monitor))
        stats.machine = machine_used(ticks, machine_ticks())


async def load_run(
    base: str,
    tokens: Sequence[str],
    *,
    clients: int,
    warmup: float,
    seconds: float,
    max_votes: int,
    server_pid: int,
    dsn: str,
) -> tuple[LoadStats, float]:
    stats = LoadStats()
    host, _sep, port = base.removeprefix("http://").partition(":")
    connections = [Connection(host, int(port)) for _ in range(clients)]
    try:
        start = time.monotonic()
        measure_from, stop_at = start + warmup, start + warmup + seconds
        await asyncio.gather(
            _cpu_window(stats, server_pid, dsn, measure_from, stop_at),
            *(
                evaluator_loop(
                    connections[i],
                    tokens[i::clients],
                    stats,
                    random.Random(i),
                    measure_from=measure_from,
                    stop_at=stop_at,
                    max_votes=max_votes,
                )
                for i in range(clients)
            ),
        )
        elapsed = min(time.monotonic(), stop_at) - measure_from
    finally:
        for connection in connections:
            connection.close()
    return stats, max(elapsed, 1e-9)


async def open_session(
    pool: ConnectionPool,
    token: str,
    idle: deque[str],
    stats: OpenStats,
    *,
    arrival: float,
    reading: float,
    outcome: str,
    counted: bool,
) -> None:
    """One evaluator's next → reading → vote; the token goes back to `idle` at the end,
    whatever happened. Latencies count from when each request was due (`arrival`, the end of
    the reading), so time spent waiting for a connection or for a late event loop is in them."""
    step = "next"
    try:
        async with pool.connection() as connection:
            status, body = await connection.post(f"/api/v1/campaigns/{CAMPAIGN_SLUG}/next", token)
        answered = time.monotonic()
        battle = body.get("battle") if status == 200 else None
        if not isinstance(battle, dict):
            stats.errors[f"next {status} {body.get('code', '')}".rstrip()] += 1
            return
        step = "vote"
        await asyncio.sleep(reading)
        due = answered + reading
        vote = json.dumps({"outcome": outcome}).encode()
        async with pool.connection() as connection:
            status, body = await connection.post(
                f"/api/v1/battles/{battle['code']}/vote", token, vote
            )
        voted = time.monotonic()
        if status != 201:
            stats.errors[f"vote {status} {body.get('code', '')}".rstrip()] += 1
            return
        if counted:
            stats.next_ms.append((answered - arrival) * 1000)
            stats.vote_ms.append((voted - due) * 1000)
            stats.votes += 1
    except (OSError, EOFError, ValueError, IndexError) as exc:
        # The server closed or garbled the connection: an error of this session, not the run.
        stats.errors[f"{step} {type(exc).__name__}"] += 1
    except asyncio.CancelledError:
        stats.unfinished += counted
        raise
    finally:
        idle.append(token)


async def open_run(
    base: str,
    tokens: Sequence[str],
    *,
    rate: float,
    reading: tuple[float, float],
    warmup: float,
    seconds: float,
    connections: int,
    server_pid: int,
    dsn: str,
    rng: random.Random,
) -> OpenStats:
    """Sessions arriving as a Poisson process at `rate` per second for `warmup` + `seconds`
    (only the arrivals after `warmup` counted), each on an idle token. Returns when every
    session has ended, at most `reading[1]` + OPEN_DRAIN_S after the last arrival."""
    stats = OpenStats()
    host, _sep, port = base.removeprefix("http://").partition(":")
    pool = ConnectionPool(host, int(port), connections)
    # Least recently used first: each evaluator's votes as far apart as the tokens allow,
    # well inside the per-minute vote limit.
    idle = deque(tokens)
    sessions: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    window = asyncio.create_task(_cpu_window(stats, server_pid, dsn, measure_from, stop_at))
    try:
        arrival = start
        while (arrival := arrival + rng.expovariate(rate)) < stop_at:
            await asyncio.sleep(max(0.0, arrival - time.monotonic()))
            counted = arrival >= measure_from
            stats.offered += counted
            if not idle:
                stats.dropped += counted
                continue
            session = asyncio.create_task(
                open_session(
                    pool,
                    idle.popleft(),
                    idle,
                    stats,
                    arrival=arrival,
                    reading=rng.uniform(*reading),
                    outcome=rng.choice(OUTCOMES),
                    counted=counted,
                )
            )
            sessions.add(session)
            session.add_done_callback(sessions.discard)
        await window
        if sessions:
            await asyncio.wait(set(sessions), timeout=reading[1] + OPEN_DRAIN_S)
    finally:
        for task in (window, *sessions):
            task.cancel()
        await asyncio.gather(window, *sessions, return_exceptions=True)
        pool.close()
    return stats


def floor_run(port: int, clients: int, seconds: float, server_pid: int) -> tuple[float, float]:
    """(requests/s, server CPU ms per request) of GET /healthz on the running server, driven
    by benchmarks.asgi_overhead's client loop on `clients` connections after a 1 s warm-up."""
    # Imported here: benchmarks.asgi_overhead imports this module at its top.
    from benchmarks.asgi_overhead import _drive

    uvloop.run(_drive(port, clients, 1.0))
    before = sum(_cpu_of(p) for p in _children(server_pid))
    start = time.monotonic()
    count = uvloop.run(_drive(port, clients, seconds))
    elapsed = time.monotonic() - start
    used = sum(_cpu_of(p) for p in _children(server_pid)) - before
    return count / elapsed, 1000 * used / max(count, 1)


def print_figures(stats: LoadStats, indent: str = "  ") -> None:
    """The latency, error and CPU lines of one phase."""
    print(
        f"{indent}next: p50 {percentile(stats.next_ms, 50):6.1f} ms   "
        f"p99 {percentile(stats.next_ms, 99):6.1f} ms\n"
        f"{indent}vote: p50 {percentile(stats.vote_ms, 50):6.1f} ms   "
        f"p99 {percentile(stats.vote_ms, 99):6.1f} ms"
    )
    errors = ", ".join(f"{k}: {v}" for k, v in stats.errors.most_common()) or "none"
    print(f"{indent}errors: {errors}")
    per_vote = {k: 1000 * v / max(stats.votes, 1) for k, v in stats.cpu_s.items()}
    total = sum(per_vote.values())
    print(
        f"{indent}CPU per vote (ms): "
        + ", ".join(f"{k} {v:.1f}" for k, v in per_vote.items())
        + f"; total {total:.1f} ({os.cpu_count()} cores: "
        f"{1000 * (os.cpu_count() or 1) / max(total, 1e-9):,.0f} votes/s "
        "if nothing else ran)"
    )
    if stats.machine:
        print(
            f"{indent}machine over the window: {stats.machine['busy']:.0%} busy, "
            f"{stats.machine['steal']:.1%} stolen by the hypervisor"
        )


def _percents(text: str) -> tuple[int, ...]:
    """ "50,80" → (50, 80): open-loop levels, each 1 to 100 percent."""
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated whole percents, e.g. 50,80") from None
    if not levels or not all(1 <= level <= 100 for level in levels):
        raise argparse.ArgumentTypeError("each level between 1 and 100 percent")
    return levels


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- ceiling ---------------------------------------------------------------------------------


def _ceiling_rows(
    seeded: Seeded, count: int, rng: random.Random
) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(battle row without id, vote row without ids) pairs like the ones the app writes."""
    now = dt.datetime.now(dt.UTC)
    rows = []
    for _ in range(count):
        q = rng.choice(seeded.question_ids)
        a, b = rng.sample(seeded.contestant_ids, 2)
        evaluator = rng.choice(seeded.stored_evaluator_ids)
        answer_a, answer_b = seeded.answers[q][a], seeded.answers[q][b]
        battle: tuple[Any, ...] = (uuid.uuid4(), seeded.campaign_id, evaluator, "", "stored")
        battle += (q, answer_a, answer_b, "voted", now, now)
        vote = (seeded.campaign_id, evaluator, q, a, b, rng.choice(OUTCOMES), "", 1234, now)
        vote += (False, "{}")  # untainted
        rows.append((battle, vote))
    return rows


_BATTLE_INSERT = (
    f"INSERT INTO arena_battle ({', '.join(BATTLE_COLUMNS[1:])}) "
    f"VALUES ({', '.join(['%s'] * (len(BATTLE_COLUMNS) - 1))}) RETURNING id"
)
_VOTE_INSERT = (
    f"INSERT INTO arena_vote ({', '.join(VOTE_COLUMNS[1:])}) "
    f"VALUES (%s, {', '.join(['%s'] * (len(VOTE_COLUMNS) - 2))})"
)


def ceiling_one_per_txn(url: str, rows: Sequence[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> float:
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        for battle, vote in rows:
            with conn.transaction():
                cur = conn.execute(_BATTLE_INSERT, battle)
                battle_id = cur.fetchone()[0]  # type: ignore[index]
                conn.execute(_VOTE_INSERT, (battle_id, *vote))
        return len(rows) / (time.perf_counter() - start)


async def _ceiling_concurrent(
    url: str, rows: Sequence[tuple[tuple[Any, ...], tuple[Any, ...]]], connections: int
) -> float:
    conns = [await psycopg.AsyncConnection.connect(url) for _ in range(connections)]

    async def worker(conn: psycopg.AsyncConnection[Any], mine: Sequence[Any]) -> None:
        for battle, vote in mine:
            async with conn.transaction():
                cur = await conn.execute(_BATTLE_INSERT, battle)
                battle_id = (await cur.fetchone())[0]  # type: ignore[index]
                await conn.execute(_VOTE_INSERT, (battle_id, *vote))

    try:
        start = time.perf_counter()
        await asyncio.gather(*(worker(c, rows[i::connections]) for i, c in enumerate(conns)))
        return len(rows) / (time.perf_counter() - start)
    finally:
        for c in conns:
            await c.close()


def ceiling_batched(url: str, rows: Sequence[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> float:
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        with conn.transaction():
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT nextval(pg_get_serial_sequence('arena_battle', 'id')) "
                    "FROM generate_series(1, %s)",
                    (len(rows),),
                )
            ]
            _copy(
                conn,
                "arena_battle",
                BATTLE_COLUMNS,
                ((i, *b) for i, (b, _v) in zip(ids, rows, strict=True)),
            )
            _copy(
                conn,
                "arena_vote",
                VOTE_COLUMNS[1:],
                ((i, *v) for i, (_b, v) in zip(ids, rows, strict=True)),
            )
        return len(rows) / (time.perf_counter() - start)


# --- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent evaluators (32)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds (20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="uncounted seconds first (3)")
    parser.add_argument("--max-votes", type=int, default=1_000_000, help="stop after K votes")
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default="uvicorn")
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="uvicorn worker processes (4: two per core, as the views are synchronous and "
        "wait on PostgreSQL; with one per core at 32 clients the machine sat a third idle)",
    )
    parser.add_argument(
        "--floor-seconds", type=float, default=8.0, help="measured seconds of /healthz (8)"
    )
    parser.add_argument(
        "--no-open-loop", action="store_true", help="skip the open loop (its levels, target)"
    )
    parser.add_argument(
        "--open-seconds", type=float, default=30.0, help="measured seconds per open level (30)"
    )
    parser.add_argument(
        "--open-levels",
        type=_percents,
        default=(50, 80),
        help="open-loop arrival rates, percent of the saturation votes/s (50,80)",
    )
    parser.add_argument(
        "--reading",
        type=float,
        nargs=2,
        default=(0.3, 3.0),
        metavar=("MIN", "MAX"),
        help="an evaluator's reading time between next and vote, uniform in seconds (0.3 3)",
    )
    parser.add_argument(
        "--open-connections",
        type=int,
        default=128,
        help="keep-alive connections the open loop's sessions share (128)",
    )
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--contestants", type=int, default=10)
    parser.add_argument("--stored-votes", type=int, default=100_000)
    parser.add_argument(
        "--sampling",
        choices=("balanced", "active"),
        default="balanced",
        help="the campaign's pair sampling (balanced; active: a plan from a snapshot of the "
        "stored votes)",
    )
    parser.add_argument("--evaluators", type=int, default=2000, help="fresh ones for the load")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--keep", action="store_true", help="keep the server and database up")
    args = parser.parse_args(argv)
    if not 0 <= args.reading[0] <= args.reading[1] <= 60:
        parser.error("--reading wants 0 <= MIN <= MAX <= 60 seconds")
    if args.open_connections < 1:
        parser.error("--open-connections wants at least 1")

    rng = random.Random(20240814)
    scale = Scale(
        questions=args.questions,
        contestants=args.contestants,
        stored_votes=args.stored_votes,
        stored_evaluators=max(200, -(-args.stored_votes // args.questions)),
        load_evaluators=args.evaluators,
        sampling=args.sampling,
    )
    redis_url = f"{args.redis.rstrip('/')}/{args.redis_db}"
    env = {
        **os.environ,
        "DATABASE_URL": _url(args.pg, DB_NAME),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "DEBUG": "false",
        "ARENA_SSL_REDIRECT": "false",  # plain http on 127.0.0.1
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "ARENA_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "arena.settings",
        "PYTHONPATH": str(ROOT),
    }
    scratch_redis = redis.Redis.from_url(redis_url)
    scratch_redis.flushdb()
    proc: subprocess.Popen[bytes] | None = None
    try:
        t = time.perf_counter()
        db_recreate(args.pg)
        migrate(env)
        seeded = seed(env, scale, rng)
        print(
            f"seeded {scale.questions:,} questions x {scale.contestants} contestants, "
            f"{seeded.seed_vote_max_id:,} stored votes by {scale.stored_evaluators} evaluators, "
            f"{scale.load_evaluators:,} load evaluators with tokens "
            f"({time.perf_counter() - t:.1f} s)"
        )

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = server_start(args.server, args.workers, port, env)
        server_wait(base, proc)
        procs = f"{args.workers} worker processes" if args.server == "uvicorn" else "1 process"
        print(
            f"server: {args.server}, {procs}; {args.clients} clients, "
            f"{args.warmup:g} s warm-up + {args.seconds:g} s measured; "
            f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        stats, elapsed = uvloop.run(
            load_run(
                base,
                seeded.tokens,
                clients=args.clients,
                warmup=args.warmup,
                seconds=args.seconds,
                max_votes=args.max_votes,
                server_pid=proc.pid,
                dsn=env["DATABASE_URL"],
            )
        )
        app_rate = stats.votes / elapsed
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            recorded = conn.execute(
                "SELECT count(*) FROM arena_vote WHERE id > %s", (seeded.seed_vote_max_id,)
            ).fetchone()
        total_recorded = recorded[0] if recorded else 0
        print()
        print(f"app: {stats.votes:,} votes in {elapsed:.1f} s = {app_rate:,.0f} votes/s")
        print_figures(stats)
        print(f"  votes in the database from the load (warm-up included): {total_recorded:,}")

        healthz_rate, healthz_cpu = floor_run(port, args.clients, args.floor_seconds, proc.pid)
        floor = max(healthz_rate / 2, 1e-9)
        print()
        print(
            f"framework floor: GET /healthz through arena.asgi, same server, {args.clients} "
            f"clients, {args.floor_seconds:g} s: {healthz_rate:,.0f} requests/s "
            f"({healthz_cpu:.2f} ms server CPU/request) / 2 requests per vote "
            f"= {floor:,.0f} votes/s"
        )
        print(f"  capacity/floor ratio: {app_rate:,.0f} / {floor:,.0f} = {app_rate / floor:.1%}")

        levels: dict[int, OpenStats] = {}
        # No votes, no saturation to take a share of.
        open_levels = () if args.no_open_loop or app_rate <= 0 else args.open_levels
        if open_levels:
            print()
            print(
                f"open loop: Poisson arrivals of evaluator sessions, next → reading "
                f"{args.reading[0]:g}-{args.reading[1]:g} s (uniform) → vote; "
                f"{args.warmup:g} s warm-up + {args.open_seconds:g} s measured per level, "
                f"at most {args.open_connections} connections"
            )
        for percent in open_levels:
            rate = app_rate * percent / 100
            level = uvloop.run(
                open_run(
                    base,
                    seeded.tokens,
                    rate=rate,
                    reading=args.reading,
                    warmup=args.warmup,
                    seconds=args.open_seconds,
                    connections=args.open_connections,
                    server_pid=proc.pid,
                    dsn=env["DATABASE_URL"],
                    rng=random.Random(percent),
                )
            )
            levels[percent] = level
            print(
                f"  {percent}% of saturation, {rate:,.1f} votes/s: offered "
                f"{level.offered / args.open_seconds:,.1f} votes/s, achieved "
                f"{level.votes / args.open_seconds:,.1f} votes/s ({level.votes:,} votes); "
                f"dropped {level.dropped}, unfinished {level.unfinished}"
            )
            print_figures(level, indent="    ")
        if not args.keep:
            server_stop(proc)

        count = max(stats.votes, 1000)
        rows = _ceiling_rows(seeded, count, rng)
        url = env["DATABASE_URL"]
        one = ceiling_one_per_txn(url, rows[: count // 2])
        many = asyncio.run(_ceiling_concurrent(url, rows[count // 2 :], args.clients))
        batched = ceiling_batched(url, _ceiling_rows(seeded, count, rng))
        print()
        print(f"ceiling: raw psycopg inserts of {count:,} battle + vote rows")
        for label, rate in (
            ("one vote per transaction, 1 connection", one),
            (f"one vote per transaction, {args.clients} connections", many),
            ("all in one transaction (COPY)", batched),
        ):
            print(f"  {label:<46} {rate:>10,.0f} votes/s   app/ceiling {app_rate / rate:6.1%}")
        share = app_rate / floor
        print()
        print(
            f"target capacity >= {TARGET_FLOOR_SHARE:.0%} of the framework floor: "
            f"{'met' if share >= TARGET_FLOOR_SHARE else 'NOT met'} "
            f"(capacity/floor ratio {share:.1%})"
        )
        target = f"target p99 < {TARGET_P99_MS:.0f} ms at {TARGET_P99_LEVEL}% of saturation"
        at = levels.get(TARGET_P99_LEVEL)
        if at is None or not at.votes:
            print(f"{target}: not measured (no votes at an open-loop level of that percent)")
        else:
            p99 = max(percentile(at.next_ms, 99), percentile(at.vote_ms, 99))
            # Sessions the level could not finish or send would hide the slowest requests.
            met = p99 < TARGET_P99_MS and not (at.dropped or at.unfinished)
            print(
                f"{target}: {'met' if met else 'NOT met'} (worse p99 of next and vote "
                f"{p99:.1f} ms; dropped {at.dropped}, unfinished {at.unfinished})"
            )
    finally:
        if args.keep:
            print(f"kept: server pid {proc.pid if proc else '-'}, database {DB_NAME}")
        else:
            if proc is not None:
                server_stop(proc)
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            db_drop(args.pg)
            scratch_redis.flushdb()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
