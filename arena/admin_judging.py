"""Django admin of the judges: judges, judge runs (start, live progress, report beside the human
leaderboard, most-disagreeing battles) and judgments. Imported by `arena.admin`."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from arena.judging import prompts
from arena.judging.report import judge_report_build
from arena.judging.runs import JudgeConfigError, judge_run_create, judge_runs_retry
from arena.judging.store import (
    answer_texts,
    judgment_texts,
    question_texts,
    run_progress,
)
from arena.markdown import render_markdown
from arena.models import Campaign, Judge, JudgeRun, Judgment


class JudgeForm(forms.ModelForm[Judge]):
    class Meta:
        model = Judge
        fields = [
            "name",
            "slug",
            "serving",
            "maker",
            "mode",
            "language",
            "system_prompt",
            "prompt_template",
            "use_reference",
            "temperature",
            "top_p",
            "max_tokens",
            "seed",
            "trials",
            "strong_weight",
            "queue",
            "price_input",
            "price_output",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        template, mode = cleaned.get("prompt_template", ""), cleaned.get("mode")
        if template and mode:
            for error in prompts.template_errors(template, mode):
                self.add_error("prompt_template", error)
        return cleaned


class JudgeRunStartForm(forms.Form):
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.all(), label=_("campaign"))
    trials = forms.IntegerField(label=_("trials"), min_value=1, max_value=50, required=False)
    pairs = forms.CharField(label=_("pairs"), initial="all", max_length=12)
    combine_weight = forms.FloatField(
        label=_("weight in the combined ranking"), min_value=0.0, max_value=100.0, initial=0.0
    )

    def clean_pairs(self) -> str | int:
        value = str(self.cleaned_data["pairs"]).strip()
        if value == "all":
            return value
        if not value.isdigit() or int(value) < 1:
            raise ValidationError(_("Enter “all” or a positive number."))
        return int(value)


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin[Judge]):
    form = JudgeForm
    list_display = ["name", "slug", "mode", "language", "serving", "trials", "temperature"]
    list_filter = ["mode", "language"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["start_run"]

    @admin.action(description=_("Judge a campaign with this judge"))
    def start_run(self, request: HttpRequest, queryset: QuerySet[Judge]) -> HttpResponse | None:
        judges = list(queryset[:2])
        if len(judges) != 1:  # a run has one judge: never pick one of several silently
            self.message_user(request, _("Choose exactly one judge."), messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:arena_judge_run", args=[judges[0].pk]))

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<path:object_id>/run/",
                self.admin_site.admin_view(self.run_view),
                name="arena_judge_run",
            )
        ]
        return extra + super().get_urls()

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        judge = self.get_object(request, object_id)
        if judge is None or not request.user.has_perm("arena.add_judgerun"):
            raise PermissionDenied
        form = JudgeRunStartForm(request.POST or None, initial={"trials": judge.trials})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                run = judge_run_create(
                    campaign=data["campaign"],
                    judge=judge,
                    trials=data["trials"],
                    pairs=data["pairs"],
                    combine_weight=data["combine_weight"],
                    created_by=request.user,
                )
            except JudgeConfigError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, _("Judge run started."), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:arena_judgerun_progress", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": judge,
            "form": form,
            "title": _("Start a judge run: %(name)s") % {"name": judge.name},
        }
        return render(request, "admin/arena/judge/run.html", context)


@admin.register(JudgeRun)
class JudgeRunAdmin(admin.ModelAdmin[JudgeRun]):
    list_display = ["__str__", "campaign", "judge", "trials", "created_at", "links"]
    list_filter = ["judge", "campaign"]
    readonly_fields = [
        "campaign",
        "judge",
        "trials",
        "pairs_limit",
        "created_by",
        "created_at",
        "report_at",
        "links",
    ]
    fields = [*readonly_fields, "combine_weight"]
    actions = ["queue_again", "recompute_report"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs start from a judge ("Judge a campaign") or `manage.py judge`

    @admin.display(description=_("pages"))
    def links(self, obj: JudgeRun) -> SafeString:
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("admin:arena_judgerun_progress", args=[obj.pk]),
            _("progress"),
            reverse("admin:arena_judgerun_report", args=[obj.pk]),
            _("report"),
            reverse("admin:arena_judgerun_disagreements", args=[obj.pk]),
            _("disagreements"),
        )

    @admin.action(description=_("Queue unfinished and failed judgments again"))
    def queue_again(self, request: HttpRequest, queryset: QuerySet[JudgeRun]) -> None:
        count = judge_runs_retry(runs=list(queryset))
        self.message_user(request, _("%(n)d judgments queued.") % {"n": count})

    @admin.action(description=_("Recompute the report"))
    def recompute_report(self, request: HttpRequest, queryset: QuerySet[JudgeRun]) -> None:
        for run in queryset:
            judge_report_build(run_id=run.pk)
        self.message_user(request, _("Reports recomputed."), messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        views = [
            ("progress", self.progress_view),
            ("progress.json", self.progress_json),
            ("report", self.report_view),
            ("disagreements", self.disagreements_view),
        ]
        extra = [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(view),
                name=f"arena_judgerun_{name.replace('.', '_')}",
            )
            for name, view in views
        ]
        return extra + super().get_urls()

    def _run(self, request: HttpRequest, object_id: str) -> JudgeRun:
        run = self.get_object(request, object_id)
        if run is None or not self.has_view_permission(request, run):
            raise PermissionDenied
        return run

    def _context(self, request: HttpRequest, run: JudgeRun, title: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": run,
            "title": title,
        }

    def progress_json(self, request: HttpRequest, object_id: str) -> JsonResponse:
        return JsonResponse(run_progress(run=self._run(request, object_id)).to_json())

    def progress_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        run = self._run(request, object_id)
        context = self._context(request, run, _("Judge run progress: %(run)s") % {"run": run})
        context["progress"] = run_progress(run=run).to_json()
        return render(request, "admin/arena/judgerun/progress.html", context)

    def report_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        run = self._run(request, object_id)
        if request.method == "POST" and self.has_change_permission(request, run):
            judge_report_build(run_id=run.pk)
            return HttpResponseRedirect(request.path)
        context = self._context(request, run, _("Judge report: %(run)s") % {"run": run})
        context["report"] = run.report or None
        return render(request, "admin/arena/judgerun/report.html", context)

    def disagreements_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        run = self._run(request, object_id)
        rows = (run.report or {}).get("agreement", {}).get("disagreements", [])
        answer_ids = sorted({a for row in rows for a in row.get("answers", [])})
        texts = answer_texts(ids=answer_ids)
        judged = judgment_texts(run_id=run.pk, answer_ids=answer_ids)
        question_of = dict(
            Judgment.objects.filter(run=run, answer_a_id__in=answer_ids).values_list(
                "answer_a_id", "question_id"
            )
        )
        questions = question_texts(ids=sorted(set(question_of.values())))
        battles = []
        for row in rows:
            lo, hi = row["answers"]
            question = questions.get(question_of.get(lo, -1), ("", "", ""))
            battles.append(
                {
                    **row,
                    "question": render_markdown(question[0]),
                    "category": question[1],
                    "language": question[2],
                    "lo_html": render_markdown(texts.get(lo, "")),
                    "hi_html": render_markdown(texts.get(hi, "")),
                    "judge_texts": judged.get((lo, hi), []) + judged.get((hi, lo), []),
                }
            )
        context = self._context(
            request, run, _("Where judge and humans disagree: %(run)s") % {"run": run}
        )
        context["battles"] = battles
        return render(request, "admin/arena/judgerun/disagreements.html", context)


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin[Judgment]):
    list_display = ["id", "run", "status", "verdict", "grade", "trial", "completion_tokens"]
    list_filter = ["status", "run"]
    search_fields = ["raw_text", "reason"]
    readonly_fields = [f.name for f in Judgment._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
