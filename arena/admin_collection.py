"""Django admin of smarter collection: grades and gradings (read-only), and a campaign's
collection page (the active sampling plan, counts per expert skill, acceptable verdicts and
the grading summary). Imported by `arena.admin`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from arena.battles.collection import acceptable_figures, sampling_plan_rows, skill_counts
from arena.grading.read import grades_summary
from arena.models import Campaign, Grade, Grading


class _ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Grading)
class GradingAdmin(_ReadOnly):
    list_display = ["code", "campaign", "evaluator", "question", "state", "served_at"]
    list_filter = ["campaign", "state"]
    raw_id_fields = ["question", "answer", "evaluator"]


@admin.register(Grade)
class GradeAdmin(_ReadOnly):
    list_display = ["pk", "campaign", "contestant", "evaluator", "overall", "created_at"]
    list_filter = ["campaign", "contestant"]
    raw_id_fields = ["grading", "question", "evaluator"]
    change_list_template = "admin/arena/grade/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        page = path(
            "collection/<int:campaign_id>/",
            self.admin_site.admin_view(self.collection_view),
            name="arena_campaign_collection",
        )
        return [page, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        context = {**(extra_context or {}), "campaigns": Campaign.objects.order_by("name")}
        return super().changelist_view(request, extra_context=context)

    def collection_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        """How the campaign collects: plan, skills, acceptable verdicts, grades."""
        if not request.user.has_perms(["arena.view_campaign", "arena.view_vote"]):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Collection: %(name)s") % {"name": campaign.name},
            "campaign": campaign,
            "plan": sampling_plan_rows(campaign=campaign)[:50],
            "skills": skill_counts(campaign=campaign),
            "acceptable": acceptable_figures(campaign=campaign),
            "grades": grades_summary(campaign=campaign),
            "opts": Grade._meta,
        }
        return render(request, "admin/arena/campaign/collection.html", context)
