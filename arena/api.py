"""The JSON API for scripts: bearer-token auth (``Authorization: Bearer arena_…``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from arena.services.imports import QuestionImportError, question_set_import
from arena.services.tokens import api_token_authenticate

View = Callable[..., HttpResponse]


def api_error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def token_required(*, staff: bool = False) -> Callable[[View], View]:
    """Authenticate by bearer token (sessions are not accepted: scripts only, no CSRF)."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        @csrf_exempt
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            header = request.headers.get("Authorization", "")
            scheme, _sep, key = header.partition(" ")
            token = api_token_authenticate(key=key.strip()) if scheme == "Bearer" else None
            if token is None:
                response = api_error(401, _("A valid API token is required."))
                response["WWW-Authenticate"] = "Bearer"
                return response
            user: AbstractBaseUser = token.user
            if staff and not getattr(user, "is_staff", False):
                return api_error(403, _("This endpoint is for staff."))
            request.user = user  # type: ignore[assignment]
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


@require_http_methods(["POST"])
@token_required(staff=True)
def question_set_import_api(request: HttpRequest) -> HttpResponse:
    """POST multipart ``file`` + ``set`` (+ ``mode`` refuse|update) → the import's counts."""
    upload = request.FILES.get("file")
    set_name = request.POST.get("set", "")
    mode = request.POST.get("mode", "refuse")
    if upload is None:
        return api_error(400, _("Send the questions as a multipart field named 'file'."))
    if mode not in ("refuse", "update"):
        return api_error(400, _("mode must be 'refuse' or 'update'."))
    try:
        result = question_set_import(
            data=upload.read(),
            filename=upload.name or "",
            set_name=set_name,
            mode=mode,  # type: ignore[arg-type]
            user=request.user if isinstance(request.user, User) else None,
        )
    except QuestionImportError as exc:
        return api_error(
            400,
            _("The file was refused; nothing was imported."),
            errors=[{"line": e.line, "message": e.message} for e in exc.errors],
        )
    return JsonResponse(
        {
            "question_set": result.question_set.name,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
        },
        status=201 if result.created else 200,
    )
