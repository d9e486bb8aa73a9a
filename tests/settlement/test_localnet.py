"""The local Solana node through solana-py, as the exchange will use it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from solana.rpc.api import Client
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.types import TxOpts
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.errors import (
    SendTransactionPreflightFailureMessage,
    UnsupportedTransactionVersionMessage,
)
from solders.system_program import (
    CreateLookupTableParams,
    ExtendLookupTableParams,
    TransferParams,
    advance_nonce_account,
    create_lookup_table,
    create_nonce_account,
    extend_lookup_table,
    transfer,
)
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionConfirmationStatus
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import MemoParams, create_memo
from test_localnet_kit import (
    SOL,
    confirm,
    create_ata,
    create_mint,
    funded,
    is_blockhash_valid,
    mint_to,
    raw_call,
    send,
    sign,
    token_amount,
    transfer_ix,
)

from settlement.localnet import LocalSolana


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSolana]:
    with LocalSolana(tmp_path_factory.mktemp("localnet")) as n:
        yield n


@pytest.fixture(scope="module")
def client(node: LocalSolana) -> Client:
    return Client(node.url, timeout=30)


def rpc_error(exc: RPCException) -> tuple[type, str, Any]:
    """(kind, message, data) of the JSON-RPC error solana-py raised; solders maps each
    error code to its own type (-32002 is SendTransactionPreflightFailureMessage)."""
    err = exc.args[0]
    return type(err), getattr(err, "message", ""), getattr(err, "data", None)


def test_airdrop_credits_the_balance_once_confirmed(client: Client) -> None:
    kp = funded(client, 3 * SOL)
    assert client.get_balance(kp.pubkey()).value == 3 * SOL
    acc = client.get_account_info(kp.pubkey()).value
    assert acc is not None and acc.lamports == 3 * SOL and acc.owner == Pubkey.default()


def test_token_mint_transfer_checked_and_balances(client: Client) -> None:
    payer = funded(client)
    alice, bob = funded(client, SOL), funded(client, SOL)
    mint = create_mint(client, payer, decimals=6)
    a = create_ata(client, payer, alice.pubkey(), mint)
    b = create_ata(client, payer, bob.pubkey(), mint)
    mint_to(client, payer, mint, a, 1_000_000_000)
    sig = send(client, payer, [transfer_ix(a, b, alice.pubkey(), mint, 250_500_000)], [alice])

    assert token_amount(client, a) == 749_500_000
    assert token_amount(client, b) == 250_500_000
    bal = client.get_token_account_balance(b).value
    assert (bal.decimals, bal.ui_amount_string) == (6, "250.5")
    supply = client.get_token_supply(mint).value
    assert supply.amount == "1000000000"

    parsed = client.get_multiple_accounts_json_parsed([a, b]).value
    infos = [acc.data.parsed["info"] for acc in parsed]
    assert [i["tokenAmount"]["amount"] for i in infos] == ["749500000", "250500000"]
    assert infos[1]["owner"] == str(bob.pubkey()) and infos[1]["mint"] == str(mint)

    tx = client.get_transaction(sig, "json", Confirmed, max_supported_transaction_version=0)
    meta = tx.value.transaction.meta
    assert meta.err is None
    post = {str(t.owner): t.ui_token_amount.amount for t in meta.post_token_balances}
    assert post == {str(alice.pubkey()): "749500000", str(bob.pubkey()): "250500000"}


def test_memo_is_logged(client: Client) -> None:
    payer = funded(client)
    memo = create_memo(
        MemoParams(program_id=MEMO_PROGRAM_ID, signer=payer.pubkey(), message=b"batch:42 head:ab")
    )
    sig = send(client, payer, [memo])
    tx = client.get_transaction(sig, commitment=Confirmed, max_supported_transaction_version=0)
    assert tx.value.slot == client.get_signature_statuses([sig]).value[0].slot
    logs = tx.value.transaction.meta.log_messages
    assert any('Memo (len 16): "batch:42 head:ab"' in line for line in logs), logs


def test_duplicate_send_is_not_applied_twice(client: Client) -> None:
    payer, dest = funded(client), funded(client, SOL)
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=dest.pubkey(), lamports=5))
    tx = sign(client, payer, [ix])
    sig = client.send_raw_transaction(bytes(tx)).value
    confirm(client, sig)
    with pytest.raises(RPCException) as info:
        client.send_raw_transaction(bytes(tx))
    code, message, data = rpc_error(info.value)
    assert code is SendTransactionPreflightFailureMessage and "already been processed" in message
    assert data.err is not None and "AlreadyProcessed" in str(data.err)
    again = client.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=True)).value
    assert again == sig
    client.get_latest_blockhash()  # another request, so the resend had time to do harm
    assert client.get_balance(dest.pubkey()).value == SOL + 5


def test_expired_blockhash_is_refused(tmp_path: Path) -> None:
    # No idle blocks on this node: only transactions and advance_blocks close blocks.
    with LocalSolana(tmp_path, block_time=3600) as node:
        _expired_blockhash_is_refused(node, Client(node.url, timeout=30))


def _expired_blockhash_is_refused(node: LocalSolana, client: Client) -> None:
    payer, dest = funded(client), funded(client, SOL)
    latest = client.get_latest_blockhash().value
    height = client.get_block_height().value
    assert latest.last_valid_block_height == height + 150
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=dest.pubkey(), lamports=7))
    tx = sign(client, payer, [ix], blockhash=latest.blockhash)

    node.advance_blocks(150)
    assert is_blockhash_valid(client, latest.blockhash) is True  # last valid height
    node.advance_blocks(1)
    assert is_blockhash_valid(client, latest.blockhash) is False
    assert client.get_block_height().value > latest.last_valid_block_height

    with pytest.raises(RPCException) as info:
        client.send_raw_transaction(bytes(tx))
    code, message, data = rpc_error(info.value)
    assert code is SendTransactionPreflightFailureMessage and "Blockhash not found" in message
    assert "BlockhashNotFound" in str(data.err)
    sig = client.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=True)).value
    assert client.get_signature_statuses([sig]).value == [None]
    assert client.get_balance(dest.pubkey()).value == SOL


def test_failed_transaction_preflight_refuses_skip_preflight_lands(client: Client) -> None:
    payer = funded(client)
    alice, bob = funded(client, SOL), funded(client, SOL)
    mint = create_mint(client, payer)
    a = create_ata(client, payer, alice.pubkey(), mint)
    b = create_ata(client, payer, bob.pubkey(), mint)
    mint_to(client, payer, mint, a, 100)
    too_much = transfer_ix(a, b, alice.pubkey(), mint, 101)
    before = client.get_balance(payer.pubkey()).value

    with pytest.raises(RPCException) as info:
        client.send_raw_transaction(bytes(sign(client, payer, [too_much], [alice])))
    code, message, data = rpc_error(info.value)
    assert code is SendTransactionPreflightFailureMessage
    assert message.endswith("Error processing Instruction 0: custom program error: 0x1")
    assert any("insufficient funds" in line for line in data.logs)
    assert client.get_balance(payer.pubkey()).value == before  # preflight charged nothing

    tx = sign(client, payer, [too_much], [alice])
    sig = client.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=True)).value
    confirm(client, sig)
    status = client.get_signature_statuses([sig]).value[0]
    assert status.err is not None and "InstructionError" in str(status.err)
    assert client.get_balance(payer.pubkey()).value == before - 10_000  # two signatures
    assert token_amount(client, a) == 100 and token_amount(client, b) == 0


def test_statuses_reach_finalized(node: LocalSolana, client: Client) -> None:
    kp = funded(client, SOL)
    memo = create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=kp.pubkey(), message=b"x"))
    sig = send(client, kp, [memo])
    status = client.get_signature_statuses([sig]).value[0]
    assert status.confirmation_status == TransactionConfirmationStatus.Confirmed
    node.advance_blocks(32)
    status = client.get_signature_statuses([sig]).value[0]
    assert status.confirmation_status == TransactionConfirmationStatus.Finalized
    assert status.confirmations is None


def test_cx_set_account_then_get_account_info(node: LocalSolana, client: Client) -> None:
    key, owner = Pubkey.new_unique(), Pubkey.new_unique()
    params = [
        str(key),
        {
            "lamports": 5_000_000,
            "data": [base64.b64encode(b"pyth-price").decode(), "base64"],
            "owner": str(owner),
            "executable": False,
        },
    ]
    reply = raw_call(node.url, "cx_setAccount", params)
    assert reply == {"jsonrpc": "2.0", "result": None, "id": 1}
    acc = client.get_account_info(key).value
    assert (acc.lamports, bytes(acc.data), acc.owner) == (5_000_000, b"pyth-price", owner)


def test_v0_transaction_with_lookup_table(client: Client) -> None:
    payer = funded(client)
    owner = funded(client, SOL)
    mint = create_mint(client, payer)
    src = create_ata(client, payer, owner.pubkey(), mint)
    mint_to(client, payer, mint, src, 1_000)
    dests = [create_ata(client, payer, Pubkey.new_unique(), mint) for _ in range(3)]

    create_ix, table = create_lookup_table(
        CreateLookupTableParams(
            authority_address=payer.pubkey(),
            payer_address=payer.pubkey(),
            recent_slot=client.get_slot().value - 1,
        )
    )
    extend_ix = extend_lookup_table(
        ExtendLookupTableParams(
            payer_address=payer.pubkey(),
            lookup_table_address=table,
            authority_address=payer.pubkey(),
            new_addresses=[src, mint, *dests],
        )
    )
    send(client, payer, [create_ix, extend_ix])
    client.get_latest_blockhash()  # the table is usable from the next slot on
    lookup = AddressLookupTableAccount(table, [src, mint, *dests])
    ixs = [transfer_ix(src, d, owner.pubkey(), mint, 10 + i) for i, d in enumerate(dests)]
    blockhash = client.get_latest_blockhash().value.blockhash
    message = MessageV0.try_compile(payer.pubkey(), ixs, [lookup], blockhash)
    assert len(message.address_table_lookups) == 1
    tx = VersionedTransaction(message, [payer, owner])
    sig = client.send_raw_transaction(bytes(tx)).value
    confirm(client, sig)

    assert [token_amount(client, d) for d in dests] == [10, 11, 12]
    got = client.get_transaction(sig, commitment=Confirmed, max_supported_transaction_version=0)
    loaded = got.value.transaction.meta.loaded_addresses
    assert set(loaded.writable) == {src, *dests} and list(loaded.readonly) == [mint]
    with pytest.raises(RPCException) as info:
        client.get_transaction(sig, commitment=Confirmed)  # v0 needs the version opt-in
    assert rpc_error(info.value)[0] is UnsupportedTransactionVersionMessage


def test_simulate_changes_nothing(client: Client) -> None:
    payer, dest = funded(client), funded(client, SOL)
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=dest.pubkey(), lamports=99))
    tx = sign(client, payer, [ix])
    sim = client.simulate_transaction(tx).value
    assert sim.err is None and any("success" in line for line in sim.logs)
    assert client.get_balance(dest.pubkey()).value == SOL
    # The simulated transaction can still be sent: simulation recorded nothing.
    confirm(client, client.send_raw_transaction(bytes(tx)).value)
    assert client.get_balance(dest.pubkey()).value == SOL + 99


def test_fee_for_message_and_epoch_info(client: Client) -> None:
    payer, dest = funded(client), funded(client, SOL)
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=dest.pubkey(), lamports=1))
    tx = sign(client, payer, [ix])
    assert client.get_fee_for_message(tx.message).value == 5000
    info = client.get_epoch_info().value
    assert info.block_height == client.get_block_height().value
    assert client.get_minimum_balance_for_rent_exemption(165).value == 2_039_280


async def test_async_client(node: LocalSolana) -> None:
    async with AsyncClient(node.url, timeout=30) as client:
        kp = Keypair()
        sig = (await client.request_airdrop(kp.pubkey(), 2 * SOL)).value
        await client.confirm_transaction(sig, Confirmed, sleep_seconds=0.02)
        assert (await client.get_balance(kp.pubkey())).value == 2 * SOL
        latest = (await client.get_latest_blockhash()).value
        assert latest.last_valid_block_height >= (await client.get_block_height()).value


def test_durable_nonce_outlives_blockhashes(node: LocalSolana, client: Client) -> None:
    payer = funded(client)
    nonce = Keypair()
    send(
        client,
        payer,
        list(create_nonce_account(payer.pubkey(), nonce.pubkey(), payer.pubkey(), SOL // 100)),
        [nonce],
    )
    stored = Hash(bytes(client.get_account_info(nonce.pubkey()).value.data)[40:72])
    dest = Keypair().pubkey()
    ixs = [
        advance_nonce_account(
            {"nonce_pubkey": nonce.pubkey(), "authorized_pubkey": payer.pubkey()}
        ),
        transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=dest, lamports=SOL)),
    ]
    tx = VersionedTransaction(MessageV0.try_compile(payer.pubkey(), ixs, [], stored), [payer])
    node.advance_blocks(200)
    confirm(client, client.send_raw_transaction(bytes(tx)).value)
    assert client.get_balance(dest).value == SOL
    with pytest.raises(RPCException):  # the nonce has advanced: the same bytes cannot land again
        client.send_raw_transaction(bytes(tx))
