"""Shared data for the ranking tests: the public Chatbot Arena counts and synthetic votes."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from arena.ranking import Cells, cells_from_pair_counts

DATA = Path(__file__).resolve().parent.parent / "data"
ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)
# The published table names this model by its dated snapshot.
RENAMES = {"chatgpt-4o-latest-2024-08-08": "chatgpt-4o-latest"}


@dataclass(frozen=True)
class ArenaCounts:
    names: list[str]
    pairs: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    cells: Cells


@dataclass(frozen=True)
class Votes:
    a: npt.NDArray[np.int64]
    b: npt.NDArray[np.int64]
    outcome: npt.NDArray[np.int64]
    n_models: int


@pytest.fixture(scope="session")
def arena_counts() -> ArenaCounts:
    raw = json.loads((DATA / "chatbot_arena_20240814_counts.json").read_text())
    names = list(raw["models"])
    pairs = np.asarray(raw["X"], dtype=np.int64)
    counts = np.asarray(raw["Y"], dtype=np.int64)
    return ArenaCounts(names, pairs, counts, cells_from_pair_counts(pairs, counts, len(names)))


@pytest.fixture(scope="session")
def published() -> dict[str, dict[str, float]]:
    with (DATA / "chatbot_arena_published_bt_20240813.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        RENAMES.get(row["model"], row["model"]): {
            key: float(value) for key, value in row.items() if key != "model"
        }
        for row in rows
    }


def draw_votes(
    theta: npt.NDArray[np.float64],
    n_votes: int,
    rng: np.random.Generator,
    *,
    tie_share: float = 0.0,
    both_bad_share: float = 0.0,
) -> Votes:
    """Votes between random distinct pairs on random sides. Decisive outcomes follow BT with
    strengths ``theta`` (natural-log odds); ties and both-bad occur at fixed rates."""
    n = theta.size
    a = rng.integers(0, n, n_votes)
    b = (a + rng.integers(1, n, n_votes)) % n
    p_a = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
    u = rng.random(n_votes)
    decisive = np.where(rng.random(n_votes) < p_a, 0, 1)
    outcome = np.where(u < tie_share, 2, np.where(u < tie_share + both_bad_share, 3, decisive))
    return Votes(a.astype(np.int64), b.astype(np.int64), outcome.astype(np.int64), n)


@pytest.fixture
def make_votes() -> Callable[..., Votes]:
    return draw_votes
