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


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """The open-campaign limits (arena/quality/limits.py) live in Redis for an hour; every
    test starts with none counted (only their keys are deleted: Celery and channels share the
    Redis database)."""
    import redis
    from django.conf import settings

    prefix = settings.CACHES["ratelimit"]["KEY_PREFIX"]
    client = redis.Redis.from_url(settings.CACHES["ratelimit"]["LOCATION"])
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass  # tests that need no Redis run without it
    finally:
        client.close()
