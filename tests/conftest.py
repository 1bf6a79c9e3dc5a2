from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests import factories


@pytest.fixture
def staff_user(db: None) -> User:
    return factories.UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def evaluator(db: None) -> User:
    return factories.UserFactory()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: pytest.FixtureRequest) -> None:
    settings.PASSWORD_HASHERS = [  # type: ignore[attr-defined]
        "django.contrib.auth.hashers.MD5PasswordHasher"
    ]
