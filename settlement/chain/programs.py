"""Instructions of the programs every cluster has (System, SPL Token, ATA, Memo), and the
addresses the exchange derives from its settlement authority.

No custom program can be deployed (DESIGN "On-chain settlement"), so every address is a
``create_with_seed`` derivation from the authority: vaults are SPL token accounts at
``authority + "v:<account>:<asset>"`` (owner program: SPL Token), and each settlement
transaction creates a marker account at ``authority + "batch:<id>"`` whose owner is a
per-deployment key. Creating an account that exists fails, so a transaction carrying its
marker can land once and only once, whatever is retried or re-signed.
"""

from __future__ import annotations

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import (
    ID as SYSTEM_PROGRAM_ID,
)
from solders.system_program import (
    CreateAccountWithSeedParams,
    create_account_with_seed,
)
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.token.constants import ACCOUNT_LEN, MINT_LEN, TOKEN_PROGRAM_ID
from spl.token.instructions import (
    InitializeAccountParams,
    InitializeMintParams,
    MintToCheckedParams,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_account,
    initialize_mint,
    mint_to_checked,
)

__all__ = [
    "ACCOUNT_LEN",
    "MEMO_PROGRAM_ID",
    "MINT_LEN",
    "SYSTEM_PROGRAM_ID",
    "TOKEN_PROGRAM_ID",
]

# Rent-exempt minimum balances under the default rent (3480 lamports/byte-year, 2 years,
# 128 bytes of account overhead), the same on every public cluster.
RENT_PER_BYTE = 3480 * 2
ACCOUNT_OVERHEAD = 128


def rent_exempt(space: int) -> int:
    return (ACCOUNT_OVERHEAD + space) * RENT_PER_BYTE


MAX_SEED_LEN = 32


def _seed(seed: str) -> str:
    if len(seed.encode()) > MAX_SEED_LEN:
        raise ValueError(f"seed {seed!r} is longer than {MAX_SEED_LEN} bytes")
    return seed


def vault_seed(kind: str, account: int | None, asset: int) -> str:
    """``v:<account>:<asset>`` for an account's vault, ``escrow:<asset>``, ``fee:<asset>``."""
    if kind == "account":
        return _seed(f"v:{account}:{asset}")
    if kind in ("escrow", "fee"):
        return _seed(f"{kind}:{asset}")
    raise ValueError(f"unknown vault kind {kind!r}")


def batch_marker_seed(batch_id: int, part: int) -> str:
    """``batch:<id>`` for a one-transaction batch's first part, ``batch:<id>:<k>`` after."""
    return _seed(f"batch:{batch_id}" if part == 0 else f"batch:{batch_id}:{part}")


def withdrawal_marker_seed(withdrawal_id: int) -> str:
    return _seed(f"wd:{withdrawal_id}")


def vault_address(authority: Pubkey, seed: str) -> Pubkey:
    return Pubkey.create_with_seed(authority, seed, TOKEN_PROGRAM_ID)


def marker_owner(authority: Pubkey, deployment: str) -> Pubkey:
    """The owner of this deployment's markers: a key nobody holds, unique per database, so
    that a fresh database on an old chain never mistakes an old marker for its own."""
    return Pubkey.create_with_seed(authority, _seed(f"cx-markers:{deployment}"), SYSTEM_PROGRAM_ID)


def marker_address(authority: Pubkey, seed: str, owner: Pubkey) -> Pubkey:
    return Pubkey.create_with_seed(authority, seed, owner)


def create_marker(authority: Pubkey, seed: str, owner: Pubkey) -> Instruction:
    """A zero-byte account at the seed address: fails if it exists (the batch landed)."""
    return create_account_with_seed(
        CreateAccountWithSeedParams(
            from_pubkey=authority,
            to_pubkey=marker_address(authority, seed, owner),
            base=authority,
            seed=seed,
            lamports=rent_exempt(0),
            space=0,
            owner=owner,
        )
    )


def create_vault(authority: Pubkey, seed: str, mint: Pubkey) -> list[Instruction]:
    """A token account for ``mint`` owned by the authority at the seed address."""
    address = vault_address(authority, seed)
    return [
        create_account_with_seed(
            CreateAccountWithSeedParams(
                from_pubkey=authority,
                to_pubkey=address,
                base=authority,
                seed=seed,
                lamports=rent_exempt(ACCOUNT_LEN),
                space=ACCOUNT_LEN,
                owner=TOKEN_PROGRAM_ID,
            )
        ),
        initialize_account(
            InitializeAccountParams(
                program_id=TOKEN_PROGRAM_ID, account=address, mint=mint, owner=authority
            )
        ),
    ]


def create_mint(authority: Pubkey, seed: str, decimals: int) -> tuple[Pubkey, list[Instruction]]:
    """A mint whose mint authority is the settlement authority (local runtime only)."""
    address = Pubkey.create_with_seed(authority, _seed(seed), TOKEN_PROGRAM_ID)
    return address, [
        create_account_with_seed(
            CreateAccountWithSeedParams(
                from_pubkey=authority,
                to_pubkey=address,
                base=authority,
                seed=seed,
                lamports=rent_exempt(MINT_LEN),
                space=MINT_LEN,
                owner=TOKEN_PROGRAM_ID,
            )
        ),
        initialize_mint(
            InitializeMintParams(
                decimals=decimals,
                program_id=TOKEN_PROGRAM_ID,
                mint=address,
                mint_authority=authority,
            )
        ),
    ]


def mint_to(authority: Pubkey, mint: Pubkey, dest: Pubkey, amount: int, decimals: int):
    return mint_to_checked(
        MintToCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            mint=mint,
            dest=dest,
            mint_authority=authority,
            amount=amount,
            decimals=decimals,
        )
    )


_TRANSFER_CHECKED = 12  # SPL Token instruction index


def transfer(
    authority: Pubkey, source: Pubkey, mint: Pubkey, dest: Pubkey, amount: int, decimals: int
) -> Instruction:
    """SPL Token ``TransferChecked``, built directly: the same bytes as
    ``spl.token.instructions.transfer_checked``, without its per-call layout cost (a batch
    builds thousands)."""
    if not 0 < amount < 1 << 64:
        raise ValueError(f"transfer amount {amount} outside 1..2^64-1")
    return Instruction(
        TOKEN_PROGRAM_ID,
        bytes([_TRANSFER_CHECKED]) + amount.to_bytes(8, "little") + bytes([decimals]),
        [
            AccountMeta(source, is_signer=False, is_writable=True),
            AccountMeta(mint, is_signer=False, is_writable=False),
            AccountMeta(dest, is_signer=False, is_writable=True),
            AccountMeta(authority, is_signer=True, is_writable=False),
        ],
    )


def memo(authority: Pubkey, text: str) -> Instruction:
    """A Memo signed by the authority, so the memo is attributable to the exchange."""
    return Instruction(
        program_id=MEMO_PROGRAM_ID,
        data=text.encode(),
        accounts=[AccountMeta(authority, is_signer=True, is_writable=False)],
    )


def wallet_token_account(owner: Pubkey, mint: Pubkey) -> Pubkey:
    return get_associated_token_address(owner, mint)


def create_wallet_token_account(payer: Pubkey, owner: Pubkey, mint: Pubkey) -> Instruction:
    return create_idempotent_associated_token_account(payer, owner, mint)


# SPL token account layout: mint (32) | owner (32) | amount (u64 LE) | ...
_AMOUNT = slice(64, 72)


def token_amount(data: bytes) -> int:
    """The balance in a token account's data."""
    if len(data) < ACCOUNT_LEN:
        raise ValueError(f"not a token account ({len(data)} bytes)")
    return int.from_bytes(data[_AMOUNT], "little")


def token_mint(data: bytes) -> Pubkey:
    return Pubkey.from_bytes(bytes(data[:32]))
