"""Evaluator pages. Each view validates input, calls one service or selector, renders DTOs."""

from __future__ import annotations

import csv
import datetime as dt
import unicodedata
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from arena.battles.live import LiveRefused, live_battle_continue, live_battle_start
from arena.battles.read import (
    NotFound,
    RevealRefused,
    battle_get_for_evaluator,
    battle_reveal,
    campaign_access,
    campaign_list_for,
    progress_get,
)
from arena.battles.rules import AccessDenied, Owner
from arena.battles.sampler import battle_expire, battle_next, battle_skip
from arena.battles.store import database_ping
from arena.battles.votes import VoteRefused, vote_cast
from arena.grading.serve import (
    GradeRefused,
    grade_cast,
    grading_get_for_evaluator,
    grading_next,
    grading_progress,
    grading_skip,
)
from arena.leaderboard_view import history_figure, leaderboard_figures
from arena.models import GRADE_CRITERIA, Campaign
from arena.quality.limits import LimitReached, live_budget_check, open_limit_check
from arena.ratings.history import rating_changes, rating_history, since_parse
from arena.ratings.read import (
    EXPORT_COLUMNS,
    LeaderboardRefused,
    LeaderboardView,
    leaderboard_campaign_get,
    leaderboard_document,
    leaderboard_export_rows,
    leaderboard_get,
    leaderboard_snapshot_get,
    leaderboard_until,
)
from arena.ratings.snapshot import campaign_scope

# Stands for an anonymous visitor who has no session yet: no session has this key (Django's
# are lowercase letters and digits), so it owns nothing. Only read-only views use it.
_NO_SESSION = "-"


def owner_for(request: HttpRequest, *, create: bool = True) -> Owner:
    """The logged-in user, or the session of an anonymous visitor. The session is created only
    with ``create`` (an action that needs an owner): read-only pages must not add a session row
    for every cookieless request."""
    if request.user.is_authenticated:
        return Owner(user=request.user)
    if not request.session.session_key:
        if not create:
            return Owner(user=None, session_key=_NO_SESSION)
        # A vote from a very new session is marked low-confidence (arena/quality/rules.py).
        request.session[_SESSION_STARTED] = timezone.now().isoformat()
        request.session.save()
    return Owner(user=None, session_key=str(request.session.session_key))


_SESSION_STARTED = "arena_started"


def _session_started(request: HttpRequest) -> dt.datetime | None:
    if request.user.is_authenticated:
        return None
    try:
        return dt.datetime.fromisoformat(str(request.session.get(_SESSION_STARTED, "")))
    except ValueError:
        return None


def _limited(request: HttpRequest, exc: LimitReached) -> HttpResponse:
    return render(request, "arena/limited.html", {"message": str(exc)}, status=429)


def home(request: HttpRequest) -> HttpResponse:
    campaigns = campaign_list_for(owner=owner_for(request, create=False))
    return render(request, "arena/home.html", {"campaigns": campaigns})


def login_lockout(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """django-axes' lockout page (``AXES_LOCKOUT_CALLABLE``), for the login page and the
    admin's: too many failed logins for this username from this address."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return render(request, "registration/lockout.html", {"minutes": minutes}, status=429)


def healthz(request: HttpRequest) -> HttpResponse:
    database_ping()
    return JsonResponse({"status": "ok"})


def _campaign_or_login(request: HttpRequest, slug: str, owner: Owner) -> Campaign | HttpResponse:
    """The campaign if this visitor may use it; else a login redirect or a 404."""
    try:
        return campaign_access(slug=slug, owner=owner)
    except AccessDenied:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise Http404(_("This campaign does not exist or is not open to you.")) from None


@require_GET
def campaign_next(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = _campaign_or_login(request, slug, owner_for(request, create=False))
    if isinstance(campaign, HttpResponse):
        return campaign
    if campaign.kind == Campaign.Kind.GRADING:
        return redirect("grading_next", slug=slug)
    if not request.user.is_authenticated and not request.session.session_key:
        try:
            open_limit_check(request=request, action="session")
        except LimitReached as exc:
            return _limited(request, exc)
    owner = owner_for(request)
    battle = battle_next(campaign=campaign, owner=owner)
    if battle is None:
        context = {"campaign": campaign, "progress": progress_get(campaign=campaign, owner=owner)}
        return render(request, "arena/pool_empty.html", context)
    return redirect("battle", code=battle.code)


@require_GET
def battle_page(request: HttpRequest, code: str) -> HttpResponse:
    owner = owner_for(request, create=False)
    try:
        battle = battle_get_for_evaluator(code=code, owner=owner)
    except NotFound:
        raise Http404(_("There is no such battle for you.")) from None
    except AccessDenied as exc:
        raise PermissionDenied(str(exc)) from None
    if battle.expired_now:
        battle_expire(code=code, owner=owner)
    reveal = None
    if battle.voted_outcome is not None:
        try:
            reveal = battle_reveal(code=code, owner=owner)
        except RevealRefused:
            reveal = None
    ask_acceptable = False
    try:
        campaign = campaign_access(slug=battle.campaign, owner=owner)
        progress = progress_get(campaign=campaign, owner=owner)
        ask_acceptable = campaign.ask_acceptable
    except AccessDenied:
        progress = None
    return render(
        request,
        "arena/battle.html",
        {
            "battle": battle,
            "reveal": reveal,
            "progress": progress,
            "ask_acceptable": ask_acceptable,
        },
    )


_ACCEPTABLE = {"": None, "yes": True, "no": False}


def _acceptable(data: Any) -> tuple[bool | None, bool | None]:
    """The optional acceptable / not acceptable verdicts of a vote form (anything else is
    treated as not given)."""
    a = _ACCEPTABLE.get(str(data.get("acceptable_a", "")))
    b = _ACCEPTABLE.get(str(data.get("acceptable_b", "")))
    return a, b


@require_POST
def battle_vote(request: HttpRequest, code: str) -> HttpResponse:
    owner = owner_for(request)
    try:
        open_limit_check(request=request, action="vote")
    except LimitReached as exc:
        return _limited(request, exc)
    try:
        vote_cast(
            code=code,
            owner=owner,
            outcome=request.POST.get("outcome", ""),
            reason=request.POST.get("reason", ""),
            session_started=_session_started(request),
            acceptable=_acceptable(request.POST),
        )
    except VoteRefused as exc:
        if exc.code == "not_found":
            raise Http404(str(exc)) from None
        if exc.code == "no_access":
            raise PermissionDenied(str(exc)) from None
        messages.error(request, str(exc))
    return redirect("battle", code=code)


@require_POST
def battle_skip_view(request: HttpRequest, code: str) -> HttpResponse:
    try:
        skipped = battle_skip(code=str(code), owner=owner_for(request))
    except AccessDenied as exc:
        raise PermissionDenied(str(exc)) from None
    if skipped is None:
        raise Http404(_("There is no such battle for you."))
    slug, mode = skipped
    return redirect("live_new" if mode == "live" else "campaign_next", slug=slug)


def live_new(request: HttpRequest, slug: str) -> HttpResponse:
    owner = owner_for(request, create=request.method == "POST")
    campaign = _campaign_or_login(request, slug, owner)
    if isinstance(campaign, HttpResponse):
        return campaign
    if not campaign.allow_live:
        raise Http404(_("This campaign does not take live questions."))
    error = ""
    prompt = ""
    if request.method == "POST":
        prompt = request.POST.get("prompt", "")
        try:
            open_limit_check(request=request, action="live")
            live_budget_check(request=request)
        except LimitReached as exc:
            return _limited(request, exc)
        try:
            battle = live_battle_start(campaign=campaign, owner=owner, prompt=prompt)
        except LiveRefused as exc:
            error = str(exc)
        else:
            return redirect("battle", code=battle.code)
    context = {"campaign": campaign, "error": error, "prompt": prompt}
    return render(request, "arena/live_new.html", context, status=400 if error else 200)


@require_POST
def live_continue(request: HttpRequest, code: str) -> HttpResponse:
    try:
        open_limit_check(request=request, action="live")
        live_budget_check(request=request)
    except LimitReached as exc:
        return _limited(request, exc)
    try:
        live_battle_continue(
            code=str(code), owner=owner_for(request), prompt=request.POST.get("prompt", "")
        )
    except LiveRefused as exc:
        messages.error(request, str(exc))
    return redirect("battle", code=code)


# Leaderboards --------------------------------------------------------------------------------


def _leaderboard_refused(request: HttpRequest, exc: LeaderboardRefused) -> HttpResponse:
    if exc.reason == "login_required":
        return redirect_to_login(request.get_full_path())
    if exc.reason == "forbidden":
        raise PermissionDenied(_("This leaderboard is for the team only."))
    if exc.reason == "held":
        raise PermissionDenied(_("This leaderboard opens when the campaign closes."))
    raise Http404(_("There is no such leaderboard."))


@require_GET
def leaderboard_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Ratings of one scope (``?scope=``), raw or style-controlled (``?view=style``); with
    ``?everything=1`` the campaign's ratings with excluded votes counted."""
    view: LeaderboardView = "style" if request.GET.get("view") == "style" else "raw"
    try:
        campaign = leaderboard_campaign_get(slug=slug, user=request.user)
        until = leaderboard_until(campaign=campaign, user=request.user)
        board = leaderboard_get(
            campaign=campaign,
            scope=request.GET.get("scope"),
            view=view,
            everything=request.GET.get("everything") == "1",
            until=until,
        )
    except LeaderboardRefused as exc:
        return _leaderboard_refused(request, exc)
    context: dict[str, object] = {
        "board": board,
        "figures": leaderboard_figures(board),
        "frozen_at": until,
    }
    if board.scope == campaign_scope(campaign.pk):
        context.update(_history_context(campaign, request.GET.get("since"), until))
    return render(request, "arena/leaderboard.html", context)


def _history_context(
    campaign: Campaign, since_text: str | None, until: dt.datetime | None
) -> dict[str, object]:
    """The rating-history plot and, with ``?since=``, what changed since then (as of
    ``until`` for a reader of a frozen public view)."""
    since = since_parse(since_text)
    changes = None
    if since is not None:
        changes = rating_changes(campaign=campaign, since=since, until=until)
    return {
        "show_history": True,
        "history": history_figure(rating_history(campaign=campaign, until=until)),
        "since_value": "" if since is None else f"{since:%Y-%m-%d}",
        "since_error": bool(since_text) and since is None,
        "changes": changes,
    }


_FORMULA_LEADS = ("=", "+", "-", "@")


def _csv_cell(value: object) -> object:
    """A text cell that a spreadsheet could run as a formula, made inert with a leading quote.
    Spreadsheets skip leading whitespace (tab, CR, spaces) and read full-width signs (＝＋－＠)
    as their ASCII forms, so the test is on the NFKC form with whitespace stripped."""
    if not isinstance(value, str):
        return value
    folded = unicodedata.normalize("NFKC", value)
    if folded[:1].isspace() or folded.lstrip().startswith(_FORMULA_LEADS):
        return "'" + value
    return value


@require_GET
def leaderboard_export(request: HttpRequest, slug: str, fmt: str) -> HttpResponse:
    """The latest snapshot of a scope as CSV (the table) or JSON (everything stored)."""
    try:
        campaign = leaderboard_campaign_get(slug=slug, user=request.user)
        snapshot = leaderboard_snapshot_get(
            campaign=campaign,
            scope=request.GET.get("scope"),
            until=leaderboard_until(campaign=campaign, user=request.user),
        )
    except LeaderboardRefused as exc:
        return _leaderboard_refused(request, exc)
    if fmt == "json":
        return JsonResponse(
            leaderboard_document(campaign=campaign, snapshot=snapshot),
            json_dumps_params={"ensure_ascii": False},
        )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{campaign.slug}-leaderboard.csv"'
    writer = csv.DictWriter(response, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for row in leaderboard_export_rows(snapshot):
        writer.writerow({key: _csv_cell(value) for key, value in row.items()})
    return response


# Grading campaigns ----------------------------------------------------------------------------


@require_GET
def grading_next_view(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = _campaign_or_login(request, slug, owner_for(request, create=False))
    if isinstance(campaign, HttpResponse):
        return campaign
    if campaign.kind != Campaign.Kind.GRADING:
        return redirect("campaign_next", slug=slug)
    owner = owner_for(request)
    grading = grading_next(campaign=campaign, owner=owner)
    if grading is None:
        context = {
            "campaign": campaign,
            "progress": grading_progress(campaign=campaign, owner=owner),
        }
        return render(request, "arena/pool_empty.html", context)
    return redirect("grading", code=grading.code)


def _grading_refused(exc: GradeRefused) -> HttpResponse:
    if exc.code == "not_found":
        raise Http404(str(exc))
    raise PermissionDenied(str(exc))


@require_GET
def grading_page(request: HttpRequest, code: str) -> HttpResponse:
    try:
        grading = grading_get_for_evaluator(code=str(code), owner=owner_for(request, create=False))
    except GradeRefused as exc:
        return _grading_refused(exc)
    return render(request, "arena/grading.html", {"grading": grading})


@require_POST
def grading_grade_view(request: HttpRequest, code: str) -> HttpResponse:
    scores = {name: request.POST.get(name) for name in ("overall", *GRADE_CRITERIA)}
    try:
        grade_cast(
            code=str(code),
            owner=owner_for(request),
            scores=scores,
            reason=request.POST.get("reason", ""),
        )
    except GradeRefused as exc:
        if exc.code in ("not_found", "no_access"):
            return _grading_refused(exc)
        messages.error(request, str(exc))
    return redirect("grading", code=code)


@require_POST
def grading_skip_view(request: HttpRequest, code: str) -> HttpResponse:
    try:
        slug = grading_skip(code=str(code), owner=owner_for(request))
    except GradeRefused as exc:
        return _grading_refused(exc)
    return redirect("grading_next", slug=slug)
