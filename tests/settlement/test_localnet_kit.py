"""Helpers for the local Solana node tests: a client does what the exchange will do.

Everything goes through solana-py over JSON-RPC, exactly as against a real cluster.
(This module holds no tests; it is named so that only listed test files are added.)
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import spl.token.instructions as ti
from solana.rpc.api import Client
from solana.rpc.commitment import Confirmed
from solana.rpc.types import TxOpts
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.requests import IsBlockhashValid
from solders.rpc.responses import IsBlockhashValidResp
from solders.signature import Signature
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import VersionedTransaction
from spl.token.constants import MINT_LEN, TOKEN_PROGRAM_ID

SOL = 1_000_000_000


def sign(
    client: Client,
    payer: Keypair,
    ixs: Sequence[Instruction],
    signers: Sequence[Keypair] = (),
    blockhash: Hash | None = None,
) -> VersionedTransaction:
    """A signed v0 transaction with the node's latest blockhash (or the given one)."""
    if blockhash is None:
        blockhash = client.get_latest_blockhash().value.blockhash
    message = MessageV0.try_compile(payer.pubkey(), list(ixs), [], blockhash)
    return VersionedTransaction(message, [payer, *signers])


def send(
    client: Client,
    payer: Keypair,
    ixs: Sequence[Instruction],
    signers: Sequence[Keypair] = (),
    *,
    skip_preflight: bool = False,
) -> Signature:
    """Sign, send and wait until confirmed; returns the signature."""
    tx = sign(client, payer, ixs, signers)
    sig = client.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=skip_preflight)).value
    confirm(client, sig)
    return sig


def confirm(client: Client, sig: Signature) -> None:
    client.confirm_transaction(sig, Confirmed, sleep_seconds=0.02)


def funded(client: Client, lamports: int = 10 * SOL) -> Keypair:
    """A new keypair holding ``lamports`` from the faucet."""
    kp = Keypair()
    confirm(client, client.request_airdrop(kp.pubkey(), lamports).value)
    return kp


def create_mint(client: Client, payer: Keypair, decimals: int = 6) -> Pubkey:
    """A new SPL mint whose mint authority is ``payer``."""
    mint = Keypair()
    rent = client.get_minimum_balance_for_rent_exemption(MINT_LEN).value
    ixs = [
        create_account(
            CreateAccountParams(
                from_pubkey=payer.pubkey(),
                to_pubkey=mint.pubkey(),
                lamports=rent,
                space=MINT_LEN,
                owner=TOKEN_PROGRAM_ID,
            )
        ),
        ti.initialize_mint(
            ti.InitializeMintParams(
                decimals=decimals,
                program_id=TOKEN_PROGRAM_ID,
                mint=mint.pubkey(),
                mint_authority=payer.pubkey(),
            )
        ),
    ]
    send(client, payer, ixs, [mint])
    return mint.pubkey()


def create_ata(client: Client, payer: Keypair, owner: Pubkey, mint: Pubkey) -> Pubkey:
    """The associated token account of ``owner`` for ``mint``, created by ``payer``."""
    send(client, payer, [ti.create_associated_token_account(payer.pubkey(), owner, mint)])
    return ti.get_associated_token_address(owner, mint)


def mint_to(
    client: Client, payer: Keypair, mint: Pubkey, dest: Pubkey, amount: int, decimals: int = 6
) -> Signature:
    ix = ti.mint_to_checked(
        ti.MintToCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            mint=mint,
            dest=dest,
            mint_authority=payer.pubkey(),
            amount=amount,
            decimals=decimals,
        )
    )
    return send(client, payer, [ix])


def transfer_ix(
    source: Pubkey, dest: Pubkey, owner: Pubkey, mint: Pubkey, amount: int, decimals: int = 6
) -> Instruction:
    return ti.transfer_checked(
        ti.TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=source,
            mint=mint,
            dest=dest,
            owner=owner,
            amount=amount,
            decimals=decimals,
        )
    )


def is_blockhash_valid(client: Client, blockhash: Hash) -> bool:
    """isBlockhashValid through solana-py's provider (the Client has no wrapper for it)."""
    resp = client._provider.make_request(IsBlockhashValid(blockhash), IsBlockhashValidResp)
    return resp.value


def raw_call(url: str, method: str, params: object = None, id_: int = 1) -> dict:
    """One JSON-RPC call over plain HTTP, to check the wire format and error codes."""
    body: dict = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        body["params"] = params
    reply = httpx.post(url, json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def token_amount(client: Client, account: Pubkey) -> int:
    return int(client.get_token_account_balance(account).value.amount)
