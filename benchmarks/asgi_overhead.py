"""Server CPU per request of the ASGI handlers: ``python -m benchmarks.asgi_overhead``.

Serves ``/healthz`` (one ``SELECT 1``) with one uvicorn worker process under each of:
Django's stock ASGI handler, arena.asgi's handler (middleware and view in one thread hop on
reused threads), and Django's WSGI handler behind uvicorn's WSGI adapter as the floor; eight
keep-alive clients (benchmarks/load.py's) hit it for ``--seconds``. Printed per handler:
requests/s and the server process's CPU per request (Linux /proc), with the ratio to the
stock handler. Needs PostgreSQL (``--pg``, default the ``postgres`` database) and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import uvloop

from benchmarks.load import Connection, _children, _cpu_of, free_port, server_stop, server_wait

ROOT = Path(__file__).resolve().parent.parent

# Each entry: label, module source defining `application`, uvicorn interface.
HANDLERS = (
    (
        "Django's ASGIHandler",
        "from django.core.asgi import get_asgi_application\napplication = get_asgi_application()\n",
        "asgi3",
    ),
    ("arena.asgi handler", "from arena.asgi import django_asgi_app as application\n", "asgi3"),
    (
        "Django's WSGIHandler (floor)",
        "from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
        "wsgi",
    ),
)


async def _drive(port: int, clients: int, seconds: float) -> int:
    connections = [Connection("127.0.0.1", port) for _ in range(clients)]
    count = 0
    stop_at = time.monotonic() + seconds

    async def loop(connection: Connection) -> None:
        nonlocal count
        while time.monotonic() < stop_at:
            status, _body = await connection.get("/healthz")
            if status != 200:
                raise SystemExit(f"/healthz answered {status}")
            count += 1

    try:
        await asyncio.gather(*(loop(c) for c in connections))
    finally:
        for connection in connections:
            connection.close()
    return count


def measure(label: str, source: str, interface: str, env: dict[str, str], seconds: float) -> float:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "handler_under_test.py").write_text(source)
        port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", "handler_under_test:application"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        cmd += ["--interface", interface, "--lifespan", "off", "--no-access-log"]
        cmd += ["--log-level", "warning"]
        run_env = {**env, "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}"}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=run_env, start_new_session=True)
        try:
            server_wait(f"http://127.0.0.1:{port}", proc)
            uvloop.run(_drive(port, 8, 1.0))  # warm-up: pool, imports, prepared statements
            before = sum(_cpu_of(p) for p in _children(proc.pid))
            count = uvloop.run(_drive(port, 8, seconds))
            used = sum(_cpu_of(p) for p in _children(proc.pid)) - before
        finally:
            server_stop(proc)
    per_request = 1000 * used / max(count, 1)
    print(f"  {label:<30} {count / seconds:>7,.0f} req/s   {per_request:5.2f} ms CPU/request")
    return per_request


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args(argv)
    env = {
        **os.environ,
        "DATABASE_URL": args.pg,
        "REDIS_URL": args.redis,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "ARENA_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "arena.settings",
    }
    print(f"GET /healthz, 8 keep-alive clients, one uvicorn worker, {args.seconds:g} s each")
    figures = [measure(label, src, kind, env, args.seconds) for label, src, kind in HANDLERS]
    stock, ours, floor = figures
    print(
        f"arena.asgi / stock: {ours / stock:.2f} of the CPU per request; "
        f"WSGI floor / stock: {floor / stock:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
