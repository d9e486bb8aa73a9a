"""API keys: ``cx key create | list | disable | rotate``.

The database is found as ``cx db migrate`` finds it (``--url``, else ``CX_DATABASE_URL``,
else the local Postgres, else the embedded one under ``--data-dir``); it must be migrated.
An HMAC secret is printed once, on stdout, and never stored in the clear: it is sealed with
the configured key-encryption key (``CX_KEY_ENCRYPTION_KEY``), without which ``--hmac`` is
refused. An Ed25519 key is created from a public key file (32 raw bytes, their base64, or
PEM). Bad input (an unknown scope, a malformed key file or CIDR) exits 2 and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cx.settings import Settings
    from gateway.auth.keys import ApiKey, CreatedKey, KeyKind, KeyStore

HELP = "API keys: create, list, disable, rotate"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="database URL (default: CX_DATABASE_URL, local, embedded)")
    parser.add_argument("--data-dir", default="var/pg", help="embedded Postgres data directory")
    actions = parser.add_subparsers(dest="key_action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key for an account")
    create.add_argument("account", type=int, metavar="ACCOUNT")
    create.add_argument(
        "--scopes", required=True, help="comma separated: read,trade,withdraw,admin"
    )
    kind = create.add_mutually_exclusive_group(required=True)
    kind.add_argument("--ed25519-public-key", type=Path, metavar="FILE")
    kind.add_argument("--hmac", action="store_true", help="generate an HMAC secret (shown once)")
    create.add_argument("--allow-ip", action="append", default=[], metavar="CIDR")
    create.add_argument("--expires", metavar="ISO8601", help="expiry time (UTC if no offset)")
    listing = actions.add_parser("list", help="an account's keys (never secrets)")
    listing.add_argument("account", type=int, metavar="ACCOUNT")
    disable = actions.add_parser("disable", help="disable a key")
    disable.add_argument("key_id", metavar="KEY_ID")
    rotate = actions.add_parser("rotate", help="replace a key; the old one is disabled")
    rotate.add_argument("key_id", metavar="KEY_ID")
    new_kind = rotate.add_mutually_exclusive_group()
    new_kind.add_argument("--ed25519-public-key", type=Path, metavar="FILE")
    new_kind.add_argument("--hmac", action="store_true")


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"database": {"url": args.url}}


class _InputError(ValueError):
    """A bad argument, found before anything is written (exit code 2)."""


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _InputError(f"--expires {text!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _read_key_file(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _InputError(f"cannot read {path}: {exc.strerror}") from None


def _show(key: ApiKey) -> str:
    state = "disabled" if key.disabled_at else "active"
    parts = [
        key.key_id,
        key.kind,
        ",".join(s.value for s in key.scopes),
        state,
        f"created={key.created_at.isoformat()}",
    ]
    if key.allow_ips:
        parts.append("allow=" + ",".join(str(n) for n in key.allow_ips))
    if key.expires_at:
        parts.append(f"expires={key.expires_at.isoformat()}")
    if key.rotated_from:
        parts.append(f"rotated_from={key.rotated_from}")
    return "  ".join(parts)


def _print_created(created: CreatedKey) -> None:
    print(f"created {_show(created.key)}")
    if created.secret is not None:
        print(f"secret {created.secret}")
        print("(the secret is shown once: store it now)", file=sys.stderr)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    import asyncpg

    from gateway.auth.keys import KeyStore, KeyStoreError, parse_networks, parse_scopes
    from gateway.auth.secrets import SecretBox, SecretUnavailable
    from settlement.db import DatabaseError, redact, resolve_url

    url = resolve_url(args.data_dir, settings.database.configured_url())
    box = SecretBox(settings.gateway.master_key())

    async def act(store: KeyStore) -> None:
        action = args.key_action
        if action == "create":
            scopes = parse_scopes(args.scopes.split(","))
            nets = parse_networks(args.allow_ip)
            expires = _expiry(args.expires)
            public = _read_key_file(args.ed25519_public_key)
            if public is not None:
                created = await store.create_ed25519(
                    args.account, public, scopes, allow_ips=nets, expires_at=expires
                )
            else:
                created = await store.create_hmac(
                    args.account, scopes, allow_ips=nets, expires_at=expires
                )
            _print_created(created)
        elif action == "list":
            for key in await store.list(args.account):
                print(_show(key))
        elif action == "disable":
            print(f"disabled {_show(await store.disable(args.key_id))}")
        else:
            public = _read_key_file(args.ed25519_public_key)
            kind: KeyKind | None = (
                "ed25519" if public is not None else ("hmac" if args.hmac else None)
            )
            _print_created(await store.rotate(args.key_id, kind=kind, public_key=public))

    async def main() -> None:
        conn = await asyncpg.connect(url)
        try:
            await act(KeyStore(conn, box))
        finally:
            await conn.close()

    try:
        asyncio.run(main())
    except (_InputError, KeyStoreError, SecretUnavailable) as exc:
        print(f"cx key {args.key_action}: {exc}", file=sys.stderr)
        return 2
    except (DatabaseError, OSError, asyncpg.PostgresError) as exc:
        print(f"cx key {args.key_action}: {redact(url)}: {exc}", file=sys.stderr)
        return 1
    return 0
