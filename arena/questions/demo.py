"""Demo data for `make run`: an admin, an evaluator, example question sets, two contestants
and a campaign. Idempotent: running it again changes nothing that is already there."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from arena.models import Campaign, Contestant, EvaluatorProfile, QuestionSet
from arena.questions.imports import question_set_import

EXAMPLES = settings.BASE_DIR / "examples"
DEMO_SETS = [
    ("Demo questions (English)", "questions.csv"),
    ("Demo questions (Korean)", "questions_ko.jsonl"),
]
# Both demo contestants are the same SmolLM2-135M weights served by one engine; they differ
# in system prompt and sampling, which is enough to show the whole flow on a CPU. The system
# prompts name no persona ("a terse assistant"), since models like to repeat them.
DEMO_CONTESTANTS: list[dict[str, Any]] = [
    {
        "slug": "smollm2-helpful",
        "name": "SmolLM2-135M (helpful, T=0.7)",
        "system_prompt": "Answer the question clearly and completely.",
        "temperature": 0.7,
    },
    {
        "slug": "smollm2-terse",
        "name": "SmolLM2-135M (terse, T=0.2)",
        "system_prompt": "Answer in at most three sentences.",
        "temperature": 0.2,
    },
]


@dataclass(frozen=True)
class DemoCredentials:
    username: str
    password: str
    created: bool


def _password_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-admin-password"


def _demo_password() -> str:
    path = _password_file()
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(0o600)
    return password


@transaction.atomic
def demo_bootstrap(*, model_dir: Path | None = None) -> DemoCredentials:
    """Create the demo rows that are missing; never overwrite what an admin changed."""
    user_model = get_user_model()
    password = _demo_password()
    admin, created = user_model.objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True}
    )
    if created:
        admin.set_password(password)
        admin.save()
    EvaluatorProfile.objects.get_or_create(user=admin, defaults={"languages": ["en", "ko"]})

    sets = []
    for name, filename in DEMO_SETS:
        existing = QuestionSet.objects.filter(name=name).first()
        if existing is None:
            result = question_set_import(
                data=(EXAMPLES / filename).read_bytes(), filename=filename, set_name=name
            )
            existing = result.question_set
        sets.append(existing)

    model = str(model_dir or settings.ARENA_MODEL_CACHE)
    contestants = []
    for spec in DEMO_CONTESTANTS:
        contestant, _created = Contestant.objects.get_or_create(
            slug=spec["slug"],
            defaults={
                "name": spec["name"],
                "family": "SmolLM",
                "aliases": ["SmolLM", "SmolLM2"],
                "backend": Contestant.Backend.VLLM,
                "model": model,
                "system_prompt": spec["system_prompt"],
                "temperature": spec["temperature"],
                "max_tokens": 256,
                "max_model_len": 2048,
            },
        )
        contestants.append(contestant)

    campaign, created = Campaign.objects.get_or_create(
        slug="demo",
        defaults={
            "name": "Demo campaign",
            "description": "Two SmolLM2 variants on the example questions.",
            "allow_live": True,
            "leaderboard_public": True,
        },
    )
    if created:
        campaign.question_sets.set(sets)
        campaign.contestants.set(contestants)
        campaign.evaluators.add(admin)
    return DemoCredentials(username="admin", password=password, created=created)
