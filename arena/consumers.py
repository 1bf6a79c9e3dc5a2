"""Websocket consumers: authenticate, join a group named by an opaque id, relay events."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from arena.battles.live import battle_group
from arena.battles.read import NotFound, battle_get_for_evaluator
from arena.battles.rules import AccessDenied, Owner
from arena.generation.progress import generation_progress_get, progress_group
from arena.public import stream_frame
from arena.ratings.read import LeaderboardRefused, leaderboard_listen_check
from arena.ratings.snapshot import leaderboard_group

# Clients only listen on these channels; anything they send is dropped unanswered (an answer
# per message would let one client make the server work for every frame it sends). A frame
# over MAX_FRAME_BYTES closes the socket with 1009 (message too big), more than MAX_MESSAGES
# within MESSAGE_WINDOW_SECONDS with 4429 (too many).
MAX_FRAME_BYTES = 1024
MAX_MESSAGES = 8
MESSAGE_WINDOW_SECONDS = 5.0
CLOSE_TOO_BIG = 1009
CLOSE_TOO_MANY = 4429


class _ListenOnlyConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """A consumer whose clients send nothing: bounds what they may send anyway."""

    _received: deque[float]
    _refused = False

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        if self._refused:
            return
        text, data = message.get("text"), message.get("bytes")
        size = len(text) if text is not None else len(data or b"")
        if size <= MAX_FRAME_BYTES and text is not None:
            size = len(text.encode("utf-8"))
        if size > MAX_FRAME_BYTES:
            await self._refuse(CLOSE_TOO_BIG)
            return
        if not hasattr(self, "_received"):
            self._received = deque(maxlen=MAX_MESSAGES)
        now = time.monotonic()
        if len(self._received) == MAX_MESSAGES and now - self._received[0] < MESSAGE_WINDOW_SECONDS:
            await self._refuse(CLOSE_TOO_MANY)
            return
        self._received.append(now)

    async def _refuse(self, code: int) -> None:
        self._refused = True
        await self.close(code=code)


class GenerationProgressConsumer(_ListenOnlyConsumer):
    """Staff only: live answer counts of one question set."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.close(code=4403)
            return
        self.group = progress_group(int(self.scope["url_route"]["kwargs"]["question_set_id"]))
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        progress = await database_sync_to_async(generation_progress_get)(
            question_set_id=int(self.scope["url_route"]["kwargs"]["question_set_id"])
        )
        await self.send_json({"type": "progress", "progress": progress})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def progress_update(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "progress", "progress": event["progress"]})


class BattleConsumer(_ListenOnlyConsumer):
    """The evaluator's own live battle: frames labelled a/b only, from public.py."""

    async def connect(self) -> None:
        owner = _owner(self.scope)
        code = str(self.scope["url_route"]["kwargs"]["code"])
        if owner is None:
            await self.close(code=4403)
            return
        try:
            battle = await database_sync_to_async(battle_get_for_evaluator)(code=code, owner=owner)
        except NotFound:
            await self.close(code=4404)
            return
        except AccessDenied:
            await self.close(code=4403)
            return
        self.group = battle_group(code)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # Catch up on what finished before this socket joined (respecting blind timing).
        last = battle.rounds[-1]
        if last.a_ready and last.b_ready and battle.blind_timing:
            await self.send_json(
                stream_frame("reveal_both", a_html=str(last.a_html), b_html=str(last.b_html))
            )
        else:
            for side, ready, html in (
                ("a", last.a_ready, last.a_html),
                ("b", last.b_ready, last.b_html),
            ):
                if ready:
                    await self.send_json(stream_frame("done", side, html=str(html)))  # type: ignore[arg-type]

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def battle_frame(self, event: dict[str, Any]) -> None:
        await self.send_json(event["frame"])


def _listen_check(*, campaign_id: int, user: Any) -> None:
    """`leaderboard_listen_check` for the socket's user as the database has it now."""
    current: Any = AnonymousUser()
    if user is not None and user.is_authenticated:
        found = get_user_model().objects.filter(pk=user.pk, is_active=True).first()
        current = found if found is not None else AnonymousUser()
    leaderboard_listen_check(campaign_id=campaign_id, user=current)


def _owner(scope: dict[str, Any]) -> Owner | None:
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return Owner(user=user)
    session = scope.get("session")
    key = getattr(session, "session_key", None)
    return Owner(user=None, session_key=key) if key else None


class LeaderboardConsumer(_ListenOnlyConsumer):
    """Tells an open leaderboard page that new snapshots were stored, so it reloads them.
    Whoever sees the leaderboard as it is computed may listen (not a public reader of a frozen
    view: `leaderboard_until`); the frames carry no figures."""

    async def connect(self) -> None:
        refused = await self._refusal()
        if refused is not None:
            await self.close(code=refused)
            return
        self.group = leaderboard_group(int(self.scope["url_route"]["kwargs"]["campaign_id"]))
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def _refusal(self) -> int | None:
        """The close code if this reader may not be told of updates now, else None. The user
        is read again each time: staff rights taken away or an account deactivated since the
        socket opened count at once."""
        try:
            await database_sync_to_async(_listen_check)(
                campaign_id=int(self.scope["url_route"]["kwargs"]["campaign_id"]),
                user=self.scope.get("user"),
            )
        except LeaderboardRefused as exc:
            return 4404 if exc.reason == "not_found" else 4403
        return None

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def leaderboard_updated(self, event: dict[str, Any]) -> None:
        # Asked again at each update (they come seconds apart at most): a campaign switched
        # from live to a frozen view, or a reader who lost staff rights, must not go on
        # learning when the ratings move.
        refused = await self._refusal()
        if refused is not None:
            await self.close(code=refused)
            return
        await self.send_json(
            {
                "type": "leaderboard.updated",
                "scope": event["scope"],
                "computed_at": event["computed_at"],
            }
        )
