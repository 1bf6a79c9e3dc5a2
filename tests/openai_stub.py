"""Writing OpenAI-compatible streamed replies from a test's own local HTTP endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler


def stream_reply(
    handler: BaseHTTPRequestHandler,
    pieces: Iterable[str],
    *,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """Answer the handler's request with a chat-completions event stream of ``pieces``, then
    a stop with these token counts, then ``[DONE]``."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.end_headers()
    for piece in pieces:
        chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
    final = {
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    handler.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
