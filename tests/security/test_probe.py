"""`python -m benchmarks.probe` against a live instance: every attack is refused.

A real uvicorn server runs `arena.asgi` on the test database; the probe gets the credentials
its probes need (an evaluator's token, a staff token without model permissions, a campaign
and a public leaderboard), so no probe is skipped but HSTS (plain HTTP here).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from arena.accounts.tokens import api_token_create
from benchmarks import probe
from benchmarks.load import free_port
from tests import factories
from tests.workers import ROOT, worker_env

pytestmark = pytest.mark.slow
LOGIN_FAILURES = 3


@pytest.fixture
def server(transactional_db: None) -> Iterator[str]:
    port = free_port()
    env = worker_env(
        DEBUG="false",
        SECRET_KEY="probe-" + "k" * 60,
        ALLOWED_HOSTS="127.0.0.1",
        ARENA_SECURE_COOKIES="false",
        ARENA_SSL_REDIRECT="false",  # plain HTTP on loopback
        ARENA_LOGIN_FAILURES=str(LOGIN_FAILURES),
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "arena.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the server exited"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not answer /healthz")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_every_probe_is_refused_by_a_live_instance(server: str) -> None:
    campaign, _c, _q = factories.campaign_with_answers(
        leaderboard_public=True, public_refresh="live"
    )
    evaluator = factories.UserFactory()
    campaign.evaluators.add(evaluator)
    staff = factories.UserFactory(is_staff=True)  # staff, but no model permissions
    _t, evaluator_key = api_token_create(user=evaluator, name="probe")
    _t, staff_key = api_token_create(user=staff, name="probe")

    results = probe.run(
        probe.Target(
            base=server,
            token=evaluator_key,
            staff_token=staff_key,
            campaign=campaign.slug,
            leaderboard_id=campaign.pk,
            login_failures=LOGIN_FAILURES,
        )
    )
    verdicts = {r.name: (r.verdict, r.detail) for r in results}
    assert len(verdicts) == len(probe.PROBES)
    failed = {name: v for name, v in verdicts.items() if v[0] != "PASS" and name != "hsts"}
    assert not failed, failed
    assert verdicts["hsts"][0] == "SKIP"


def test_the_probe_reports_an_open_door_as_failed(server: str) -> None:
    """The probe can fail: an instance without a login throttle would pass the attack."""
    result = probe.probe_login_throttle(
        probe.Target(
            base=server,
            token=None,
            staff_token=None,
            campaign=None,
            leaderboard_id=None,
            login_failures=LOGIN_FAILURES - 2,  # too few attempts to reach the lockout
        )
    )
    assert result.verdict == "FAIL", result
