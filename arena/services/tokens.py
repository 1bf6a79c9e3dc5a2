"""API tokens: random keys of which only a SHA-256 digest is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.contrib.auth.models import User
from django.utils import timezone

from arena import sql
from arena.models import ApiToken


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token and return it with its key; the key is never retrievable again."""
    key = "arena_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, key_hash=_digest(key), prefix=key[6:14])
    return token, key


# Run on every API request: one statement, the user's columns that requests read.
_AUTHENTICATE_SQL = """
SELECT t.id, t.last_used_at IS NULL OR t.last_used_at < %s,
       u.id, u.username, u.is_superuser, u.is_staff
FROM arena_apitoken t JOIN auth_user u ON u.id = t.user_id
WHERE t.key_hash = %s AND u.is_active
"""


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The active token for this key, with its user, or None. Only the columns a request
    needs are loaded; the others load on first access."""
    if not key.startswith("arena_") or len(key) > 200:
        return None
    now = timezone.now()
    # Recorded at most once a minute: a write per request would cost more than the request.
    stale_before = sql.db_value(ApiToken, "last_used_at", now - dt.timedelta(minutes=1))
    row = sql.fetch_one(_AUTHENTICATE_SQL, [stale_before, _digest(key)])
    if row is None:
        return None
    token_id, stale, user_id, username, is_superuser, is_staff = row
    user = sql.from_row(
        User,
        {
            "id": user_id,
            "username": username,
            "is_superuser": bool(is_superuser),
            "is_staff": bool(is_staff),
            "is_active": True,
        },
    )
    token = sql.from_row(ApiToken, {"id": token_id, "user_id": user_id})
    token.user = user
    if stale:
        ApiToken.objects.filter(pk=token_id).update(last_used_at=now)
    return token
