"""Generation progress events for the admin's live view (a staff-only channel group)."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from arena.selectors.generation import generation_progress_get


def progress_group(question_set_id: int) -> str:
    return f"generation.{question_set_id}"


def generation_progress_notify(*, question_set_id: int) -> None:
    """Push the set's current counts to everyone watching it. Best effort: a dropped event
    is corrected by the next one, and the page also loads the counts when it connects."""
    layer = get_channel_layer()
    if layer is None:
        return
    payload = generation_progress_get(question_set_id=question_set_id)
    async_to_sync(layer.group_send)(
        progress_group(question_set_id), {"type": "progress.update", "progress": payload}
    )
