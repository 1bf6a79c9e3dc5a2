from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> set[str]:
    text = (ROOT / "docker" / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_every_setting_variable_is_documented_in_env_example() -> None:
    sources = [ROOT / "arena" / "settings.py"]
    read = set()
    for source in sources:
        read |= set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]+)"', source.read_text()))
    assert read, "the pattern no longer finds the settings' variables"
    missing = read - _documented()
    assert not missing, f"document these in docker/.env.example: {sorted(missing)}"


def _compose_config(compose: Path, env: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "-f", str(compose), "--env-file", str(env), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=compose.parent,
    )


@pytest.mark.skipif(
    shutil.which("docker-compose") is None and not os.environ.get("CI"),
    reason="docker-compose not installed (CI installs it)",
)
def test_compose_file_is_valid_and_the_check_can_fail(tmp_path: Path) -> None:
    env = ROOT / "docker" / ".env.example"
    compose = ROOT / "docker" / "compose.yaml"
    result = _compose_config(compose, env)
    assert result.returncode == 0, result.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text(compose.read_text().replace("services:", "servics:", 1))
    assert _compose_config(broken, env).returncode != 0
