from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from arena.env import env_bool, env_secret

ROOT = Path(__file__).resolve().parents[2]


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, "-c", "import arena.settings"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_settings_refuse_debug_false_without_a_secret_key() -> None:
    result = _import_settings(DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_settings_start_with_debug_false_and_a_secret_key() -> None:
    result = _import_settings(DEBUG="false", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr


def test_secret_key_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("from-a-file\n")
    result = _import_settings(DEBUG="false", SECRET_KEY_FILE=str(secret))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("value", ["yes", "1", "on", "TRUE!"])
def test_env_bool_accepts_only_true_or_false(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ARENA_FLAG", value)
    with pytest.raises(ImproperlyConfigured, match="ARENA_FLAG"):
        env_bool("ARENA_FLAG", False)


def test_env_bool_reads_true_and_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_FLAG", "True")
    assert env_bool("ARENA_FLAG", False) is True
    monkeypatch.setenv("ARENA_FLAG", "false")
    assert env_bool("ARENA_FLAG", True) is False


def test_env_secret_prefers_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_text("filed")
    monkeypatch.setenv("TOKEN", "inline")
    monkeypatch.setenv("TOKEN_FILE", str(path))
    assert env_secret("TOKEN") == "filed"


def test_visibility_timeout_exceeds_the_hard_time_limit() -> None:
    from django.conf import settings

    assert (
        settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
        > settings.ARENA_GENERATION_HARD_LIMIT
    )
