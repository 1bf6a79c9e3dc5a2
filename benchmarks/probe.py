"""Replay the security findings against a live instance: ``python -m benchmarks.probe URL``.

Each probe is one attack from the security review, sent over HTTP (and a websocket) to the
instance at URL; it prints PASS (the attack was refused as it should be), FAIL (it worked, or
the refusal was wrong: a 500, a body read to the end) or SKIP (the probe needs a credential
or an object it was not given). The exit status is 1 when any probe failed.

Credentials are optional, for probes that need them:
  --token KEY         an evaluator's API token (scope evaluate only)
  --staff-token KEY   a token of a staff user who has no model permissions
  --campaign SLUG     a campaign whose battles export the tokens should not reach
  --leaderboard-id N  the id of a campaign with a public leaderboard (websocket probe)

Meant for instances you run (loopback or your own test host): the login probe locks out a
random user name from your address for the cool-off time, nothing else is changed. Every
request has a time-out and the probes run once each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import socket
import ssl
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

TIMEOUT = 10.0
HUGE = 300_000_000  # the declared body of the oversized request (never sent)


@dataclass(frozen=True)
class Result:
    name: str
    verdict: str  # PASS, FAIL or SKIP
    detail: str


@dataclass(frozen=True)
class Target:
    base: str
    token: str | None
    staff_token: str | None
    campaign: str | None
    leaderboard_id: int | None
    login_failures: int

    def url(self, path: str) -> str:
        return self.base.rstrip("/") + path


def _client(**kwargs: object) -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT, follow_redirects=False, **kwargs)  # type: ignore[arg-type]


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def probe_body_limit(t: Target) -> Result:
    """A 300 MB unauthenticated POST: refused with 413 before the body is read."""
    parts = urlsplit(t.base)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    raw = socket.create_connection((host, port), timeout=TIMEOUT)
    sock: socket.socket = (
        ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        if parts.scheme == "https"
        else raw
    )
    with sock:
        head = (
            f"POST {parts.path.rstrip('/')}/healthz HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {HUGE}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"x" * 65536)
        started = time.monotonic()
        answer = b""
        try:
            while b"\r\n" not in answer and time.monotonic() - started < TIMEOUT:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except OSError as exc:
            return Result("body-limit", "FAIL", f"no answer before the body was sent: {exc}")
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 413 " in f"{status} ":
        return Result("body-limit", "PASS", f"{status!r} after 64 KiB of {HUGE:,} bytes")
    return Result("body-limit", "FAIL", f"answered {status!r} (want 413 before reading)")


def probe_json_depth(t: Target) -> Result:
    """A vote body of 100,000 '[': a 400 with a message, never a 500."""
    if t.token is None:
        return Result("json-depth", "SKIP", "needs --token")
    with _client(headers=_bearer(t.token)) as client:
        response = client.post(
            t.url(f"/api/v1/battles/{uuid.uuid4()}/vote"),
            content=b"[" * 100_000,
            headers={"Content-Type": "application/json"},
        )
    if response.status_code == 400:
        return Result("json-depth", "PASS", f"400: {response.text[:80]}")
    return Result("json-depth", "FAIL", f"answered {response.status_code} (want 400)")


_UNSAFE = re.compile(r"'unsafe-inline'|'unsafe-eval'|\*")


def probe_csp(t: Target) -> Result:
    """Evaluator pages carry a Content-Security-Policy whose scripts need a nonce."""
    problems = []
    with _client() as client:
        for path in ("/", "/accounts/login/"):
            response = client.get(t.url(path))
            policy = response.headers.get("Content-Security-Policy", "")
            scripts = next(
                (
                    d
                    for d in policy.split(";")
                    if d.strip().startswith(("script-src ", "default-src "))
                ),
                "",
            )
            if not policy:
                problems.append(f"{path}: no Content-Security-Policy")
            elif "script-src" not in policy or _UNSAFE.search(scripts):
                problems.append(f"{path}: scripts not restricted ({scripts.strip()[:60]})")
            if "frame-ancestors" not in policy:
                problems.append(f"{path}: no frame-ancestors")
    if problems:
        return Result("csp", "FAIL", "; ".join(problems))
    return Result("csp", "PASS", "script-src without unsafe-inline, frame-ancestors set")


def probe_hsts(t: Target) -> Result:
    """Over HTTPS the instance tells browsers to stay on HTTPS."""
    if not t.base.startswith("https://"):
        return Result("hsts", "SKIP", "the instance is served over plain HTTP")
    with _client() as client:
        header = client.get(t.url("/")).headers.get("Strict-Transport-Security", "")
    if "max-age=" in header and not header.startswith("max-age=0"):
        return Result("hsts", "PASS", header)
    return Result("hsts", "FAIL", f"Strict-Transport-Security: {header!r}")


def probe_visitor_session(t: Target) -> Result:
    """A cookieless visit to the home page stores no session."""
    with _client() as client:
        response = client.get(t.url("/"))
    cookies = response.headers.get_list("set-cookie")
    if any(c.lower().startswith("sessionid=") for c in cookies):
        return Result("visitor-session", "FAIL", "the home page set a session cookie")
    return Result("visitor-session", "PASS", f"{response.status_code}, no session cookie")


def probe_login_throttle(t: Target) -> Result:
    """Repeated bad passwords for one user name lock the login out."""
    username = f"probe-{secrets.token_hex(6)}"
    last = 0
    with _client() as client:
        for _ in range(t.login_failures + 1):
            page = client.get(t.url("/accounts/login/"))
            match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            if match is None:
                return Result("login-throttle", "FAIL", "no CSRF token on the login page")
            response = client.post(
                t.url("/accounts/login/"),
                data={
                    "csrfmiddlewaretoken": match.group(1),
                    "username": username,
                    "password": secrets.token_hex(8),
                },
                headers={"Referer": t.url("/accounts/login/")},
            )
            last = response.status_code
            if last in (403, 429):
                return Result("login-throttle", "PASS", f"locked out with {last}")
    return Result(
        "login-throttle",
        "FAIL",
        f"{t.login_failures + 1} bad passwords, still answered {last}",
    )


_CSV = b"prompt\nprobe question\n"


def probe_staff_import(t: Target) -> Result:
    """A staff token without model permissions cannot import a question set."""
    if t.staff_token is None:
        return Result("staff-import", "SKIP", "needs --staff-token")
    with _client(headers=_bearer(t.staff_token)) as client:
        response = client.post(
            t.url("/api/v1/question-sets/import"),
            data={"set": f"probe-{secrets.token_hex(4)}"},
            files={"file": ("probe.csv", _CSV, "text/csv")},
        )
    if response.status_code == 403:
        return Result("staff-import", "PASS", "403")
    return Result("staff-import", "FAIL", f"answered {response.status_code} (want 403)")


def probe_token_scope(t: Target) -> Result:
    """An evaluator's token reaches neither the import nor the battles export."""
    if t.token is None:
        return Result("token-scope", "SKIP", "needs --token")
    with _client(headers=_bearer(t.token)) as client:
        imported = client.post(
            t.url("/api/v1/question-sets/import"),
            data={"set": f"probe-{secrets.token_hex(4)}"},
            files={"file": ("probe.csv", _CSV, "text/csv")},
        )
        slug = t.campaign or "demo"
        exported = client.get(t.url(f"/api/v1/campaigns/{slug}/battles"))
    statuses = (imported.status_code, exported.status_code)
    if all(s in (403, 404) for s in statuses):
        return Result("token-scope", "PASS", f"import {statuses[0]}, export {statuses[1]}")
    return Result("token-scope", "FAIL", f"import {statuses[0]}, export {statuses[1]}")


def probe_websocket_flood(t: Target) -> Result:
    """An oversized websocket frame ends the connection instead of being answered."""
    if t.leaderboard_id is None:
        return Result("websocket-limits", "SKIP", "needs --leaderboard-id")
    import websockets  # uvicorn[standard] brings it

    parts = urlsplit(t.base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    url = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/ws/leaderboard/{t.leaderboard_id}/"

    async def attack() -> str:
        async with websockets.connect(
            url, origin=f"{parts.scheme}://{parts.netloc}", open_timeout=TIMEOUT
        ) as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"junk": "x" * 1_000_000}))
            try:
                answer = await asyncio.wait_for(ws.recv(), timeout=TIMEOUT)
            except websockets.ConnectionClosed as closed:
                return f"closed {closed.rcvd.code if closed.rcvd else 'without a code'}"
            return f"answered {str(answer)[:60]!r}"

    try:
        outcome = asyncio.run(attack())
    except (OSError, websockets.WebSocketException, TimeoutError) as exc:
        return Result("websocket-limits", "FAIL", f"could not connect: {exc}")
    verdict = "PASS" if outcome.startswith("closed") else "FAIL"
    return Result("websocket-limits", verdict, outcome)


PROBES: tuple[Callable[[Target], Result], ...] = (
    probe_body_limit,
    probe_json_depth,
    probe_csp,
    probe_hsts,
    probe_visitor_session,
    probe_login_throttle,
    probe_staff_import,
    probe_token_scope,
    probe_websocket_flood,
)


def run(target: Target) -> list[Result]:
    results = []
    for probe in PROBES:
        name = probe.__name__.removeprefix("probe_").replace("_", "-")
        try:
            results.append(probe(target))
        except (OSError, httpx.HTTPError) as exc:
            results.append(Result(name, "FAIL", f"{type(exc).__name__}: {exc}"))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="base URL of the instance, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token")
    parser.add_argument("--staff-token")
    parser.add_argument("--campaign")
    parser.add_argument("--leaderboard-id", type=int)
    parser.add_argument(
        "--login-failures", type=int, default=5, help="the instance's ARENA_LOGIN_FAILURES"
    )
    args = parser.parse_args(argv)
    if not re.match(r"^https?://[^/]+", args.url):
        parser.error("the URL must start with http:// or https://")
    target = Target(
        base=args.url,
        token=args.token,
        staff_token=args.staff_token,
        campaign=args.campaign,
        leaderboard_id=args.leaderboard_id,
        login_failures=args.login_failures,
    )
    results = run(target)
    for r in results:
        print(f"{r.verdict:4}  {r.name:18} {r.detail}")
    failed = sum(r.verdict == "FAIL" for r in results)
    passed = sum(r.verdict == "PASS" for r in results)
    skipped = sum(r.verdict == "SKIP" for r in results)
    print(f"probes: PASS {passed}, FAIL {failed}, SKIP {skipped}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
