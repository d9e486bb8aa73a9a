"""Which Redis the feeds use: configured, local, or an embedded server of their own."""

from __future__ import annotations

import socket
from pathlib import Path

import redis

from feeds import redis_conn


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_configured_url_wins() -> None:
    url = "redis://example.invalid:6390/3"
    assert redis_conn.resolve_url(url=url) == url


def test_local_server_is_detected_by_ping() -> None:
    assert not redis_conn.local_answers(port=_closed_port())
    if redis_conn.local_answers():
        assert redis_conn.resolve_url() == "redis://127.0.0.1:6379/0"


def test_embedded_server_runs_under_the_given_directory(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    url = redis_conn.embedded_url(directory)
    assert url == f"unix://{directory.resolve() / 'redis.socket'}"
    assert redis_conn.socket_answers(directory / "redis.socket")
    client = redis.Redis.from_url(url)
    try:
        client.set("cx-test:embedded", "1")
        assert client.get("cx-test:embedded") == b"1"
    finally:
        client.close()
    assert redis_conn.embedded_url(directory) == url  # started once, then reused
