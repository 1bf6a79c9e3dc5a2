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

    class PublicRefresh(models.TextChoices):
        CLOSED = "closed", _("Nothing until the campaign closes")
        DAILY = "daily", _("The ratings as they stood at the start of the day (UTC)")
        LIVE = "live", _("The latest ratings, moving with every vote")

    class Sampling(models.TextChoices):
        BALANCED = "balanced", _("Balanced: the pair with the fewest battles")
        ACTIVE = "active", _("Active: where the ranking is least certain")

    class Kind(models.TextChoices):
        PAIRWISE = "pairwise", _("Pairwise: which of two answers is better")
        GRADING = "grading", _("Grading: one answer graded on a rubric")

    class Rubric(models.TextChoices):
        OVERALL = "overall", _("One overall grade, 1–10")
        CRITERIA = "criteria", _("Per criterion, 1–10 each")

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
    reveal_after_vote = models.BooleanField(
        _("reveal identities after the vote"),
        null=True,
        blank=True,
        default=None,
        choices=[
            (None, _("Default: yes in a team campaign, no in an open one")),
            (True, _("Yes")),
            (False, _("No")),
        ],
        help_text=_(
            "In an open campaign a stranger who learns each model's style from reveals can vote "
            "for it later."
        ),
    )
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
    public_refresh = models.CharField(
        _("public leaderboard shows"),
        max_length=8,
        choices=PublicRefresh.choices,
        default=PublicRefresh.CLOSED,
        help_text=_(
            "What everyone but staff sees of a public leaderboard. A leaderboard that moves with "
            "each vote lets an evaluator tell which model an answer came from."
        ),
    )
    baseline = models.ForeignKey(
        Contestant,
        verbose_name=_("baseline contestant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    baseline_rating = models.FloatField(_("baseline rating"), default=1000.0)
    kind = models.CharField(
        _("kind"), max_length=8, choices=Kind.choices, default=Kind.PAIRWISE, db_default="pairwise"
    )
    rubric = models.CharField(
        _("grading rubric"),
        max_length=8,
        choices=Rubric.choices,
        default=Rubric.OVERALL,
        db_default="overall",
    )
    ask_acceptable = models.BooleanField(
        _("ask whether each answer is acceptable"),
        default=False,
        db_default=False,
        help_text=_("Pairwise: an optional acceptable / not acceptable per answer."),
    )
    sampling = models.CharField(
        _("pair sampling"),
        max_length=8,
        choices=Sampling.choices,
        default=Sampling.BALANCED,
        help_text=_(
            "Active: pairs drawn with weights from the latest ratings, favouring the votes that "
            "most narrow the intervals of adjacent ranks; the ratings correct for it."
        ),
    )
    sampling_floor = models.FloatField(
        _("uniform share of active sampling"),
        default=0.1,
        validators=[MinValueValidator(0.01), MaxValueValidator(1.0)],
    )
    sampling_top = models.PositiveSmallIntegerField(
        _("ranks active sampling separates"),
        default=3,
        help_text=_("The adjacent gaps among this many top ranks; 0: every rank."),
    )
    expert_categories = models.JSONField(
        _("categories for experts only"),
        default=_default_list,
        blank=True,
        help_text=_("Questions of these categories go only to evaluators with that skill."),
    )
    expert_languages = models.JSONField(
        _("languages for experts only"),
        default=_default_list,
        blank=True,
        help_text=_("Questions in these languages go only to evaluators who read them."),
    )
    expert_weight = models.FloatField(
        _("weight of an expert's vote"),
        default=1.0,
        validators=[MinValueValidator(1.0), MaxValueValidator(10.0)],
        help_text=_("An expert's vote on a question of their skill counts this many times."),
    )
    # Vote quality (arena/quality/): control battles, caps, opt-in automatic exclusions.
    gold_rate = models.FloatField(
        _("share of gold battles"),
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text=_("Battles with a known better answer, mixed in; never counted in ratings."),
    )
    repeat_rate = models.FloatField(
        _("share of repeat battles"),
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text=_("An earlier battle served again to the same evaluator, sides swapped."),
    )
    overlap_rate = models.FloatField(
        _("share of overlap battles"),
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text=_("Another evaluator's battle served again, for inter-rater agreement."),
    )
    daily_vote_cap = models.PositiveIntegerField(
        _("votes per evaluator per day"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Empty: no cap. An evaluator at the cap gets no new battle until tomorrow."),
    )
    exclude_flagged = models.BooleanField(
        _("leave out voters the outlier test flags"),
        default=False,
        help_text=_("Automatic, audited exclusion, recorded as the rule 'outlier'."),
    )
    gold_accuracy_floor = models.FloatField(
        _("leave out evaluators under this gold accuracy"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("Empty: off. Applies from five gold votes on."),
    )
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
    skills = models.JSONField(
        _("skills"),
        default=_default_list,
        blank=True,
        help_text=_("Question categories this evaluator is an expert in."),
    )
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

    class Kind(models.TextChoices):
        REGULAR = "regular", _("Regular")
        GOLD = "gold", _("Gold (known better answer)")
        REPEAT = "repeat", _("Repeat (same evaluator, sides swapped)")
        OVERLAP = "overlap", _("Overlap (another evaluator)")

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
    # Control battles (arena/quality/): served like any other, told apart only here.
    kind = models.CharField(
        _("kind"), max_length=8, choices=Kind.choices, default=Kind.REGULAR, db_default="regular"
    )
    source = models.ForeignKey(
        "self",
        verbose_name=_("repeats or overlaps"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    gold = models.ForeignKey(
        "GoldItem",
        verbose_name=_("gold item"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="battles",
    )
    # Active sampling: 1 / (pairs x the pair's probability) when served, the inverse-propensity
    # weight its vote gets in the ratings; None: not actively sampled (weight 1).
    sampling_weight = models.FloatField(_("sampling weight"), null=True, blank=True)

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
            # "Was any battle of this campaign actively sampled?", asked by every recompute.
            models.Index(
                fields=["campaign"],
                condition=Q(sampling_weight__isnull=False),
                name="battle_sampled_by_campaign",
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
    # Vote quality (arena/quality/); which votes count is arena.ratings.store.counted_votes.
    control = models.BooleanField(
        _("control vote"),
        default=False,
        db_default=False,
        help_text=_("On a gold or repeat battle: kept for the quality figures, never counted."),
    )
    excluded = models.BooleanField(
        _("excluded"),
        default=False,
        db_default=False,
        help_text=_("An active exclusion covers it: stored and exported, not counted."),
    )
    low_confidence = models.BooleanField(
        _("low confidence"),
        default=False,
        db_default=False,
        help_text=_("Cast from a very new session or faster than the reading-time floor."),
    )
    # Campaign.ask_acceptable: the evaluator's verdict on each answer beside the preference.
    acceptable_a = models.BooleanField(_("answer A acceptable"), null=True, blank=True)
    acceptable_b = models.BooleanField(_("answer B acceptable"), null=True, blank=True)
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

        indexes = [
            models.Index(fields=["evaluator", "created_at"]),
            # The few excluded votes of a campaign, read by every recompute (ratings/store.py).
            models.Index(
                fields=["campaign"], condition=Q(excluded=True), name="vote_excluded_by_campaign"
            ),
            # The tainted votes a recompute says it left out (ratings/store.tainted_excluded).
            models.Index(
                fields=["campaign"], condition=Q(tainted=True), name="vote_tainted_by_campaign"
            ),
        ]

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
        # The latest snapshot of a scope, and the campaign's history in time order.
        indexes = [
            models.Index(fields=["campaign", "scope", "computed_at"], name="snapshot_scope_history")
        ]

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
    # Active sampling: the pair's probability in the plan of the latest snapshot (None: no plan).
    weight = models.FloatField(_("sampling probability"), null=True, blank=True)

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


class GoldItem(models.Model):
    """A question and two of its answers with a known better one: served as a gold battle,
    its votes measure an evaluator's accuracy and never count toward ratings."""

    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="gold_items"
    )
    question = models.ForeignKey(
        Question, verbose_name=_("question"), on_delete=models.CASCADE, related_name="+"
    )
    better = models.ForeignKey(
        Answer, verbose_name=_("better answer"), on_delete=models.PROTECT, related_name="+"
    )
    worse = models.ForeignKey(
        Answer, verbose_name=_("worse answer"), on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("gold item")
        verbose_name_plural = _("gold items")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(better=F("worse")), name="gold_item_two_distinct_answers"
            ),
            models.UniqueConstraint(
                fields=["campaign", "better", "worse"], name="gold_item_unique_in_campaign"
            ),
        ]

    def __str__(self) -> str:
        return f"gold {self.pk}: question {self.question_id}"


class Exclusion(models.Model):
    """Votes left out of a campaign's ratings, with who decided it and why: every vote of one
    evaluator (a user, or a session: anonymous or ``import:<judge>``), or the chosen votes.
    Revoking keeps the row. The votes themselves stay stored and exported, marked."""

    class Rule(models.TextChoices):
        MANUAL = "manual", _("An admin's decision")
        OUTLIER = "outlier", _("Flagged by the outlier test")
        GOLD = "gold", _("Gold accuracy under the campaign's floor")

    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="exclusions"
    )
    evaluator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("evaluator"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    session_key = models.CharField(_("session"), max_length=64, blank=True)
    label = models.CharField(
        _("evaluator"), max_length=200, blank=True, help_text=_("As the quality page names it.")
    )
    votes = models.ManyToManyField(
        Vote, verbose_name=_("votes"), blank=True, related_name="exclusions"
    )
    rule = models.CharField(_("rule"), max_length=8, choices=Rule.choices, default=Rule.MANUAL)
    reason = models.TextField(_("reason"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("revoked by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoke_reason = models.TextField(_("reason for revoking"), blank=True)

    class Meta:
        verbose_name = _("exclusion")
        verbose_name_plural = _("exclusions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="exclusion_has_reason"),
            models.CheckConstraint(
                condition=Q(rule__in=["manual", "outlier", "gold"]), name="exclusion_rule_known"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "revoked_at"])]

    def __str__(self) -> str:
        return f"exclusion {self.pk}: {self.label or _('chosen votes')}"


class Judge(models.Model):
    """An LLM that judges answers: a model served like a contestant (its serving row) plus a
    judging configuration. A run freezes this configuration (`JudgeRun.config`)."""

    class Mode(models.TextChoices):
        PAIRWISE = "pairwise", _("Pairwise (A>>B … B>>A)")
        SINGLE = "single", _("Single answer (grade 1–10)")

    class Language(models.TextChoices):
        EN = "en", _("English")
        KO = "ko", _("Korean")

    name = models.CharField(_("name"), max_length=200, unique=True)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    serving = models.ForeignKey(
        Contestant,
        verbose_name=_("served as"),
        on_delete=models.PROTECT,
        related_name="judges",
        help_text=_(
            "The contestant row that says how the judge's model is served (backend, model, "
            "endpoint, queue). Its own sampling settings are not used."
        ),
    )
    maker = models.CharField(
        _("maker"),
        max_length=100,
        blank=True,
        help_text=_("Who made the judge's model; a contestant by the same maker is flagged."),
    )
    mode = models.CharField(_("mode"), max_length=16, choices=Mode.choices, default=Mode.PAIRWISE)
    language = models.CharField(
        _("prompt language"), max_length=8, choices=Language.choices, default=Language.EN
    )
    system_prompt = models.TextField(
        _("system prompt"), blank=True, help_text=_("Empty: the tested default of the language.")
    )
    prompt_template = models.TextField(
        _("prompt template"),
        blank=True,
        help_text=_(
            "Empty: the tested default. Placeholders: {question}, {answer_a}, {answer_b} "
            "(pairwise) or {answer} (single), and {reference}."
        ),
    )
    use_reference = models.BooleanField(
        _("show the reference answer"),
        default=True,
        help_text=_("Give the judge the question's reference answer when it has one."),
    )
    temperature = models.FloatField(
        _("temperature"), default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(5.0)]
    )
    top_p = models.FloatField(
        _("top p"), default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    max_tokens = models.PositiveIntegerField(
        _("max tokens"), default=1024, validators=[MinValueValidator(1)]
    )
    seed = models.BigIntegerField(_("seed"), null=True, blank=True)
    trials = models.PositiveSmallIntegerField(
        _("trials"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text=_("How many times each judgment is repeated (use temperature > 0)."),
    )
    strong_weight = models.PositiveSmallIntegerField(
        _("weight of a strong verdict"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_("A>>B counts as this many wins (arena-hard uses 3)."),
    )
    queue = models.CharField(
        _("queue"),
        max_length=100,
        blank=True,
        help_text=_("Defaults to the serving contestant's queue."),
    )
    price_input = models.FloatField(
        _("price per million input tokens"), default=0.0, validators=[MinValueValidator(0.0)]
    )
    price_output = models.FloatField(
        _("price per million output tokens"), default=0.0, validators=[MinValueValidator(0.0)]
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("judge")
        verbose_name_plural = _("judges")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(mode__in=["pairwise", "single"]), name="judge_mode_known"
            ),
            models.CheckConstraint(
                condition=Q(temperature__gte=0) & Q(temperature__lte=5),
                name="judge_temperature_range",
            ),
            models.CheckConstraint(condition=Q(max_tokens__gte=1), name="judge_max_tokens"),
            models.CheckConstraint(
                condition=Q(trials__gte=1) & Q(trials__lte=50), name="judge_trials_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def queue_name(self) -> str:
        return self.queue or self.serving.queue_name


class JudgeRun(models.Model):
    """One judge over one campaign's answer pairs, ``trials`` times; its configuration is
    frozen at creation so that later edits of the judge never mix into its judgments."""

    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="judge_runs"
    )
    judge = models.ForeignKey(
        Judge, verbose_name=_("judge"), on_delete=models.PROTECT, related_name="runs"
    )
    trials = models.PositiveSmallIntegerField(
        _("trials"), default=1, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    pairs_limit = models.PositiveIntegerField(
        _("pairs"), null=True, blank=True, help_text=_("Empty: every pair of done answers.")
    )
    config = models.JSONField(_("configuration"), default=_default_dict, editable=False)
    combine_weight = models.FloatField(
        _("weight in the combined ranking"),
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text=_("0: no combined ranking. Otherwise one judgment counts this many votes."),
    )
    report = models.JSONField(_("report"), default=_default_dict, blank=True, editable=False)
    report_at = models.DateTimeField(_("report computed"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("judge run")
        verbose_name_plural = _("judge runs")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(trials__gte=1) & Q(trials__lte=50), name="judge_run_trials_range"
            ),
            models.CheckConstraint(
                condition=Q(combine_weight__gte=0), name="judge_run_combine_weight"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.judge} on {self.campaign} ({self.created_at:%Y-%m-%d %H:%M})"


class Judgment(models.Model):
    """One judge call: a verdict on two answers in one order (pairwise), or a grade of one
    answer (single, ``answer_b`` empty), in one trial. A verdict that cannot be read is kept
    as ``unparsed`` with the raw text and the reason, never guessed."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        UNPARSED = "unparsed", _("Unparseable verdict")
        FAILED = "failed", _("Failed")

    run = models.ForeignKey(
        JudgeRun, verbose_name=_("run"), on_delete=models.CASCADE, related_name="judgments"
    )
    question = models.ForeignKey(
        Question, verbose_name=_("question"), on_delete=models.CASCADE, related_name="+"
    )
    answer_a = models.ForeignKey(
        Answer, verbose_name=_("first answer"), on_delete=models.CASCADE, related_name="+"
    )
    answer_b = models.ForeignKey(
        Answer,
        verbose_name=_("second answer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    contestant_a = models.ForeignKey(
        Contestant, verbose_name=_("first contestant"), on_delete=models.CASCADE, related_name="+"
    )
    contestant_b = models.ForeignKey(
        Contestant,
        verbose_name=_("second contestant"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    trial = models.PositiveSmallIntegerField(_("trial"), default=0)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    verdict = models.CharField(_("verdict"), max_length=8, blank=True)
    grade = models.FloatField(_("grade"), null=True, blank=True)
    raw_text = models.TextField(_("raw text"), blank=True)
    reason = models.TextField(_("reason"), blank=True)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("judgment")
        verbose_name_plural = _("judgments")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "answer_a", "answer_b", "trial"],
                condition=Q(answer_b__isnull=False),
                name="judgment_unique_pairwise",
            ),
            models.UniqueConstraint(
                fields=["run", "answer_a", "trial"],
                condition=Q(answer_b__isnull=True),
                name="judgment_unique_single",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "done", "unparsed", "failed"]),
                name="judgment_status_known",
            ),
            models.CheckConstraint(
                condition=~Q(answer_a=F("answer_b")), name="judgment_two_distinct_answers"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["failed", "unparsed"]) | ~Q(reason=""),
                name="judgment_failure_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(status="done") | ~Q(verdict="") | Q(grade__isnull=False),
                name="judgment_done_has_verdict",
            ),
            models.CheckConstraint(
                condition=Q(verdict__in=["", "A>>B", "A>B", "A=B", "B>A", "B>>A"]),
                name="judgment_verdict_known",
            ),
        ]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"judgment {self.pk} ({self.status})"


class Grading(models.Model):
    """One anonymous answer served to one evaluator for an absolute grade (a grading
    campaign's battle): the page shows the question and this answer, never its contestant."""

    class State(models.TextChoices):
        SERVED = "served", _("Served")
        GRADED = "graded", _("Graded")
        SKIPPED = "skipped", _("Skipped")
        EXPIRED = "expired", _("Expired")

    code = models.UUIDField(_("code"), default=uuid.uuid4, unique=True, editable=False)
    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="gradings"
    )
    evaluator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("evaluator"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    session_key = models.CharField(_("session key"), max_length=64, blank=True, db_index=True)
    question = models.ForeignKey(
        Question, verbose_name=_("question"), on_delete=models.PROTECT, related_name="+"
    )
    answer = models.ForeignKey(
        Answer, verbose_name=_("answer"), on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.SERVED)
    served_at = models.DateTimeField(_("served"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))

    class Meta:
        verbose_name = _("grading")
        verbose_name_plural = _("gradings")
        ordering = ["-served_at"]
        indexes = [models.Index(fields=["campaign", "evaluator", "question"])]

    def __str__(self) -> str:
        return f"grading {self.code}"


GRADE_CRITERIA = ("helpfulness", "correctness", "harmlessness", "language_quality")


def _grade_range(field: str) -> Q:
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": 1, f"{field}__lte": 10})


class Grade(models.Model):
    """An evaluator's grade of one answer: an overall 1–10, or 1–10 per criterion."""

    grading = models.OneToOneField(
        Grading, verbose_name=_("grading"), on_delete=models.CASCADE, related_name="grade"
    )
    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="grades"
    )
    evaluator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("evaluator"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    question = models.ForeignKey(
        Question, verbose_name=_("question"), on_delete=models.PROTECT, related_name="+"
    )
    contestant = models.ForeignKey(
        Contestant, verbose_name=_("contestant"), on_delete=models.PROTECT, related_name="+"
    )
    overall = models.PositiveSmallIntegerField(_("overall"), null=True, blank=True)
    helpfulness = models.PositiveSmallIntegerField(_("helpfulness"), null=True, blank=True)
    correctness = models.PositiveSmallIntegerField(_("correctness"), null=True, blank=True)
    harmlessness = models.PositiveSmallIntegerField(_("harmlessness"), null=True, blank=True)
    language_quality = models.PositiveSmallIntegerField(
        _("language quality"), null=True, blank=True
    )
    reason = models.TextField(_("reason"), blank=True)
    time_to_grade_ms = models.PositiveIntegerField(_("time to grade (ms)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("answer grade")
        verbose_name_plural = _("answer grades")
        ordering = ["created_at", "id"]
        constraints = [
            *(
                models.CheckConstraint(condition=_grade_range(f), name=f"grade_{f}_1_to_10")
                for f in ("overall", *GRADE_CRITERIA)
            ),
            models.CheckConstraint(
                condition=Q(overall__isnull=False)
                | Q(
                    helpfulness__isnull=False,
                    correctness__isnull=False,
                    harmlessness__isnull=False,
                    language_quality__isnull=False,
                ),
                name="grade_overall_or_every_criterion",
            ),
        ]

    def __str__(self) -> str:
        return f"grade {self.pk}"
