"""The accounts aggregate's hand-written statement: authenticating an API token, which runs
on every API request (the helpers are the battles store's)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from arena.battles.store import db_value, fetch_one
from arena.models import ApiToken

_AUTHENTICATE_SQL = """
SELECT t.id, t.last_used_at IS NULL OR t.last_used_at < %s,
       u.id, u.username, u.is_superuser, u.is_staff
FROM arena_apitoken t JOIN auth_user u ON u.id = t.user_id
WHERE t.key_hash = %s AND u.is_active
"""


@dataclass(frozen=True)
class TokenRow:
    token_id: int
    stale: bool  # its last use is older than ``stale_before``
    user_id: int
    username: str
    is_superuser: bool
    is_staff: bool


def token_by_digest(*, digest: str, stale_before: dt.datetime) -> TokenRow | None:
    """The token with this key digest, if its user is active."""
    row = fetch_one(_AUTHENTICATE_SQL, [db_value(ApiToken, "last_used_at", stale_before), digest])
    if row is None:
        return None
    token_id, stale, user_id, username, is_superuser, is_staff = row
    return TokenRow(
        token_id=token_id,
        stale=bool(stale),
        user_id=user_id,
        username=username,
        is_superuser=bool(is_superuser),
        is_staff=bool(is_staff),
    )
