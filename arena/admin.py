"""Django admin: the lead's whole console — contestants, question sets, answers, campaigns."""

from __future__ import annotations

import io
import json
from typing import Any
from weakref import WeakKeyDictionary

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.cache import patch_cache_control
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from arena.accounts.tokens import EXPORT_PERMISSIONS, api_token_create
from arena.battles.preferences import preferences_write
from arena.battles.read import reveal_conflicts
from arena.forms import ApiTokenForm, GoldItemForm, QuestionUploadForm
from arena.generation.answers import answers_enqueue_missing, answers_retry
from arena.generation.audit import strip_audit_get
from arena.generation.progress import generation_progress_get
from arena.models import (
    Answer,
    ApiToken,
    Battle,
    Campaign,
    Contestant,
    EvaluatorProfile,
    Exclusion,
    GoldItem,
    Question,
    QuestionSet,
    RatingSnapshot,
    Vote,
)
from arena.quality.exclusions import ExclusionRefused, exclusion_create, exclusion_revoke
from arena.quality.read import evaluator_quality_list
from arena.questions.imports import (
    QuestionImportError,
    more_errors_text,
    question_set_import,
    upload_read,
)

User = get_user_model()


@admin.register(Contestant)
class ContestantAdmin(admin.ModelAdmin[Contestant]):
    list_display = ["name", "slug", "backend", "model", "queue_display", "active"]
    list_filter = ["backend", "active", "family"]
    search_fields = ["name", "slug", "model", "family"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {"fields": ["name", "slug", "family", "aliases", "active"]}),
        (_("Serving"), {"fields": ["backend", "model", "base_url", "api_key_env", "queue"]}),
        (
            _("GPU"),
            {"fields": ["tensor_parallel_size", "gpu_memory_utilization", "max_model_len"]},
        ),
        (_("Prompting"), {"fields": ["system_prompt", "chat_template"]}),
        (_("Sampling"), {"fields": ["temperature", "top_p", "max_tokens", "seed", "stop"]}),
    ]

    @admin.display(description=_("queue"))
    def queue_display(self, obj: Contestant) -> str:
        return obj.queue_name


class QuestionInline(admin.TabularInline[Question, QuestionSet]):
    model = Question
    fields = ["external_id", "text", "category", "language"]
    extra = 0
    show_change_link = True
    max_num = 0
    can_delete = False
    readonly_fields = ("external_id", "text", "category", "language")


@admin.register(QuestionSet)
class QuestionSetAdmin(admin.ModelAdmin[QuestionSet]):
    list_display = ["name", "kind", "question_count", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_by", "created_at", "progress_link"]
    change_list_template = "admin/arena/questionset/change_list.html"
    actions = ["generate_missing", "retry_failed"]

    @admin.display(description=_("generation"))
    def progress_link(self, obj: QuestionSet) -> SafeString:
        url = reverse("admin:arena_questionset_progress", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Live generation progress"))

    @admin.action(description=_("Generate missing answers (all active contestants)"))
    def generate_missing(self, request: HttpRequest, queryset: QuerySet[QuestionSet]) -> None:
        total = 0
        for question_set in queryset:
            total += len(answers_enqueue_missing(question_set=question_set).answer_ids)
        self.message_user(request, _("%(n)d answers queued.") % {"n": total}, messages.SUCCESS)

    @admin.action(description=_("Retry failed answers"))
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[QuestionSet]) -> None:
        ids = Answer.objects.filter(
            question__question_set__in=queryset, status=Answer.Status.FAILED
        ).values_list("id", flat=True)
        count = answers_retry(answer_ids=list(ids))
        self.message_user(request, _("%(n)d failed answers queued again.") % {"n": count})

    def progress_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        question_set = self.get_object(request, object_id)
        if question_set is None or not self.has_view_permission(request, question_set):
            raise PermissionDenied
        if request.method == "POST" and self.has_change_permission(request, question_set):
            if "retry" in request.POST:
                self.retry_failed(request, QuestionSet.objects.filter(pk=question_set.pk))
            else:
                self.generate_missing(request, QuestionSet.objects.filter(pk=question_set.pk))
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": question_set,
            "title": _("Generation progress: %(name)s") % {"name": question_set.name},
            "progress": generation_progress_get(question_set_id=question_set.pk),
        }
        return render(request, "admin/arena/questionset/progress.html", context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[QuestionSet]:
        return super().get_queryset(request).annotate(n_questions=Count("questions"))

    @admin.display(description=_("questions"), ordering="n_questions")
    def question_count(self, obj: QuestionSet) -> int:
        return int(getattr(obj, "n_questions", 0))

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="arena_questionset_upload",
            ),
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="arena_questionset_progress",
            ),
        ]
        return extra + super().get_urls()

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        errors: list[str] = []
        error_count = 0
        if request.method == "POST":
            form = QuestionUploadForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                try:
                    result = question_set_import(
                        data=upload_read(upload.chunks(), size=upload.size),
                        filename=upload.name or "",
                        set_name=form.cleaned_data["set_name"],
                        mode=form.cleaned_data["mode"],
                        user=request.user if isinstance(request.user, User) else None,
                    )
                except QuestionImportError as exc:
                    errors = [str(e) for e in exc.errors]
                    error_count = len(errors) + exc.more
                    if exc.more:
                        errors.append(more_errors_text(exc.more))
                else:
                    self.message_user(
                        request,
                        _("Imported into %(set)s: %(c)d new, %(u)d updated, %(n)d unchanged.")
                        % {
                            "set": result.question_set.name,
                            "c": result.created,
                            "u": result.updated,
                            "n": result.unchanged,
                        },
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:arena_questionset_change", args=[result.question_set.pk])
                    )
        else:
            form = QuestionUploadForm()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "errors": errors,
            "error_count": error_count,
            "title": _("Upload questions"),
        }
        status = 400 if errors else 200
        return render(request, "admin/arena/questionset/upload.html", context, status=status)


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin[Question]):
    list_display = ["external_id", "question_set", "short_text", "category", "language"]
    list_filter = ["question_set", "category", "language"]
    search_fields = ["external_id", "text"]
    list_select_related = ["question_set"]

    @admin.display(description=_("prompt"))
    def short_text(self, obj: Question) -> str:
        return obj.text[:80] + ("…" if len(obj.text) > 80 else "")


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin[Answer]):
    list_display = [
        "id",
        "question",
        "contestant",
        "status",
        "flagged",
        "released",
        "change_count",
        "completion_tokens",
        "latency_ms",
    ]
    list_filter = ["status", "flagged", "released", "contestant", "question__question_set"]
    search_fields = ["question__external_id", "shown_text", "failure_reason"]
    list_select_related = ["question__question_set", "contestant"]
    readonly_fields = [
        "question",
        "contestant",
        "config_hash",
        "status",
        "failure_reason",
        "raw_text",
        "shown_text",
        "strip_report_table",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "flagged",
    ]
    exclude = ["strip_report"]
    actions = ["release_flagged"]
    change_list_template = "admin/arena/answer/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        audit = path(
            "audit/", self.admin_site.admin_view(self.audit_view), name="arena_answer_audit"
        )
        return [audit, *super().get_urls()]

    def audit_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Fingerprint audit"),
            "audit": strip_audit_get(),
        }
        return render(request, "admin/arena/answer/audit.html", context)

    @admin.display(description=_("changes"))
    def change_count(self, obj: Answer) -> int:
        changes = obj.strip_report.get("changes", []) if isinstance(obj.strip_report, dict) else []
        return len(changes) if isinstance(changes, list) else 0

    @admin.display(description=_("strip report"))
    def strip_report_table(self, obj: Answer) -> SafeString:
        report: dict[str, Any] = obj.strip_report if isinstance(obj.strip_report, dict) else {}
        changes = report.get("changes") or []
        if not changes:
            return format_html("<p>{}</p>", _("No changes."))
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            (
                (
                    str(c.get("kind", "")),
                    str(c.get("text", "")),
                    json.dumps(c.get("where", ""), ensure_ascii=False),
                )
                for c in changes
                if isinstance(c, dict)
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            _("kind"),
            _("removed or replaced"),
            _("where"),
            rows,
        )

    @admin.action(description=_("Release the selected flagged answers into battles"))
    def release_flagged(self, request: HttpRequest, queryset: QuerySet[Answer]) -> None:
        count = queryset.filter(flagged=True).update(released=True)
        self.message_user(request, _("%(n)d answers released.") % {"n": count})


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin[Campaign]):
    list_display = ["name", "active", "is_open", "allow_live", "vote_count"]
    list_filter = ["active", "is_open", "allow_live"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["question_sets", "contestants", "evaluators"]

    actions = ["export_preferences_jsonl", "export_preferences_parquet"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return super().get_queryset(request).annotate(n_votes=Count("votes"))

    def get_list_display(self, request: HttpRequest) -> Any:
        return [*super().get_list_display(request), "quality_link"]

    @admin.display(description=_("vote quality"))
    def quality_link(self, obj: Campaign) -> SafeString:
        url = reverse("admin:arena_campaign_quality", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Evaluators"))

    def get_urls(self) -> list[URLPattern]:
        quality = path(
            "<path:object_id>/quality/",
            self.admin_site.admin_view(self.quality_view),
            name="arena_campaign_quality",
        )
        return [quality, *super().get_urls()]

    def quality_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Per-evaluator quality (`arena.quality.read`), and excluding an evaluator with a
        reason (needs the permission to add exclusions)."""
        campaign = self.get_object(request, object_id)
        if campaign is None or not request.user.has_perms(["arena.view_vote"]):
            raise PermissionDenied
        may_exclude = request.user.has_perm("arena.add_exclusion")
        if request.method == "POST":
            if not may_exclude:
                raise PermissionDenied
            try:
                exclusion_create(
                    campaign=campaign,
                    evaluator=request.POST.get("evaluator", ""),
                    reason=request.POST.get("reason", ""),
                    by=request.user,  # type: ignore[arg-type]
                )
            except ExclusionRefused as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, _("Excluded. The ratings are recomputed shortly."))
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": campaign,
            "title": _("Vote quality: %(name)s") % {"name": campaign.name},
            "report": evaluator_quality_list(campaign=campaign),
            "may_exclude": may_exclude,
            "exclusions": Exclusion.objects.filter(campaign=campaign).select_related(
                "created_by", "revoked_by"
            )[:200],
        }
        return render(request, "admin/arena/campaign/quality.html", context)

    @admin.display(description=_("votes"), ordering="n_votes")
    def vote_count(self, obj: Campaign) -> int:
        return int(getattr(obj, "n_votes", 0))

    def _export_preferences(
        self, request: HttpRequest, queryset: QuerySet[Campaign], fmt: str
    ) -> HttpResponse | None:
        if not request.user.has_perms(EXPORT_PERMISSIONS):
            raise PermissionDenied
        if queryset.count() != 1:
            messages.error(request, _("Choose exactly one campaign to export."))
            return None
        campaign = queryset.get()
        buffer = io.BytesIO()
        preferences_write(campaign=campaign, stream=buffer, fmt=fmt)  # type: ignore[arg-type]
        response = HttpResponse(buffer.getvalue(), content_type="application/octet-stream")
        response["Content-Disposition"] = (
            f'attachment; filename="{campaign.slug}-preferences.{fmt}"'
        )
        return response

    @admin.action(description=_("Export preference data for training (JSON Lines)"))
    def export_preferences_jsonl(
        self, request: HttpRequest, queryset: QuerySet[Campaign]
    ) -> HttpResponse | None:
        return self._export_preferences(request, queryset, "jsonl")

    @admin.action(description=_("Export preference data for training (Parquet)"))
    def export_preferences_parquet(
        self, request: HttpRequest, queryset: QuerySet[Campaign]
    ) -> HttpResponse | None:
        return self._export_preferences(request, queryset, "parquet")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        others = reveal_conflicts(campaign=form.instance)
        if others:
            messages.warning(
                request,
                _(
                    "Campaigns %(names)s show answers that this campaign also shows, but "
                    "differ in revealing identities after the vote: a reveal in one tells "
                    "its evaluators who wrote answers the other's evaluators judge blind."
                )
                % {"names": ", ".join(c.name for c in others)},
            )


@admin.register(Battle)
class BattleAdmin(admin.ModelAdmin[Battle]):
    list_display = ["code", "campaign", "evaluator", "mode", "state", "served_at"]
    list_filter = ["campaign", "mode", "state"]
    search_fields = ["code", "evaluator__username"]
    list_select_related = ["campaign", "evaluator"]
    readonly_fields = [f.name for f in Battle._meta.fields]


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin[Vote]):
    list_display = [
        "id",
        "campaign",
        "contestant_a",
        "contestant_b",
        "outcome",
        "tainted",
        "created_at",
    ]
    # Tainted: an answer named a model the question does not (kept out of the ratings unless
    # the campaign counts them); the terms and the side are in `taint`. Excluded, control and
    # low-confidence: arena/quality/.
    list_filter = ["campaign", "outcome", "tainted", "excluded", "control", "low_confidence"]
    actions = ["exclude_votes"]
    search_fields = ["reason", "evaluator__username"]
    list_select_related = ["campaign", "contestant_a", "contestant_b"]
    readonly_fields = [f.name for f in Vote._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Exclude the selected votes from the ratings…"))
    def exclude_votes(self, request: HttpRequest, queryset: QuerySet[Vote]) -> HttpResponse | None:
        """An intermediate page asks for the reason; one exclusion per campaign."""
        if not request.user.has_perm("arena.add_exclusion"):
            raise PermissionDenied
        if "reason" in request.POST:
            made = 0
            for campaign in Campaign.objects.filter(votes__in=queryset).distinct():
                ids = list(queryset.filter(campaign=campaign).values_list("pk", flat=True))
                try:
                    exclusion_create(
                        campaign=campaign,
                        vote_ids=ids,
                        reason=request.POST["reason"],
                        by=request.user,  # type: ignore[arg-type]
                    )
                except ExclusionRefused as exc:
                    messages.error(request, str(exc))
                    return None
                made += len(ids)
            self.message_user(request, _("%(n)d votes excluded.") % {"n": made})
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Exclude votes"),
            "votes": queryset,
            "action": "exclude_votes",
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        }
        return render(request, "admin/arena/vote/exclude.html", context)


@admin.register(Exclusion)
class ExclusionAdmin(admin.ModelAdmin[Exclusion]):
    """The audit trail: exclusions are made on the quality page or from the votes list, and
    revoked (never deleted) here."""

    list_display = ["id", "campaign", "label", "rule", "reason", "created_by", "created_at"]
    list_filter = ["campaign", "rule", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["label", "reason"]
    list_select_related = ["campaign", "created_by"]
    readonly_fields = [f.name for f in Exclusion._meta.fields]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Exclusion | None = None) -> bool:
        return False

    @admin.action(description=_("Revoke the selected exclusions…"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[Exclusion]) -> HttpResponse | None:
        if not request.user.has_perm("arena.change_exclusion"):
            raise PermissionDenied
        if "reason" in request.POST:
            for exclusion in queryset.filter(revoked_at__isnull=True):
                try:
                    exclusion_revoke(
                        exclusion_id=exclusion.pk,
                        reason=request.POST["reason"],
                        by=request.user,  # type: ignore[arg-type]
                    )
                except ExclusionRefused as exc:
                    messages.error(request, str(exc))
                    return None
            self.message_user(request, _("Revoked. The ratings are recomputed shortly."))
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Revoke exclusions"),
            "votes": queryset,
            "action": "revoke",
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        }
        return render(request, "admin/arena/vote/exclude.html", context)


@admin.register(GoldItem)
class GoldItemAdmin(admin.ModelAdmin[GoldItem]):
    """Gold battles' items: a question and two of its answers, the better one known
    (`manage.py import_gold` loads a file of them)."""

    list_display = ["id", "campaign", "question", "better", "worse", "active", "created_at"]
    list_filter = ["campaign", "active"]
    raw_id_fields = ["question", "better", "worse"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request: HttpRequest, obj: GoldItem, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    form = GoldItemForm


@admin.register(RatingSnapshot)
class RatingSnapshotAdmin(admin.ModelAdmin[RatingSnapshot]):
    list_display = ["scope", "campaign", "vote_count", "computed_at"]
    list_filter = ["campaign"]
    readonly_fields = ["scope", "campaign", "vote_count", "payload", "computed_at"]


def _admin_pk(request: HttpRequest) -> int:
    """The primary key of the admin's user (the admin serves only logged-in staff)."""
    if request.user.pk is None:
        raise PermissionDenied
    return int(request.user.pk)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """A superuser mints tokens for anyone; other staff only for themselves, and they see
    only their own. A token's user and scopes never change. The new key is the body of the
    add form's response (`response_add`), never a message: messages may travel in a cookie."""

    form = ApiTokenForm
    list_display = ["name", "user", "prefix", "scopes", "expires_at", "created_at", "last_used_at"]
    search_fields = ["name", "user__username"]
    # The key between save_model and response_add of the same request, and nowhere else.
    _new_keys: WeakKeyDictionary[HttpRequest, str] = WeakKeyDictionary()

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        if obj is None:
            return ["user", "name", "scopes", "expires_at"]
        return ["user", "name", "prefix", "scopes", "expires_at", "created_at", "last_used_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        if obj is None:
            return []
        fixed = ["user", "prefix", "scopes", "created_at", "last_used_at"]
        # Only a superuser moves an expiry: a holder must not lift the one set for them.
        return fixed if request.user.is_superuser else [*fixed, "expires_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        tokens = super().get_queryset(request)
        return tokens if request.user.is_superuser else tokens.filter(user_id=_admin_pk(request))

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {**super().get_changeform_initial_data(request), "user": request.user.pk}

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = User.objects.filter(pk=_admin_pk(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        if obj.user_id != request.user.pk and not request.user.is_superuser:
            raise PermissionDenied
        token, key = api_token_create(
            user=obj.user,
            name=obj.name,
            scopes=obj.scopes.split() or None,
            expires_at=obj.expires_at,
        )
        obj.pk, obj.key_hash, obj.prefix = token.pk, token.key_hash, token.prefix
        obj.scopes, obj.created_at = token.scopes, token.created_at
        self._new_keys[request] = key

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None
    ) -> HttpResponse:
        key = self._new_keys.pop(request, None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "token": obj,
            "key": key,
            "title": _("Copy the new API token"),
        }
        response = render(request, "admin/arena/apitoken/key.html", context)
        patch_cache_control(response, no_store=True, private=True)
        return response


class EvaluatorProfileInline(admin.StackedInline[EvaluatorProfile, Any]):
    model = EvaluatorProfile
    can_delete = False


admin.site.unregister(User)


@admin.register(User)
class ArenaUserAdmin(UserAdmin):  # type: ignore[type-arg]
    inlines = [EvaluatorProfileInline]
    list_filter = [*UserAdmin.list_filter, "arena_campaigns"]


# The judges' admin lives in its own module; importing it registers it.
# Grades, gradings and the campaigns' collection pages, likewise.
from arena import admin_collection, admin_judging  # noqa: E402, F401

admin.site.site_header = _("Arena administration")
admin.site.site_title = _("Arena")
