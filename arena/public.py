"""The anonymised objects every evaluator-facing surface is built from.

Templates, JSON responses and websocket frames for evaluators use only these dataclasses.
None of them has a field for a contestant's name, slug, id, backend, model path, endpoint,
latency or token count; identities come out only through :class:`PublicReveal`, which the
reveal selector builds after this evaluator's vote exists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from django.utils.safestring import SafeString

from arena.markdown import render_markdown

Side = Literal["a", "b"]


@dataclass(frozen=True)
class PublicRound:
    """One user turn and the two replies to it."""

    user_html: SafeString
    a_html: SafeString
    b_html: SafeString
    a_ready: bool = True
    b_ready: bool = True


@dataclass(frozen=True)
class PublicBattle:
    code: str
    campaign: str  # the campaign's slug: shown in the URL already
    campaign_name: str
    mode: Literal["stored", "live"]
    state: Literal["served", "voted", "skipped", "expired"]
    rounds: list[PublicRound]
    expires_at: dt.datetime
    voted_outcome: str | None = None
    can_vote: bool = True
    blind_timing: bool = False
    # Served, but its time ran out just now: shown expired, and the caller records it
    # (battles.sampler.battle_expire). Not part of the JSON.
    expired_now: bool = False

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["expired_now"]
        data["expires_at"] = self.expires_at.isoformat()
        data["rounds"] = [
            {
                "user_html": str(r.user_html),
                "a_html": str(r.a_html),
                "b_html": str(r.b_html),
                "a_ready": r.a_ready,
                "b_ready": r.b_ready,
            }
            for r in self.rounds
        ]
        return data


@dataclass(frozen=True)
class PublicReveal:
    code: str
    a: str  # display names, shown only after this evaluator voted on this battle
    b: str
    outcome: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PublicProgress:
    votes: int
    remaining_questions: int


@dataclass(frozen=True)
class PublicCampaign:
    slug: str
    name: str
    description: str
    allow_live: bool
    progress: PublicProgress | None = None
    tags: list[str] = field(default_factory=list)
    leaderboard: bool = False  # may this visitor open the campaign's leaderboard


def stream_frame(
    kind: Literal["delta", "reset", "done", "error", "reveal_both"],
    side: Side | None = None,
    **data: Any,
) -> dict[str, Any]:
    """A websocket frame for a live battle: labelled with the side only."""
    frame: dict[str, Any] = {"type": kind}
    if side is not None:
        frame["side"] = side
    frame.update(data)
    return frame


def md(text: str) -> SafeString:
    return render_markdown(text)


@dataclass(frozen=True)
class PublicGrading:
    """One answer served for an absolute grade: the question and the answer only."""

    code: str
    campaign: str  # the campaign's slug: shown in the URL already
    campaign_name: str
    state: Literal["served", "graded", "skipped", "expired"]
    question_html: SafeString
    answer_html: SafeString
    rubric: Literal["overall", "criteria"]
    criteria: list[tuple[str, str]]  # (field name, label), in the order asked
    expires_at: dt.datetime
    grade: dict[str, int] = field(default_factory=dict)  # this evaluator's, once given

    @property
    def can_grade(self) -> bool:
        return self.state == "served"

    @property
    def scale(self) -> list[int]:
        """The grades one may give: 1 to 10."""
        return list(range(1, 11))

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "campaign": self.campaign,
            "campaign_name": self.campaign_name,
            "state": self.state,
            "question_html": str(self.question_html),
            "answer_html": str(self.answer_html),
            "rubric": self.rubric,
            "criteria": [{"name": n, "label": label} for n, label in self.criteria],
            "expires_at": self.expires_at.isoformat(),
            "grade": self.grade or None,
        }
