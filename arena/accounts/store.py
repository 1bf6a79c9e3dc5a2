"""The accounts aggregate's hand-written statement: authenticating an API token, which runs
on every API request (the helpers are the battles store's)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from arena.battles.store import db_value, fetch_one
from arena.models import ApiToken

# One statement per request: the token, whether it has expired, its scopes and its user.
_AUTHENTICATE_SQL = """
SELECT t.id, t.last_used_at IS NULL OR t.last_used_at < %s,
       t.expires_at IS NOT NULL AND t.expires_at <= %s, t.scopes,
       u.id, u.username, u.is_superuser, u.is_staff
FROM arena_apitoken t JOIN auth_user u ON u.id = t.user_id
WHERE t.key_hash = %s AND u.is_active
"""


@dataclass(frozen=True)
class TokenRow:
    token_id: int
    stale: bool  # its last use is older than ``stale_before``
    expired: bool  # its ``expires_at`` is at or before ``now``
    scopes: str
    user_id: int
    username: str
    is_superuser: bool
    is_staff: bool


def token_by_digest(*, digest: str, now: dt.datetime, stale_before: dt.datetime) -> TokenRow | None:
    """The token with this key digest, if its user is active (expired or not: see ``expired``)."""
    row = fetch_one(
        _AUTHENTICATE_SQL,
        [
            db_value(ApiToken, "last_used_at", stale_before),
            db_value(ApiToken, "expires_at", now),
            digest,
        ],
    )
    if row is None:
        return None
    token_id, stale, expired, scopes, user_id, username, is_superuser, is_staff = row
    return TokenRow(
        token_id=token_id,
        stale=bool(stale),
        expired=bool(expired),
        scopes=scopes,
        user_id=user_id,
        username=username,
        is_superuser=bool(is_superuser),
        is_staff=bool(is_staff),
    )
