"""API tokens: random keys of which only a SHA-256 digest is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.contrib.auth.models import User
from django.utils import timezone

from arena.accounts import store
from arena.battles.store import from_row
from arena.models import ApiToken


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token and return it with its key; the key is never retrievable again."""
    key = "arena_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, key_hash=_digest(key), prefix=key[6:14])
    return token, key


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The active token for this key, with its user, or None. Only the columns a request
    needs are loaded; the others load on first access."""
    if not key.startswith("arena_") or len(key) > 200:
        return None
    now = timezone.now()
    # Recorded at most once a minute: a write per request would cost more than the request.
    found = store.token_by_digest(digest=_digest(key), stale_before=now - dt.timedelta(minutes=1))
    if found is None:
        return None
    user = from_row(
        User,
        {
            "id": found.user_id,
            "username": found.username,
            "is_superuser": found.is_superuser,
            "is_staff": found.is_staff,
            "is_active": True,
        },
    )
    token = from_row(ApiToken, {"id": found.token_id, "user_id": found.user_id})
    token.user = user
    if found.stale:
        ApiToken.objects.filter(pk=found.token_id).update(last_used_at=now)
    return token
