"""Arena's data model. Invariants live in database constraints; behaviour lives in the
aggregates (battles/, generation/, ratings/, ...)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


def _default_list() -> list[Any]:
    return []


def _default_dict() -> dict[str, Any]:
    return {}


class Contestant(models.Model):
    """A model plus how it is served and sampled. Its identity is revealed only after a vote."""

    class Backend(models.TextChoices):
        VLLM = "vllm", _("vLLM (in-process engine)")
        OPENAI = "openai", _("OpenAI-compatible endpoint")

    name = models.CharField(_("display name"), max_length=200, unique=True)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    family = models.CharField(_("model family"), max_length=100, blank=True)
    aliases = models.JSONField(
        _("aliases"),
        default=_default_list,
        blank=True,
        help_text=_("Other names the model may call itself; used to detect self-identification."),
    )
    backend = models.CharField(_("backend"), max_length=16, choices=Backend.choices)
    model = models.CharField(
        _("model"), max_length=500, help_text=_("Model directory (vLLM) or served model name.")
    )
    base_url = models.URLField(_("base URL"), blank=True)
    api_key_env = models.CharField(
        _("API key variable"),
        max_length=100,
        blank=True,
        help_text=_("The NAME of the environment variable that holds the key. Never the key."),
    )
    chat_template = models.TextField(_("chat template override"), blank=True)
    system_prompt = models.TextField(_("system prompt"), blank=True)
    temperature = models.FloatField(
        _("temperature"), default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(5.0)]
    )
    top_p = models.FloatField(
        _("top p"), default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    max_tokens = models.PositiveIntegerField(
        _("max tokens"), default=512, validators=[MinValueValidator(1)]
    )
    seed = models.BigIntegerField(_("seed"), null=True, blank=True)
    stop = models.JSONField(_("stop sequences"), default=_default_list, blank=True)
    queue = models.CharField(
        _("queue"), max_length=100, blank=True, help_text=_("Defaults to gen.<slug>.")
    )
    tensor_parallel_size = models.PositiveSmallIntegerField(_("tensor parallel size"), default=1)
    gpu_memory_utilization = models.FloatField(
        _("GPU memory utilisation"),
        default=0.9,
        validators=[MinValueValidator(0.05), MaxValueValidator(1.0)],
    )
    max_model_len = models.PositiveIntegerField(_("max model length"), default=2048)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("contestant")
        verbose_name_plural = _("contestants")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(temperature__gte=0) & Q(temperature__lte=5),
                name="contestant_temperature_range",
            ),
            models.CheckConstraint(
                condition=Q(top_p__gt=0) & Q(top_p__lte=1), name="contestant_top_p_range"
            ),
            models.CheckConstraint(condition=Q(max_tokens__gte=1), name="contestant_max_tokens"),
            models.CheckConstraint(
                condition=Q(backend__in=["vllm", "openai"]), name="contestant_backend_known"
            ),
            models.CheckConstraint(
                condition=~Q(backend="openai") | ~Q(base_url=""),
                name="contestant_openai_needs_base_url",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def queue_name(self) -> str:
        return self.queue or f"gen.{self.slug}"

    def generation_config(self) -> dict[str, Any]:
        """Everything that changes what the model writes; answers are keyed by its hash."""
        return {
            "backend": self.backend,
            "model": self.model,
            "base_url": self.base_url,
            "chat_template": self.chat_template,
            "system_prompt": self.system_prompt,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": list(self.stop),
        }

    @property
    def config_hash(self) -> str:
        blob = json.dumps(self.generation_config(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class QuestionSet(models.Model):
    class Kind(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        LIVE = "live", _("Live prompts")

    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.UPLOADED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("question set")
        verbose_name_plural = _("question sets")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Question(models.Model):
    question_set = models.ForeignKey(
        QuestionSet,
        verbose_name=_("question set"),
        on_delete=models.CASCADE,
        related_name="questions",
    )
    external_id = models.CharField(_("external id"), max_length=200)
    text = models.TextField(_("prompt"))
    category = models.CharField(_("category"), max_length=100, blank=True, db_index=True)
    language = models.CharField(_("language"), max_length=16, blank=True, db_index=True)
    reference_answer = models.TextField(_("reference answer"), blank=True)
    turns = models.JSONField(
        _("follow-up turns"),
        default=_default_list,
        blank=True,
        help_text=_("Later user turns, asked after the model's first answer."),
    )
    named_terms = models.JSONField(
        _("model names in the prompt"),
        default=_default_list,
        blank=True,
        help_text=_("Identity terms the prompt itself names: an answer may repeat them."),
    )
    asks_identity = models.BooleanField(
        _("asks the model who it is"),
        default=False,
        help_text=_("A live prompt that asks the model its name or maker."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["question_set_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["question_set", "external_id"], name="question_external_id_unique_in_set"
            ),
            models.CheckConstraint(condition=~Q(text=""), name="question_text_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.question_set.name} / {self.external_id}"


class Answer(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    question = models.ForeignKey(
        Question, verbose_name=_("question"), on_delete=models.CASCADE, related_name="answers"
    )
    contestant = models.ForeignKey(
        Contestant, verbose_name=_("contestant"), on_delete=models.PROTECT, related_name="answers"
    )
    config_hash = models.CharField(_("configuration hash"), max_length=64)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    failure_reason = models.TextField(_("failure reason"), blank=True)
    raw_text = models.TextField(_("raw text"), blank=True)
    shown_text = models.TextField(_("shown text"), blank=True)
    strip_report = models.JSONField(_("strip report"), default=_default_dict, blank=True)
    followups = models.JSONField(
        _("follow-up replies"),
        default=_default_list,
        blank=True,
        help_text=_("Replies to the question's follow-up turns: [{raw, shown, report}, …]."),
    )
    named_terms = models.JSONField(
        _("model names in the answer"),
        default=_default_list,
        blank=True,
        help_text=_("Identity terms any shown turn names, code included (the taint test)."),
    )
    flagged = models.BooleanField(
        _("flagged"),
        default=False,
        help_text=_("Self-identifying; kept out of battles until released."),
    )
    released = models.BooleanField(
        _("released"), default=False, help_text=_("An admin reviewed the flag.")
    )
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["question", "contestant", "config_hash"], name="answer_unique_per_config"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "done", "failed"]),
                name="answer_status_known",
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(failure_reason=""),
                name="answer_failed_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["question", "status"]),
            # The sampler walks one contestant's done answers in question order from a
            # random pivot (battles/store.py).
            models.Index(
                fields=["contestant", "config_hash", "question"],
                condition=Q(status="done"),
                name="answer_done_by_contestant",
            ),
        ]

    def __str__(self) -> str:
        return f"answer {self.pk} ({self.status})"


class Campaign(models.Model):
    class BothBad(models.TextChoices):
        TIE = "tie", _("Count as a tie")
        DROP = "drop", _("Leave out of ratings")

    class IdentityPolicy(models.TextChoices):
        REDACT = "redact", _("Redact self-identification")
        EXCLUDE = "exclude", _("Keep self-identifying answers out of battles")

    class TaintedVotes(models.TextChoices):
        EXCLUDE = "exclude", _("Leave them out of the ratings")
        COUNT = "count", _("Count them")

    name = models.CharField(_("name"), max_length=200, unique=True)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    description = models.TextField(_("description"), blank=True)
    question_sets = models.ManyToManyField(
        QuestionSet, verbose_name=_("question sets"), related_name="campaigns", blank=True
    )
    contestants = models.ManyToManyField(
        Contestant, verbose_name=_("contestants"), related_name="campaigns", blank=True
    )
    evaluators = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("evaluators"),
        related_name="arena_campaigns",
        blank=True,
    )
    active = models.BooleanField(_("active"), default=True)
    is_open = models.BooleanField(
        _("open to anonymous visitors"), default=False, help_text=_("Rate-limited per session.")
    )
    reveal_after_vote = models.BooleanField(_("reveal identities after the vote"), default=True)
    allow_live = models.BooleanField(_("allow live prompts"), default=False)
    blind_timing = models.BooleanField(
        _("blind timing"), default=True, help_text=_("Show both live answers only when both end.")
    )
    both_bad = models.CharField(
        _("“both are bad” votes"), max_length=8, choices=BothBad.choices, default=BothBad.TIE
    )
    identity_policy = models.CharField(
        _("self-identification policy"),
        max_length=8,
        choices=IdentityPolicy.choices,
        default=IdentityPolicy.REDACT,
    )
    tainted_votes = models.CharField(
        _("votes on battles whose answer names a model"),
        max_length=8,
        choices=TaintedVotes.choices,
        default=TaintedVotes.EXCLUDE,
        help_text=_(
            "A battle is tainted when an answer names a model or maker that the question does "
            "not, or a live prompt asks the model who it is. Its vote is always stored."
        ),
    )
    leaderboard_public = models.BooleanField(_("public leaderboard"), default=False)
    baseline = models.ForeignKey(
        Contestant,
        verbose_name=_("baseline contestant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    baseline_rating = models.FloatField(_("baseline rating"), default=1000.0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EvaluatorProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="evaluator_profile",
    )
    languages = models.JSONField(_("languages"), default=_default_list, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("evaluator profile")
        verbose_name_plural = _("evaluator profiles")

    def __str__(self) -> str:
        return f"profile of {self.user}"


class Battle(models.Model):
    class Mode(models.TextChoices):
        STORED = "stored", _("Pre-generated")
        LIVE = "live", _("Live")

    class State(models.TextChoices):
        SERVED = "served", _("Served")
        VOTED = "voted", _("Voted")
        SKIPPED = "skipped", _("Skipped")
        EXPIRED = "expired", _("Expired")

    code = models.UUIDField(_("code"), default=uuid.uuid4, unique=True, editable=False)
    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="battles"
    )
    evaluator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("evaluator"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="arena_battles",
    )
    session_key = models.CharField(_("session key"), max_length=64, blank=True, db_index=True)
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices, default=Mode.STORED)
    question = models.ForeignKey(
        Question, verbose_name=_("question"), on_delete=models.CASCADE, related_name="battles"
    )
    answer_a = models.ForeignKey(
        Answer, verbose_name=_("answer A"), on_delete=models.PROTECT, related_name="+"
    )
    answer_b = models.ForeignKey(
        Answer, verbose_name=_("answer B"), on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.SERVED)
    served_at = models.DateTimeField(_("served"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))

    class Meta:
        verbose_name = _("battle")
        verbose_name_plural = _("battles")
        ordering = ["-served_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(answer_a=F("answer_b")), name="battle_two_distinct_answers"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["served", "voted", "skipped", "expired"]),
                name="battle_state_known",
            ),
            models.CheckConstraint(
                condition=Q(evaluator__isnull=False) | ~Q(session_key=""),
                name="battle_has_an_owner",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "evaluator", "state"]),
            models.Index(fields=["campaign", "session_key", "state"]),
            # "Has this evaluator seen this question?", probed per candidate by the sampler.
            models.Index(
                fields=["campaign", "evaluator", "question"], name="battle_owner_question"
            ),
        ]

    def __str__(self) -> str:
        return str(self.code)


class Vote(models.Model):
    class Outcome(models.TextChoices):
        A = "a", _("A is better")
        B = "b", _("B is better")
        TIE = "tie", _("Tie")
        BOTH_BAD = "both_bad", _("Both are bad")

    battle = models.OneToOneField(
        Battle, verbose_name=_("battle"), on_delete=models.CASCADE, related_name="vote"
    )
    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="votes"
    )
    evaluator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("evaluator"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
    )
    question = models.ForeignKey(
        Question, verbose_name=_("question"), on_delete=models.CASCADE, related_name="votes"
    )
    # Denormalised from the battle so ratings aggregate with one GROUP BY.
    contestant_a = models.ForeignKey(
        Contestant, verbose_name=_("contestant A"), on_delete=models.PROTECT, related_name="+"
    )
    contestant_b = models.ForeignKey(
        Contestant, verbose_name=_("contestant B"), on_delete=models.PROTECT, related_name="+"
    )
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome.choices)
    reason = models.TextField(_("reason"), blank=True)
    time_to_vote_ms = models.PositiveIntegerField(_("time to vote (ms)"), null=True, blank=True)
    tainted = models.BooleanField(
        _("tainted"),
        default=False,
        help_text=_("An answer named a model the question does not, or the prompt asked."),
    )
    taint = models.JSONField(
        _("taint"),
        default=_default_dict,
        blank=True,
        help_text=_("What tainted it: {side: [terms]}, and asks_identity."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("vote")
        verbose_name_plural = _("votes")
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=["a", "b", "tie", "both_bad"]), name="vote_outcome_known"
            ),
            models.CheckConstraint(
                condition=~Q(contestant_a=F("contestant_b")), name="vote_two_contestants"
            ),
        ]

        indexes = [models.Index(fields=["evaluator", "created_at"])]

    def __str__(self) -> str:
        return f"vote {self.pk}: {self.outcome}"


class RatingSnapshot(models.Model):
    """A computed leaderboard for one scope; pages read these, never compute on request."""

    scope = models.CharField(_("scope"), max_length=300, db_index=True)
    campaign = models.ForeignKey(
        Campaign,
        verbose_name=_("campaign"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="snapshots",
    )
    vote_count = models.PositiveIntegerField(_("votes"), default=0)
    payload = models.JSONField(_("payload"), default=_default_dict)
    computed_at = models.DateTimeField(_("computed"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("rating snapshot")
        verbose_name_plural = _("rating snapshots")
        ordering = ["-computed_at"]
        get_latest_by = "computed_at"

    def __str__(self) -> str:
        return f"{self.scope} @ {self.computed_at:%Y-%m-%d %H:%M}"


class ApiToken(models.Model):
    """A bearer token for scripts. Only its SHA-256 is stored; the key is shown once. A call
    needs one of the endpoint's scopes here *and* the user's model permissions."""

    class Scope(models.TextChoices):
        EVALUATE = "evaluate", _("evaluate: the evaluator flow and leaderboards")
        IMPORT = "import", _("import: question sets in")
        EXPORT = "export", _("export: battles with voter ids out, leaderboards")
        ADMIN = "admin", _("admin: every scope (superusers only)")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="arena_tokens",
    )
    name = models.CharField(_("name"), max_length=100)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    prefix = models.CharField(_("prefix"), max_length=8, editable=False)
    # Space-separated, as OAuth writes scopes: one column the token statement reads as is.
    scopes = models.CharField(_("scopes"), max_length=100, default=Scope.EVALUATE)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    def has_scope(self, scope: str) -> bool:
        """Whether the token holds ``scope``; ``admin`` stands for every scope."""
        held = self.scope_list
        return scope in held or self.Scope.ADMIN in held


class PairLoad(models.Model):
    """How many battles a contestant pair has been served in a campaign. The sampler reads
    these few rows instead of counting votes on every request; lo < hi by primary key."""

    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="pair_loads"
    )
    contestant_lo = models.ForeignKey(
        Contestant, verbose_name=_("contestant"), on_delete=models.CASCADE, related_name="+"
    )
    contestant_hi = models.ForeignKey(
        Contestant, verbose_name=_("other contestant"), on_delete=models.CASCADE, related_name="+"
    )
    battles = models.PositiveIntegerField(_("battles"), default=0)

    class Meta:
        verbose_name = _("pair load")
        verbose_name_plural = _("pair loads")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "contestant_lo", "contestant_hi"], name="pair_load_unique"
            ),
            models.CheckConstraint(
                condition=Q(contestant_lo__lt=F("contestant_hi")), name="pair_load_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contestant_lo_id}-{self.contestant_hi_id}: {self.battles}"
