"""The local node's JSON-RPC envelope and error codes, checked on the wire."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from solana.rpc.api import Client
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from test_localnet_kit import SOL, funded, raw_call, sign

from settlement.localnet import LocalSolana


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSolana]:
    with LocalSolana(tmp_path_factory.mktemp("localnet-rpc")) as n:
        yield n


def post(node: LocalSolana, content: bytes) -> httpx.Response:
    return httpx.post(
        node.url, content=content, headers={"Content-Type": "application/json"}, timeout=30
    )


def error_code(reply: dict) -> int:
    assert "result" not in reply, reply
    return reply["error"]["code"]


def test_malformed_json_is_a_parse_error(node: LocalSolana) -> None:
    reply = post(node, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert reply.status_code == 200
    assert reply.json() == {
        "jsonrpc": "2.0",
        "error": {"code": -32700, "message": "Parse error"},
        "id": None,
    }


def test_invalid_requests(node: LocalSolana) -> None:
    assert error_code(post(node, b'{"id": 1, "method": "getSlot"}').json()) == -32600
    assert error_code(post(node, b"[]").json()) == -32600
    assert error_code(post(node, b"42").json()) == -32600


def test_unknown_method(node: LocalSolana) -> None:
    reply = raw_call(node.url, "getEverything", [])
    assert error_code(reply) == -32601 and reply["id"] == 1


@pytest.mark.parametrize(
    ("method", "params", "needle"),
    [
        ("getBalance", [], "expected 1 to 2 parameters"),
        ("getBalance", ["not-a-key"], "not a valid public key"),
        ("getBalance", [str(Pubkey.default()), "finalized"], "must be a config object"),
        ("getAccountInfo", [str(Pubkey.default()), {"encoding": "hex"}], "unknown encoding"),
        ("getMultipleAccounts", [[str(Pubkey.default())] * 101], "max 100"),
        ("getSignatureStatuses", [["xyz"]], "not a valid signature"),
        ("sendTransaction", ["%%%", {"encoding": "base64"}], "invalid base64"),
        (
            "sendTransaction",
            [base64.b64encode(b"\x01junk").decode(), {"encoding": "base64"}],
            "failed to deserialize",
        ),
        ("sendTransaction", ["A" * 1700, {"encoding": "base64"}], "too large"),
        ("requestAirdrop", [str(Pubkey.default()), -5], "lamports must be an integer"),
        ("getMinimumBalanceForRentExemption", ["165"], "data length must be an integer"),
        ("getLatestBlockhash", [{"commitment": "eventually"}], "unknown commitment"),
        ("cx_setAccount", [str(Pubkey.default()), {"lamports": 1, "data": "AA=="}], "data must be"),
        ("cx_setAccount", [str(Pubkey.default()), {"lamports": 1, "owner": "x"}], "owner"),
        ("getTokenAccountBalance", [str(Pubkey.new_unique())], "could not find account"),
    ],
)
def test_bad_params_are_invalid_params(
    node: LocalSolana, method: str, params: list, needle: str
) -> None:
    reply = raw_call(node.url, method, params)
    assert error_code(reply) == -32602, reply
    assert needle in reply["error"]["message"]


def test_oversize_body_is_refused(node: LocalSolana) -> None:
    reply = post(node, b'{"jsonrpc": "2.0", "id": 1, "method": "getSlot", "x": "' + b"a" * 60_000)
    assert reply.status_code == 413


def test_batch_and_notifications(node: LocalSolana) -> None:
    body = (
        b'[{"jsonrpc":"2.0","id":"a","method":"getSlot"},'
        b'{"jsonrpc":"2.0","id":7,"method":"nope"},'
        b'{"jsonrpc":"2.0","method":"getSlot"},'
        b'{"jsonrpc":"2.0","id":8,"method":"getHealth"}]'
    )
    replies = post(node, body).json()
    assert [r["id"] for r in replies] == ["a", 7, 8]  # the notification gets no reply
    assert isinstance(replies[0]["result"], int)
    assert replies[1]["error"]["code"] == -32601
    assert replies[2]["result"] == "ok"
    assert post(node, b'{"jsonrpc":"2.0","method":"getSlot"}').content == b""


def test_health_endpoint(node: LocalSolana) -> None:
    assert httpx.get(node.url + "/health").text == "ok"


def test_bad_signature_is_refused_by_preflight(node: LocalSolana) -> None:
    client = Client(node.url, timeout=30)
    payer = funded(client, SOL)
    ix = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=1)
    )
    tx = sign(client, payer, [ix])
    forged = VersionedTransaction.populate(tx.message, [Signature.new_unique()])
    wire = base64.b64encode(bytes(forged)).decode()
    reply = raw_call(node.url, "sendTransaction", [wire, {"encoding": "base64"}])
    assert error_code(reply) == -32003
    reply = raw_call(
        node.url, "sendTransaction", [wire, {"encoding": "base64", "skipPreflight": True}]
    )
    assert reply["result"] == str(forged.signatures[0])  # accepted, then dropped
    statuses = raw_call(node.url, "getSignatureStatuses", [[reply["result"]]])
    assert statuses["result"]["value"] == [None]


def test_base58_send_and_shapes(node: LocalSolana) -> None:
    import based58

    client = Client(node.url, timeout=30)
    payer = funded(client, SOL)
    dest = Keypair().pubkey()
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=dest, lamports=SOL // 2))
    tx = sign(client, payer, [ix])
    wire = based58.b58encode(bytes(tx)).decode()
    sig = raw_call(node.url, "sendTransaction", [wire])["result"]  # base58 is the default
    assert sig == str(tx.signatures[0])
    status = raw_call(node.url, "getSignatureStatuses", [[sig]])["result"]["value"][0]
    assert set(status) == {"slot", "confirmations", "status", "err", "confirmationStatus"}
    info = raw_call(node.url, "getAccountInfo", [str(dest), {"encoding": "base64"}])["result"]
    assert set(info["context"]) == {"slot", "apiVersion"}
    assert info["value"]["lamports"] == SOL // 2 and info["value"]["data"] == ["", "base64"]
