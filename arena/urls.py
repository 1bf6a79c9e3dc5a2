from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from arena import api, views

api_patterns = [
    path("question-sets/import", api.question_set_import_api, name="question_set_import"),
    path("campaigns", api.campaign_list_api, name="campaigns"),
    path("campaigns/<slug:slug>/next", api.campaign_next_api, name="campaign_next"),
    path("battles/<uuid:code>", api.battle_api, name="battle"),
    path("battles/<uuid:code>/vote", api.battle_vote_api, name="battle_vote"),
    path("battles/<uuid:code>/skip", api.battle_skip_api, name="battle_skip"),
    path("battles/<uuid:code>/reveal", api.battle_reveal_api, name="battle_reveal"),
    path("campaigns/<slug:slug>/grading/next", api.grading_next_api, name="grading_next"),
    path("gradings/<uuid:code>", api.grading_api, name="grading"),
    path("gradings/<uuid:code>/grade", api.grading_grade_api, name="grading_grade"),
    path("gradings/<uuid:code>/skip", api.grading_skip_api, name="grading_skip"),
    path("campaigns/<slug:slug>/leaderboard", api.leaderboard_api, name="leaderboard"),
    path(
        "campaigns/<slug:slug>/leaderboard/history",
        api.leaderboard_history_api,
        name="leaderboard_history",
    ),
    path(
        "campaigns/<slug:slug>/leaderboard/changes",
        api.leaderboard_changes_api,
        name="leaderboard_changes",
    ),
    path("campaigns/<slug:slug>/battles", api.battles_export_api, name="battles_export"),
    path(
        "campaigns/<slug:slug>/preferences",
        api.preferences_export_api,
        name="preferences_export",
    ),
    path(
        "campaigns/<slug:slug>/evaluators",
        api.evaluator_quality_api,
        name="evaluator_quality",
    ),
    path("campaigns/<slug:slug>/judge-runs", api.judge_runs_api, name="judge_runs"),
    path("judge-runs/<int:run_id>", api.judge_run_api, name="judge_run"),
    path("openapi.json", api.openapi_api, name="openapi"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("c/<slug:slug>/next/", views.campaign_next, name="campaign_next"),
    path("c/<slug:slug>/live/", views.live_new, name="live_new"),
    path("c/<slug:slug>/leaderboard/", views.leaderboard_page, name="leaderboard"),
    path(
        "c/<slug:slug>/leaderboard.csv",
        views.leaderboard_export,
        {"fmt": "csv"},
        name="leaderboard_csv",
    ),
    path(
        "c/<slug:slug>/leaderboard.json",
        views.leaderboard_export,
        {"fmt": "json"},
        name="leaderboard_json",
    ),
    path("b/<uuid:code>/", views.battle_page, name="battle"),
    path("b/<uuid:code>/continue/", views.live_continue, name="live_continue"),
    path("b/<uuid:code>/vote/", views.battle_vote, name="battle_vote"),
    path("b/<uuid:code>/skip/", views.battle_skip_view, name="battle_skip"),
    path("c/<slug:slug>/grade/", views.grading_next_view, name="grading_next"),
    path("g/<uuid:code>/", views.grading_page, name="grading"),
    path("g/<uuid:code>/grade/", views.grading_grade_view, name="grading_grade"),
    path("g/<uuid:code>/skip/", views.grading_skip_view, name="grading_skip"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include((api_patterns, "api"))),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    # daphne (make run, the browser tests) serves no static files: in development Django does.
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
