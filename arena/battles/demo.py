"""The second demo campaign of `make run`: a sample of the public Chatbot Arena battles, so a
newcomer's first leaderboard has intervals, heatmaps, a history and the style toggle before
anyone has voted.

The battles are drawn from the public counts in the repository's test data
(``tests/data/chatbot_arena_20240814_counts.json``: 1,670,250 anonymous battles of 2024-08-14
released by LMSYS, aggregated and published under the BSD licence by the leaderbot project):
`SAMPLE` battles among the `MODELS` most-battled models, each drawn with the probability of its
(pair, outcome) in the counts, on random sides. The counts carry no prompts, answers or times:
the questions are placeholders and the vote times are spread over the last `SPAN_DAYS` days;
the campaign's description says so. The votes go in through `battles_import` (validated, all
or nothing) in `STEPS` slices of time, with a recompute after each, so the leaderboard has a
rating history from the first run on.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from arena.battles.io import battles_import
from arena.models import Campaign, RatingSnapshot
from arena.ratings.recompute import ratings_recompute
from arena.ratings.snapshot import campaign_scope

COUNTS_FILE = settings.BASE_DIR / "tests" / "data" / "chatbot_arena_20240814_counts.json"
SLUG = "chatbot-arena-sample"
SAMPLE = 20_000
MODELS = 20
SPAN_DAYS = 60
STEPS = 5
QUESTIONS = 100
SEED = 20240814
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
DESCRIPTION = (
    "A random sample of {sample:,} of the 1,670,250 public Chatbot Arena battles of 2024-08-14 "
    "(LMSYS's anonymous battles, aggregated and published under the BSD licence by the "
    "leaderbot project), among its {models} most-battled models. The counts carry no prompts, "
    "answers or times: the questions are placeholders and the vote times are spread over the "
    "last {days} days. For showing the leaderboard only; nothing here is served to evaluators."
)


@dataclass(frozen=True)
class ArenaDemo:
    campaign: Campaign
    created: bool
    battles: int


def _sample(now: dt.datetime, size: int) -> list[dict[str, object]]:
    """``size`` clean battles drawn from the counts, in time order."""
    raw = json.loads(COUNTS_FILE.read_text(encoding="utf-8"))
    names = list(raw["models"])
    pairs = np.asarray(raw["X"], dtype=np.int64)
    counts = np.asarray(raw["Y"], dtype=np.int64)
    per_model = np.zeros(len(names), dtype=np.int64)
    np.add.at(per_model, pairs[:, 0], counts.sum(axis=1))
    np.add.at(per_model, pairs[:, 1], counts.sum(axis=1))
    chosen = set(np.argsort(-per_model, kind="stable")[:MODELS].tolist())
    keep = np.array([int(i) in chosen and int(j) in chosen for i, j in pairs.tolist()])
    pairs, counts = pairs[keep], counts[keep]
    rng = np.random.default_rng(SEED)
    cell_counts = counts.reshape(-1)
    drawn = rng.multinomial(size, cell_counts / cell_counts.sum())
    cell = np.repeat(np.arange(cell_counts.size), drawn)
    rng.shuffle(cell)
    pair, outcome = np.divmod(cell, 4)
    swap = rng.random(cell.size) < 0.5
    first, second = pairs[pair, 0], pairs[pair, 1]
    side_a = np.where(swap, second, first)
    side_b = np.where(swap, first, second)
    # A swapped decisive battle changes which side won; ties and both-bad stay.
    outcome = np.where(swap & (outcome < 2), 1 - outcome, outcome)
    start = now - dt.timedelta(days=SPAN_DAYS)
    offsets = np.sort(rng.uniform(0, SPAN_DAYS * 86_400, cell.size))
    question = rng.integers(0, QUESTIONS, cell.size)
    return [
        {
            "model_a": names[a],
            "model_b": names[b],
            "winner": WINNERS[o],
            "tstamp": round(start.timestamp() + t, 3),
            "judge": f"arena-{k % 997}",
            "language": "English",
            "turn": 1,
            "question_id": f"arena-{q:03d}",
        }
        for k, (a, b, o, t, q) in enumerate(
            zip(
                side_a.tolist(),
                side_b.tolist(),
                outcome.tolist(),
                offsets.tolist(),
                question.tolist(),
                strict=True,
            )
        )
    ]


def arena_demo_bootstrap(*, sample: int = SAMPLE) -> ArenaDemo:
    """Create the sample campaign with ``sample`` votes and their rating history, unless it
    exists (then nothing changes)."""
    existing = Campaign.objects.filter(slug=SLUG).first()
    if existing is not None:
        return ArenaDemo(existing, False, existing.votes.count())
    now = timezone.now()
    battles = _sample(now, sample)
    with transaction.atomic():
        campaign = Campaign.objects.create(
            slug=SLUG,
            name="Chatbot Arena sample (public data, 2024-08-14)",
            description=DESCRIPTION.format(sample=len(battles), models=MODELS, days=SPAN_DAYS),
            leaderboard_public=True,
            active=False,
        )
        step = -(-len(battles) // STEPS)
        for first in range(0, len(battles), step):
            chunk = battles[first : first + step]
            battles_import(campaign=campaign, data=json.dumps(chunk), create_contestants=True)
            ratings_recompute(campaign_id=campaign.pk)
            # The snapshot stands for the ratings as of its slice's last vote.
            as_of = dt.datetime.fromtimestamp(float(chunk[-1]["tstamp"]), tz=dt.UTC)  # type: ignore[arg-type]
            latest = (
                RatingSnapshot.objects.filter(campaign=campaign, scope=campaign_scope(campaign.pk))
                .order_by("-computed_at", "-id")
                .first()
            )
            if latest is not None and first + step < len(battles):
                latest.computed_at = as_of
                latest.payload = {**latest.payload, "computed_at": as_of.isoformat()}
                latest.save(update_fields=["computed_at", "payload"])
    return ArenaDemo(campaign, True, len(battles))
