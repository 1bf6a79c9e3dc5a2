from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from arena.accounts.tokens import Scope, TokenRefused, api_token_create


class Command(BaseCommand):
    help = (
        "Create an API token for a user and print its key (shown only this once). Scopes "
        "default to every one the user's permissions allow, except admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument(
            "--scopes", nargs="+", choices=Scope.values, metavar="SCOPE", help=" ".join(Scope)
        )
        parser.add_argument(
            "--expires-days", type=int, metavar="N", help="expire N days from now (N ≥ 1)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: options["username"]})
        except user_model.DoesNotExist:
            raise CommandError(f"no user named {options['username']!r}") from None
        days = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be at least 1")
        expires_at = timezone.now() + dt.timedelta(days=days) if days is not None else None
        try:
            token, key = api_token_create(
                user=user, name=options["name"], scopes=options["scopes"], expires_at=expires_at
            )
        except TokenRefused as exc:
            raise CommandError(str(exc)) from None
        expires = token.expires_at.isoformat() if token.expires_at else "never"
        self.stderr.write(f"scopes: {token.scopes}; expires: {expires}")
        self.stdout.write(key)
