"""Chain state survives restarts: clean stops, kill -9, and a torn change log."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from solana.rpc.api import Client
from solders.system_program import TransferParams, transfer
from test_localnet_kit import (
    SOL,
    confirm,
    create_ata,
    create_mint,
    funded,
    is_blockhash_valid,
    mint_to,
    sign,
    token_amount,
)

from settlement.localnet import LocalSolana, LocalSolanaProcess
from settlement.localnet.store import WAL, ChainStore


def test_restart_keeps_mints_accounts_balances_and_history(tmp_path: Path) -> None:
    with LocalSolana(tmp_path) as node:
        client = Client(node.url, timeout=30)
        payer, alice = funded(client), funded(client, SOL)
        mint = create_mint(client, payer, decimals=6)
        ata = create_ata(client, payer, alice.pubkey(), mint)
        sig = mint_to(client, payer, mint, ata, 123_456_789)
        genesis = client.get_genesis_hash().value
        height = client.get_block_height().value
        dest = funded(client, SOL)
        ix = transfer(
            TransferParams(from_pubkey=payer.pubkey(), to_pubkey=dest.pubkey(), lamports=3)
        )
        signed_before_stop = sign(client, payer, [ix])
        payer_lamports = client.get_balance(payer.pubkey()).value

    with LocalSolana(tmp_path) as node:
        client = Client(node.url, timeout=30)
        assert client.get_genesis_hash().value == genesis
        assert client.get_block_height().value >= height
        assert token_amount(client, ata) == 123_456_789
        assert client.get_token_supply(mint).value.amount == "123456789"
        assert client.get_balance(payer.pubkey()).value == payer_lamports
        status = client.get_signature_statuses([sig], search_transaction_history=True).value[0]
        assert status is not None and status.err is None
        # A clean restart keeps the recent blockhashes: a transaction signed before it lands.
        confirm(client, client.send_raw_transaction(bytes(signed_before_stop)).value)
        assert client.get_balance(dest.pubkey()).value == SOL + 3


def test_kill_9_keeps_everything_confirmed(tmp_path: Path) -> None:
    node = LocalSolanaProcess(tmp_path)
    client = Client(node.start(), timeout=30)
    try:
        payer, alice = funded(client), funded(client, SOL)
        mint = create_mint(client, payer)
        ata = create_ata(client, payer, alice.pubkey(), mint)
        sig = mint_to(client, payer, mint, ata, 777)  # returns once confirmed
        latest = client.get_latest_blockhash().value
    finally:
        os.kill(node.pid, signal.SIGKILL)
        node.stop()
    with open(tmp_path / WAL, "ab") as f:
        f.write(b"\x40\x00\x00\x00torn")  # a record cut short by the crash

    with LocalSolana(tmp_path) as node:
        client = Client(node.url, timeout=30)
        assert token_amount(client, ata) == 777
        status = client.get_signature_statuses([sig], search_transaction_history=True).value[0]
        assert status is not None and status.err is None
        # Blockhashes handed out before the crash may be lost: they are all expired now.
        assert not is_blockhash_valid(client, latest.blockhash)
        assert client.get_block_height().value > latest.last_valid_block_height
        # And the chain goes on.
        funded(client, SOL)


def test_store_replays_records_after_the_snapshot_and_drops_a_torn_tail(tmp_path: Path) -> None:
    store = ChainStore(tmp_path)
    base = {"slot": 1, "height": 1, "accounts": {}, "statuses": [], "details": {}}
    store.write_snapshot({**base, "genesis": ""}, clean=False)
    store.append({**base, "slot": 2, "height": 2})
    store.append({**base, "slot": 3, "height": 3})
    store.close()
    with open(tmp_path / WAL, "ab") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00abc")

    again = ChainStore(tmp_path)
    snapshot, records = again.load()
    assert snapshot is not None and snapshot["clean"] is False
    assert [r["slot"] for r in records] == [2, 3]
    again.append({**base, "slot": 4, "height": 4})  # lands after the last good record
    again.close()
    assert [r["slot"] for r in ChainStore(tmp_path).load()[1]] == [2, 3, 4]


def test_process_node_advances_blocks_and_stops_cleanly(tmp_path: Path) -> None:
    with LocalSolanaProcess(tmp_path) as node:
        client = Client(node.url, timeout=30)
        kp = funded(client, SOL)
        latest = client.get_latest_blockhash().value
        node.advance_blocks(151)
        assert not is_blockhash_valid(client, latest.blockhash)
        height = client.get_block_height().value
    with LocalSolana(tmp_path) as again:
        client = Client(again.url, timeout=30)
        assert client.get_balance(kp.pubkey()).value == SOL
        assert height <= client.get_block_height().value < height + 150  # clean: no skip
