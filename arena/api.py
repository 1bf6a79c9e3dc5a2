"""The JSON API for scripts: bearer-token auth (``Authorization: Bearer arena_…``)."""

from __future__ import annotations

import functools
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from arena import jsonbounds
from arena.accounts.tokens import (
    EXPORT_PERMISSIONS,
    IMPORT_PERMISSIONS,
    Scope,
    TokenExpired,
    api_token_authenticate,
)
from arena.battles.io import battles_export_text
from arena.battles.preferences import preferences_write
from arena.battles.read import (
    NotFound,
    RevealRefused,
    battle_get_for_evaluator,
    battle_reveal,
    campaign_access,
    campaign_list_for,
)
from arena.battles.rules import AccessDenied, Owner
from arena.battles.sampler import battle_expire, battle_next, battle_skip
from arena.battles.votes import VoteRefused, vote_cast_and_reveal
from arena.grading.serve import (
    GradeRefused,
    grade_cast,
    grading_get_for_evaluator,
    grading_next,
    grading_skip,
)
from arena.judging.read import judge_run_document, judge_run_get, judge_run_list
from arena.models import GRADE_CRITERIA, Campaign
from arena.quality.read import evaluator_quality_list
from arena.questions.imports import (
    QuestionImportError,
    more_errors_text,
    question_set_import,
    upload_read,
)
from arena.ratings.history import rating_changes, rating_history, since_parse
from arena.ratings.read import (
    LeaderboardRefused,
    leaderboard_campaign_get,
    leaderboard_document,
    leaderboard_snapshot_get,
    leaderboard_until,
)

View = Callable[..., HttpResponse]


def api_error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _unauthorized(message: str, challenge: str) -> JsonResponse:
    response = api_error(401, message)
    response["WWW-Authenticate"] = challenge
    return response


def token_required(
    *, scopes: tuple[str, ...] = (Scope.EVALUATE,), permissions: tuple[str, ...] = ()
) -> Callable[[View], View]:
    """Authenticate by bearer token (sessions are not accepted: scripts only, no CSRF). The
    token must hold one of ``scopes`` and its user every one of ``permissions``."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        @csrf_exempt
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            header = request.headers.get("Authorization", "")
            scheme, _sep, key = header.partition(" ")
            try:
                token = api_token_authenticate(key=key.strip()) if scheme == "Bearer" else None
            except TokenExpired:
                return _unauthorized(
                    _("This API token has expired; ask for a new one."),
                    'Bearer error="invalid_token", error_description="The token has expired"',
                )
            if token is None:
                return _unauthorized(_("A valid API token is required."), "Bearer")
            if not any(token.has_scope(s) for s in scopes):
                response = api_error(
                    403,
                    _("This API token lacks the scope this endpoint needs."),
                    required_scopes=list(scopes),
                )
                response["WWW-Authenticate"] = (
                    f'Bearer error="insufficient_scope", scope="{" ".join(scopes)}"'
                )
                return response
            user = token.user
            if permissions and not user.has_perms(permissions):
                return api_error(
                    403,
                    _("Your account lacks the permissions this endpoint needs."),
                    required_permissions=list(permissions),
                )
            request.user = user
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


@require_http_methods(["POST"])
@token_required(scopes=(Scope.IMPORT,), permissions=IMPORT_PERMISSIONS)
def question_set_import_api(request: HttpRequest) -> HttpResponse:
    """POST multipart ``file`` + ``set`` (+ ``mode`` refuse|update) → the import's counts.
    Scope ``import``; add question set and add question, and for ``update`` change question."""
    upload = request.FILES.get("file")
    set_name = request.POST.get("set", "")
    mode = request.POST.get("mode", "refuse")
    if upload is None:
        return api_error(400, _("Send the questions as a multipart field named 'file'."))
    if mode not in ("refuse", "update"):
        return api_error(400, _("mode must be 'refuse' or 'update'."))
    if mode == "update" and not request.user.has_perm("arena.change_question"):
        return api_error(
            403,
            _("Your account lacks the permissions this endpoint needs."),
            required_permissions=["arena.change_question"],
        )
    try:
        result = question_set_import(
            data=upload_read(upload.chunks(), size=upload.size),
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
            more_errors=exc.more,
            **({"more_errors_text": more_errors_text(exc.more)} if exc.more else {}),
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


# --- The evaluator flow, for crowd platforms and scripts ------------------------------------


def _owner(request: HttpRequest) -> Owner:
    return Owner(user=request.user)  # type: ignore[arg-type]


# The API's bodies are small objects (a vote is two short strings); the limits refuse, with a
# 400 that says why, what no client sends: a large body, or one nested deeper than a few levels
# (CPython's json recurses per level; jsonbounds checks the depth first, without recursion).
JSON_MAX_BYTES = 64 * 1024
JSON_MAX_DEPTH = 8


def _json_body(request: HttpRequest) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); ApiInputError if it is anything else."""
    too_large = _("The body is over the limit of %(n)s bytes.") % {"n": f"{JSON_MAX_BYTES:,}"}
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > JSON_MAX_BYTES:
        raise ApiInputError(too_large)  # refused before the body is read
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiInputError(too_large) from None
    if not raw:
        return {}
    if len(raw) > JSON_MAX_BYTES:
        raise ApiInputError(too_large)
    try:
        body = jsonbounds.loads(raw.decode("utf-8-sig"), max_depth=JSON_MAX_DEPTH)
    except jsonbounds.JSONTooDeep:
        raise ApiInputError(
            _("The body is nested more than %(n)d levels deep.") % {"n": JSON_MAX_DEPTH}
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiInputError(_("The body must be a JSON object.")) from None
    if not isinstance(body, dict):
        raise ApiInputError(_("The body must be a JSON object."))
    return body


class ApiInputError(Exception):
    pass


@require_http_methods(["GET"])
@token_required()
def campaign_list_api(request: HttpRequest) -> HttpResponse:
    campaigns = campaign_list_for(owner=_owner(request))
    return JsonResponse({"campaigns": [asdict(c) for c in campaigns]})


@require_http_methods(["POST"])
@token_required()
def campaign_next_api(request: HttpRequest, slug: str) -> HttpResponse:
    owner = _owner(request)
    try:
        campaign = campaign_access(slug=slug, owner=owner)
    except AccessDenied as exc:
        return api_error(404, str(exc))
    battle = battle_next(campaign=campaign, owner=owner)
    if battle is None:
        return JsonResponse({"battle": None, "detail": _("The pool is empty for you.")})
    public = battle_get_for_evaluator(code=str(battle.code), owner=owner)
    return JsonResponse({"battle": public.as_json()})


@require_http_methods(["GET"])
@token_required()
def battle_api(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    try:
        owner = _owner(request)
        public = battle_get_for_evaluator(code=str(code), owner=owner)
    except NotFound:
        return api_error(404, _("There is no such battle for you."))
    except AccessDenied as exc:
        return api_error(403, str(exc), code="no_access")
    if public.expired_now:
        battle_expire(code=str(code), owner=owner)
    return JsonResponse({"battle": public.as_json()})


@require_http_methods(["POST"])
@token_required()
def battle_vote_api(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    owner = _owner(request)
    try:
        body = _json_body(request)
    except ApiInputError as exc:
        return api_error(400, str(exc))
    outcome, reason = body.get("outcome", ""), body.get("reason", "")
    if not isinstance(outcome, str) or not isinstance(reason, str):
        return api_error(400, _("outcome and reason must be strings."))
    acceptable = body.get("acceptable") or {}
    if (
        not isinstance(acceptable, dict)
        or not set(acceptable) <= {"a", "b"}
        or any(v is not None and not isinstance(v, bool) for v in acceptable.values())
    ):
        return api_error(400, _("acceptable must be an object with keys a and b."))
    try:
        cast = vote_cast_and_reveal(
            code=str(code),
            owner=owner,
            outcome=outcome,
            reason=reason,
            acceptable=(acceptable.get("a"), acceptable.get("b")),
        )
    except VoteRefused as exc:
        return api_error(exc.status, str(exc), code=exc.code)
    reveal = cast.reveal.as_json() if cast.reveal is not None else None
    return JsonResponse({"outcome": cast.vote.outcome, "reveal": reveal}, status=201)


@require_http_methods(["POST"])
@token_required()
def battle_skip_api(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    try:
        skipped = battle_skip(code=str(code), owner=_owner(request))
    except AccessDenied as exc:
        return api_error(403, str(exc), code="no_access")
    if skipped is None:
        return api_error(404, _("There is no such battle for you."))
    return JsonResponse({"skipped": True})


@require_http_methods(["GET"])
@token_required()
def battle_reveal_api(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    try:
        reveal = battle_reveal(code=str(code), owner=_owner(request))
    except NotFound:
        return api_error(404, _("There is no such battle for you."))
    except AccessDenied as exc:
        return api_error(403, str(exc), code="no_access")
    except RevealRefused:
        return api_error(
            403, _("Identities are shown only after your vote, if the campaign allows.")
        )
    return JsonResponse(reveal.as_json())


@require_http_methods(["GET"])
def openapi_api(request: HttpRequest) -> HttpResponse:
    path = settings.BASE_DIR / "arena" / "openapi.json"
    return JsonResponse(json.loads(path.read_text(encoding="utf-8")))


# --- Leaderboards and battles out ------------------------------------------------------------


def _leaderboard_refusal(exc: LeaderboardRefused) -> HttpResponse:
    if exc.reason in ("forbidden", "login_required"):
        return api_error(403, _("This leaderboard is for the team only."))
    if exc.reason == "held":
        return api_error(403, _("This leaderboard opens when the campaign closes."))
    return api_error(404, _("There is no such leaderboard."))


@require_http_methods(["GET"])
@token_required(scopes=(Scope.EVALUATE, Scope.EXPORT))
def leaderboard_api(request: HttpRequest, slug: str) -> HttpResponse:
    """GET ``?scope=`` → the latest stored snapshot of that scope (default: the campaign).
    Public leaderboards answer any token, as of the time their campaign's ``public_refresh``
    says; team-only ones answer staff."""
    try:
        campaign = leaderboard_campaign_get(slug=slug, user=request.user)
        snapshot = leaderboard_snapshot_get(
            campaign=campaign,
            scope=request.GET.get("scope"),
            until=leaderboard_until(campaign=campaign, user=request.user),
        )
    except LeaderboardRefused as exc:
        return _leaderboard_refusal(exc)
    return JsonResponse(leaderboard_document(campaign=campaign, snapshot=snapshot))


@require_http_methods(["GET"])
@token_required(scopes=(Scope.EVALUATE, Scope.EXPORT))
def leaderboard_history_api(request: HttpRequest, slug: str) -> HttpResponse:
    """GET ``?since=`` → each kept snapshot of the campaign's own scope, oldest first: when,
    votes, interval method and every rated contestant's rating, interval, rank and votes."""
    try:
        campaign = leaderboard_campaign_get(slug=slug, user=request.user)
        until = leaderboard_until(campaign=campaign, user=request.user)
    except LeaderboardRefused as exc:
        return _leaderboard_refusal(exc)
    since = since_parse(request.GET.get("since"))
    if request.GET.get("since") and since is None:
        return api_error(400, _("since must be a date (YYYY-MM-DD) or an ISO date-time."))
    points = rating_history(campaign=campaign, since=since, until=until)
    return JsonResponse({"campaign": campaign.slug, "points": [p.to_json() for p in points]})


@require_http_methods(["GET"])
@token_required(scopes=(Scope.EVALUATE, Scope.EXPORT))
def leaderboard_changes_api(request: HttpRequest, slug: str) -> HttpResponse:
    """GET ``?since=`` (required) → rank and rating moves, new contestants and those no
    longer rated, between the last snapshot kept at or before ``since`` and the latest."""
    try:
        campaign = leaderboard_campaign_get(slug=slug, user=request.user)
        until = leaderboard_until(campaign=campaign, user=request.user)
    except LeaderboardRefused as exc:
        return _leaderboard_refusal(exc)
    since = since_parse(request.GET.get("since"))
    if since is None:
        return api_error(400, _("since must be a date (YYYY-MM-DD) or an ISO date-time."))
    changes = rating_changes(campaign=campaign, since=since, until=until)
    return JsonResponse({"campaign": campaign.slug, **changes.to_json()})


@require_http_methods(["GET"])
@token_required(scopes=(Scope.EXPORT,), permissions=EXPORT_PERMISSIONS)
def battles_export_api(request: HttpRequest, slug: str) -> HttpResponse:
    """GET → the campaign's votes as clean battles (a JSON array; ``?format=jsonl`` for lines).
    Scope ``export``; view battle and view vote (each row names its voter)."""
    try:
        campaign = leaderboard_campaign_get(slug=slug, user=request.user)
    except LeaderboardRefused:
        return api_error(404, _("There is no such campaign."))
    lines = request.GET.get("format") == "jsonl"
    # Built whole: under ASGI a streamed sync iterator is buffered anyway. Exports of millions
    # of votes belong to `manage.py export_battles`, which streams to a file.
    return HttpResponse(
        "".join(battles_export_text(campaign=campaign, lines=lines)),
        content_type="application/jsonl" if lines else "application/json",
    )


@require_http_methods(["GET"])
@token_required(scopes=(Scope.EXPORT,), permissions=EXPORT_PERMISSIONS)
def preferences_export_api(request: HttpRequest, slug: str) -> HttpResponse:
    """GET → the campaign's votes as preference data for training (`arena.battles.preferences`):
    ``?format=jsonl`` (default) or ``parquet``, ``ties=drop|flag``, ``excluded=drop|keep``.
    Scope ``export``; view battle and view vote."""
    try:
        campaign = leaderboard_campaign_get(slug=slug, user=request.user)
    except LeaderboardRefused:
        return api_error(404, _("There is no such campaign."))
    fmt, ties, excluded = (
        request.GET.get("format", "jsonl"),
        request.GET.get("ties", "drop"),
        request.GET.get("excluded", "drop"),
    )
    if fmt not in ("jsonl", "parquet") or ties not in ("drop", "flag"):
        return api_error(400, _("Use format=jsonl|parquet and ties=drop|flag."))
    if excluded not in ("drop", "keep"):
        return api_error(400, _("Use excluded=drop|keep."))
    buffer = io.BytesIO()
    # Built whole, like the battles export; millions of votes belong to the command.
    preferences_write(
        campaign=campaign,
        stream=buffer,
        fmt="parquet" if fmt == "parquet" else "jsonl",
        ties="flag" if ties == "flag" else "drop",
        excluded="keep" if excluded == "keep" else "drop",
    )
    response = HttpResponse(
        buffer.getvalue(),
        content_type="application/jsonl" if fmt == "jsonl" else "application/vnd.apache.parquet",
    )
    response["Content-Disposition"] = f'attachment; filename="{campaign.slug}-preferences.{fmt}"'
    return response


@require_http_methods(["GET"])
@token_required(scopes=(Scope.EXPORT,), permissions=EXPORT_PERMISSIONS)
def evaluator_quality_api(request: HttpRequest, slug: str) -> HttpResponse:
    """GET → per-evaluator vote quality and the agreement figures (`arena.quality.read`), as
    ``manage.py evaluator_quality --json`` prints them. Scope ``export``; view battle and view
    vote (each row names an evaluator)."""
    try:
        campaign = leaderboard_campaign_get(slug=slug, user=request.user)
    except LeaderboardRefused:
        return api_error(404, _("There is no such campaign."))
    return JsonResponse(evaluator_quality_list(campaign=campaign).to_json())


JUDGE_RUN_PERMISSIONS = (*EXPORT_PERMISSIONS, "arena.view_judgerun")


@require_http_methods(["GET"])
@token_required(scopes=(Scope.EXPORT,), permissions=JUDGE_RUN_PERMISSIONS)
def judge_runs_api(request: HttpRequest, slug: str) -> HttpResponse:
    """GET → the campaign's LLM-judge runs, newest first: status, judgment counts, tokens and
    estimated cost (`arena.judging.read`). Scope ``export``; view battle, vote and judge run."""
    try:
        campaign = leaderboard_campaign_get(slug=slug, user=request.user)
    except LeaderboardRefused:
        return api_error(404, _("There is no such campaign."))
    return JsonResponse({"campaign": campaign.slug, "runs": judge_run_list(campaign=campaign)})


@require_http_methods(["GET"])
@token_required(scopes=(Scope.EXPORT,), permissions=JUDGE_RUN_PERMISSIONS)
def judge_run_api(request: HttpRequest, run_id: int) -> HttpResponse:
    """GET → one judge run and its stored report: the judge leaderboard beside the human one,
    run-to-run variation, diagnostics and agreement with the human votes (null until the run
    finishes). Scope ``export``; view battle, vote and judge run."""
    run = judge_run_get(run_id=run_id)
    if run is not None:
        try:
            leaderboard_campaign_get(slug=run.campaign.slug, user=request.user)
        except LeaderboardRefused:
            run = None  # a campaign this user may not see: as if there were no such run
    if run is None:
        return api_error(404, _("There is no such judge run."))
    return JsonResponse(judge_run_document(run=run))


# Grading campaigns ----------------------------------------------------------------------------


def _grade_refusal(exc: GradeRefused) -> HttpResponse:
    return api_error(exc.status, str(exc), code=exc.code)


@require_http_methods(["POST"])
@token_required()
def grading_next_api(request: HttpRequest, slug: str) -> HttpResponse:
    owner = _owner(request)
    try:
        campaign = campaign_access(slug=slug, owner=owner)
    except AccessDenied as exc:
        return api_error(404, str(exc))
    if campaign.kind != Campaign.Kind.GRADING:
        return api_error(400, _("This campaign compares pairs; use its next battle."))
    grading = grading_next(campaign=campaign, owner=owner)
    if grading is None:
        return JsonResponse({"grading": None, "detail": _("The pool is empty for you.")})
    public = grading_get_for_evaluator(code=str(grading.code), owner=owner)
    return JsonResponse({"grading": public.as_json()})


@require_http_methods(["GET"])
@token_required()
def grading_api(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    try:
        public = grading_get_for_evaluator(code=str(code), owner=_owner(request))
    except GradeRefused as exc:
        return _grade_refusal(exc)
    return JsonResponse({"grading": public.as_json()})


@require_http_methods(["POST"])
@token_required()
def grading_grade_api(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    owner = _owner(request)
    try:
        body = _json_body(request)
    except ApiInputError as exc:
        return api_error(400, str(exc))
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        return api_error(400, _("reason must be a string."))
    scores = {k: body.get(k) for k in ("overall", *GRADE_CRITERIA)}
    if any(
        v is not None and (isinstance(v, bool) or not isinstance(v, int)) for v in scores.values()
    ):
        return api_error(400, _("Grades must be whole numbers from 1 to 10."))
    try:
        cast = grade_cast(code=str(code), owner=owner, scores=scores, reason=reason)
    except GradeRefused as exc:
        return _grade_refusal(exc)
    given = {k: getattr(cast.grade, k) for k in ("overall", *GRADE_CRITERIA)}
    return JsonResponse({"grade": {k: v for k, v in given.items() if v is not None}}, status=201)


@require_http_methods(["POST"])
@token_required()
def grading_skip_api(request: HttpRequest, code: uuid.UUID) -> HttpResponse:
    try:
        grading_skip(code=str(code), owner=_owner(request))
    except GradeRefused as exc:
        return _grade_refusal(exc)
    return JsonResponse({"skipped": True})
