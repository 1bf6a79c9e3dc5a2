"""API tokens: random keys of which only a SHA-256 digest is stored, each with scopes and an
optional expiry. A call needs one of its endpoint's scopes on the token and the endpoint's
model permissions on the user: a scope narrows what a key can do, never widens the account."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable, Mapping

from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext as _

from arena.accounts import store
from arena.battles.store import from_row
from arena.models import ApiToken

Scope = ApiToken.Scope

# The model permissions behind each scope: the admin's rules for the same work.
IMPORT_PERMISSIONS = ("arena.add_questionset", "arena.add_question")
EXPORT_PERMISSIONS = ("arena.view_battle", "arena.view_vote")
SCOPE_PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    Scope.EVALUATE: (),
    Scope.IMPORT: IMPORT_PERMISSIONS,
    Scope.EXPORT: EXPORT_PERMISSIONS,
}


class TokenRefused(Exception):
    """A token that may not be made as asked (a scope the user lacks, an expiry past)."""


class TokenExpired(Exception):
    """The key is right but its token's ``expires_at`` has passed."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_token_scopes_allowed(*, user: User) -> list[str]:
    """The scopes a token of ``user`` may hold: each whose permissions the user has, and
    ``admin`` (every scope) for superusers only."""
    allowed = [s for s, perms in SCOPE_PERMISSIONS.items() if user.has_perms(perms)]
    if user.is_active and user.is_superuser:
        allowed.append(Scope.ADMIN)
    return allowed


def api_token_create(
    *,
    user: User,
    name: str,
    scopes: Iterable[str] | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its key; the key is never retrievable again.

    ``scopes`` defaults to every scope the user's permissions allow except ``admin``, which
    is given only when asked for. Raises `TokenRefused` for a scope the user may not hold or
    an expiry that is not in the future.
    """
    allowed = api_token_scopes_allowed(user=user)
    wanted = [s for s in allowed if s != Scope.ADMIN] if scopes is None else list(scopes)
    unknown = sorted(set(wanted) - set(Scope.values))
    if unknown:
        raise TokenRefused(_("Unknown scopes: %(s)s.") % {"s": ", ".join(unknown)})
    refused = sorted(set(wanted) - set(allowed))
    if refused:
        raise TokenRefused(
            _("%(user)s may not hold these scopes: %(s)s.")
            % {"user": user.get_username(), "s": ", ".join(refused)}
        )
    if not wanted:
        raise TokenRefused(_("A token needs at least one scope."))
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenRefused(_("The expiry must be in the future."))
    key = "arena_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_hash=_digest(key),
        prefix=key[6:14],
        scopes=" ".join(s for s in Scope.values if s in wanted),
        expires_at=expires_at,
    )
    return token, key


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The token for this key, with its user and scopes, or None; raises `TokenExpired` for
    an expired one. Only the columns a request needs are loaded; the others load on first
    access."""
    if not key.startswith("arena_") or len(key) > 200:
        return None
    now = timezone.now()
    # Recorded at most once a minute: a write per request would cost more than the request.
    found = store.token_by_digest(
        digest=_digest(key), now=now, stale_before=now - dt.timedelta(minutes=1)
    )
    if found is None:
        return None
    if found.expired:
        raise TokenExpired
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
    token = from_row(
        ApiToken, {"id": found.token_id, "user_id": found.user_id, "scopes": found.scopes}
    )
    token.user = user
    if found.stale:
        ApiToken.objects.filter(pk=found.token_id).update(last_used_at=now)
    return token
