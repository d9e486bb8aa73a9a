"""Where the ledger's Postgres is, and the few database-level operations around it.

DESIGN "Real components, embedded by default": the configured URL (``database.url``, from
``CX_DATABASE_URL``) when set; else the
database ``cx`` on the Postgres at 127.0.0.1:5432 (user postgres) when one answers there;
else the same on a real Postgres started from the ``pgserver`` wheel with its data under a
directory (``var/pg`` by default). Every path ends in an ordinary connection URL that
asyncpg opens the same way.
"""

from __future__ import annotations

import re
import secrets
import socket
import struct
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from pydantic import BaseModel, ConfigDict, SecretStr

ENV_URL = "CX_DATABASE_URL"  # the documented variable (read by ``cx.settings`` only)
LOCAL_HOST, LOCAL_PORT = "127.0.0.1", 5432
LOCAL_URL = f"postgresql://postgres@{LOCAL_HOST}:{LOCAL_PORT}/postgres"
DEFAULT_DATA_DIR = Path("var/pg")
MAINTENANCE_DB = "postgres"
DEFAULT_DATABASE = "cx"  # the exchange's database when none is configured
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # the protocol's SSLRequest packet
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_embedded: dict[Path, Any] = {}  # data dir -> pgserver.PostgresServer (kept alive)


class DatabaseConfig(BaseModel):
    """The ``database`` section: a secret, since a URL may carry a password."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: SecretStr | None = None  # None: the local Postgres if one answers, else embedded

    def configured_url(self) -> str | None:
        return None if self.url is None else self.url.get_secret_value()


class DatabaseError(RuntimeError):
    """A database could not be found, created or dropped (the message says which)."""


def postgres_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if a Postgres server answers at host:port.

    Sends the protocol's SSLRequest, which any Postgres answers with one byte ('S' or 'N')
    before authentication, so a port held by something else does not count.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_SSL_REQUEST)
            return sock.recv(1) in (b"S", b"N")
    except OSError:
        return False


def start_embedded(data_dir: str | Path = DEFAULT_DATA_DIR) -> str:
    """Start (or reuse) a pgserver Postgres with its data under ``data_dir``; its URL.

    The server stops when the last process using it exits (pgserver's ``stop`` mode); the
    data stays, so the next start finds the same databases.
    """
    import pgserver  # heavy import, only on this path

    path = Path(data_dir).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    server = _embedded.get(path)
    if server is None:
        server = pgserver.get_server(path, cleanup_mode="stop")
        _embedded[path] = server
    return str(server.get_uri(MAINTENANCE_DB))


def stop_embedded(data_dir: str | Path = DEFAULT_DATA_DIR) -> None:
    """Stop the embedded Postgres this process started for ``data_dir`` (data kept)."""
    server = _embedded.pop(Path(data_dir).expanduser().resolve(), None)
    if server is not None:
        server.cleanup()


def resolve_url(data_dir: str | Path = DEFAULT_DATA_DIR, url: str | None = None) -> str:
    """The database URL to use: ``url`` (the configured one) as given; else the database
    ``cx`` on the local Postgres if one answers, else on the embedded one (create it with
    ``ensure_database``)."""
    if url:
        return url
    if postgres_answers(LOCAL_HOST, LOCAL_PORT):
        return f"postgresql://postgres@{LOCAL_HOST}:{LOCAL_PORT}/{DEFAULT_DATABASE}"
    return with_database(start_embedded(data_dir), DEFAULT_DATABASE)


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server (query options kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name:
        raise DatabaseError(f"no database named in {redact(url)}")
    return name


def redact(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def connect(url: str, **kwargs: Any) -> asyncpg.Connection:
    return await asyncpg.connect(url, **kwargs)


async def create_pool(
    url: str, *, min_size: int = 1, max_size: int = 4, **kwargs: Any
) -> asyncpg.Pool:
    """An asyncpg pool (readers: gateway, reconciliation; the projector keeps its own
    connection so that its transactions never wait for a pooled one)."""
    return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, **kwargs)


async def create_database(server_url: str, prefix: str = "cx") -> str:
    """Create a uniquely named, empty database on ``server_url``'s server; its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    if not _DB_NAME.match(name):
        raise DatabaseError(f"invalid database name {name!r} (prefix: lower case, digits, _)")
    conn = await asyncpg.connect(with_database(server_url, MAINTENANCE_DB))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def ensure_database(url: str) -> bool:
    """Create the database ``url`` names if its server lacks it; True if it was created."""
    name = database_name(url)
    if not _DB_NAME.match(name):
        raise DatabaseError(f"invalid database name {name!r}")
    conn = await asyncpg.connect(with_database(url, MAINTENANCE_DB))
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:  # created meanwhile by someone else
            return False
        return True
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    """Drop the database ``url`` names, closing whatever is still connected to it."""
    name = database_name(url)
    if not _DB_NAME.match(name) or name in (MAINTENANCE_DB, "template0", "template1"):
        raise DatabaseError(f"refusing to drop database {name!r}")
    conn = await asyncpg.connect(with_database(url, MAINTENANCE_DB))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
