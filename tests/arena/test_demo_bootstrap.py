from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings

from arena.models import Campaign, Contestant, Question, QuestionSet

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, ...]:
    return (
        User.objects.count(),
        QuestionSet.objects.count(),
        Question.objects.count(),
        Contestant.objects.count(),
        Campaign.objects.count(),
    )


def test_make_run_bootstrap_is_idempotent(tmp_path: Path) -> None:
    with override_settings(VAR_DIR=tmp_path):
        call_command("migrate", verbosity=0)
        call_command("bootstrap_demo")
        first = _counts()
        password = (tmp_path / "demo-admin-password").read_text().strip()
        call_command("migrate", verbosity=0)
        call_command("bootstrap_demo")
    assert _counts() == first
    assert first == (1, 2, 10, 2, 1)
    admin = User.objects.get(username="admin")
    assert admin.is_staff
    assert admin.check_password(password)
    campaign = Campaign.objects.get(slug="demo")
    assert campaign.question_sets.count() == 2
    assert campaign.contestants.count() == 2
