"""API tokens: random keys of which only a SHA-256 digest is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.contrib.auth.models import User
from django.utils import timezone

from arena.models import ApiToken


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token and return it with its key; the key is never retrievable again."""
    key = "arena_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, key_hash=_digest(key), prefix=key[6:14])
    return token, key


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The active token for this key, with its user, or None."""
    if not key.startswith("arena_") or len(key) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_digest(key), user__is_active=True)
        .first()
    )
    now = timezone.now()
    # Recorded at most once a minute: a write per request would cost more than the request.
    if token is not None and (
        token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1)
    ):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
