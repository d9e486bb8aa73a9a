"""The JSON-RPC methods of the local node, with a real node's params, results and errors.

One method per function: each takes the positional ``params`` list and returns the JSON
``result`` (or raises RpcError). ``cx_setAccount`` is the one local-only extension.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable
from typing import Any

from solders.account import Account
from solders.message import MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from . import params as p
from .blocks import STATUS_CACHE_SLOTS
from .chain import Chain, Execution
from .encoding import check_account_encoding, check_data_slice, encode_account
from .errors import (
    MIN_CONTEXT_SLOT_NOT_REACHED,
    SEND_TRANSACTION_PREFLIGHT_FAILURE,
    TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
    UNSUPPORTED_TRANSACTION_VERSION,
    RpcError,
    invalid_params,
)
from .token import parse_mint, parse_token_account, ui_token_amount
from .txmeta import b58, describe_err, fee_for_message, ui_transaction

SOLANA_CORE_VERSION = "2.2.1"
FEATURE_SET = 3294202862
MAX_MULTIPLE_ACCOUNTS = 100
MAX_SIGNATURE_STATUSES = 256
MAX_DATA_LEN = 10 * 1024 * 1024
_COMMITMENTS = ("processed", "confirmed", "finalized", "recent", "single", "root", "max")
_RANK = {"processed": 0, "confirmed": 1, "finalized": 2}

_TX_TYPE = "solana_sdk::transaction::versioned::VersionedTransaction"

Method = Callable[[list[Any]], Any]


class Methods:
    """The method table over one Chain; ``on_change`` is called after every state change,
    ``advance(n)`` closes n blocks (the node's block production owns that)."""

    def __init__(
        self,
        chain: Chain,
        on_change: Callable[[], None],
        advance: Callable[[int], None] | None = None,
    ) -> None:
        self.chain = chain
        self.on_change = on_change
        self.advance = advance
        self.table: dict[str, Method] = {
            "getLatestBlockhash": self.get_latest_blockhash,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
            "getSignatureStatuses": self.get_signature_statuses,
            "getTransaction": self.get_transaction,
            "getAccountInfo": self.get_account_info,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getTokenAccountBalance": self.get_token_account_balance,
            "getTokenSupply": self.get_token_supply,
            "getTokenAccountsByOwner": self.get_token_accounts_by_owner,
            "getProgramAccounts": self.get_program_accounts,
            "getBalance": self.get_balance,
            "getBlockHeight": self.get_block_height,
            "getSlot": self.get_slot,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance_for_rent_exemption,
            "getHealth": self.get_health,
            "getVersion": self.get_version,
            "getGenesisHash": self.get_genesis_hash,
            "getIdentity": self.get_identity,
            "requestAirdrop": self.request_airdrop,
            "isBlockhashValid": self.is_blockhash_valid,
            "getFeeForMessage": self.get_fee_for_message,
            "getEpochInfo": self.get_epoch_info,
            "getTransactionCount": self.get_transaction_count,
            "getRecentPrioritizationFees": self.get_recent_prioritization_fees,
            "getFirstAvailableBlock": self.get_first_available_block,
            "cx_setAccount": self.cx_set_account,
            "cx_advanceBlocks": self.cx_advance_blocks,
        }

    # ---------------------------------------------------------------- helpers
    def _context(self) -> dict[str, Any]:
        return {"slot": self.chain.slot, "apiVersion": SOLANA_CORE_VERSION}

    def _with_context(self, value: Any) -> dict[str, Any]:
        return {"context": self._context(), "value": value}

    def _check_config(self, config: dict[str, Any]) -> None:
        commitment = config.get("commitment")
        if commitment is not None and commitment not in _COMMITMENTS:
            raise invalid_params(f"Invalid params: unknown commitment {commitment!r}")
        min_slot = config.get("minContextSlot")
        if min_slot is not None:
            p.uint(min_slot, "minContextSlot")
            if min_slot > self.chain.slot:
                raise RpcError(
                    MIN_CONTEXT_SLOT_NOT_REACHED,
                    "Minimum context slot has not been reached",
                    {"contextSlot": self.chain.slot},
                )

    def _config(self, params: list[Any], index: int) -> dict[str, Any]:
        config = p.config_at(params, index)
        self._check_config(config)
        return config

    def _account_json(
        self, key: Pubkey, encoding: str, data_slice: tuple[int, int] | None
    ) -> dict[str, Any] | None:
        acc = self.chain.get_account(key)
        if acc is None:
            return None
        return encode_account(acc, encoding, data_slice, self.chain.mint_decimals)

    def _decode_transaction(self, params: list[Any], config: dict[str, Any]) -> tuple:
        encoding = config.get("encoding") or "base58"
        raw = p.decode_wire(params[0], encoding, _TX_TYPE)
        try:
            tx = VersionedTransaction.from_bytes(raw)
            tx.sanitize()
        except Exception as exc:  # solders raises its own error types
            raise invalid_params(f"failed to deserialize {_TX_TYPE}: {exc}") from None
        return tx, raw

    def _token_balances(self, rows: list[list[Any]]) -> list[dict[str, Any]]:
        out = []
        for index, mint, owner, program, amount in rows:
            decimals = self.chain.mint_decimals(Pubkey.from_string(mint))
            if decimals is not None:
                out.append(
                    {
                        "accountIndex": index,
                        "mint": mint,
                        "uiTokenAmount": ui_token_amount(amount, decimals),
                        "owner": owner,
                        "programId": program,
                    }
                )
        return out

    @staticmethod
    def _simulation_value(ex: Execution) -> dict[str, Any]:
        return {
            "err": ex.err,
            "logs": ex.logs,
            "accounts": None,
            "unitsConsumed": ex.units,
            "returnData": ex.return_data,
            "innerInstructions": None,
            "replacementBlockhash": None,
        }

    # -------------------------------------------------------------- blockhash
    def get_latest_blockhash(self, params: list[Any]) -> Any:
        self._config(p.positional(params, 0, 1), 0)
        blocks = self.chain.blocks
        return self._with_context(
            {
                "blockhash": str(blocks.blockhash),
                "lastValidBlockHeight": blocks.last_valid_block_height,
            }
        )

    def is_blockhash_valid(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        self._config(params, 1)
        return self._with_context(self.chain.blocks.is_valid(p.blockhash_bytes(params[0])))

    def get_fee_for_message(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        self._config(params, 1)
        raw = p.decode_wire(params[0], "base64", "solana_sdk::message::versioned::VersionedMessage")
        try:
            message = from_bytes_versioned(raw)
        except Exception:  # solders raises its own error types
            raise invalid_params("Invalid params: failed to deserialize the message") from None
        if not self.chain.blocks.is_valid(bytes(message.recent_blockhash)):
            return self._with_context(None)
        return self._with_context(fee_for_message(message))

    # ----------------------------------------------------------- transactions
    def send_transaction(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        config = self._config(params, 1)
        tx, raw = self._decode_transaction(params, config)
        preflight = not config.get("skipPreflight", False)
        ex = self.chain.process(tx, raw, preflight)
        if ex.landed:
            self.on_change()
            return ex.signature
        if not preflight:
            return ex.signature  # dropped, exactly as a cluster drops it
        if ex.stage == "sigverify":
            raise RpcError(
                TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
                "Transaction signature verification failure",
            )
        raise RpcError(
            SEND_TRANSACTION_PREFLIGHT_FAILURE,
            f"Transaction simulation failed: {describe_err(ex.err)}",
            self._simulation_value(ex),
        )

    def simulate_transaction(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        config = self._config(params, 1)
        tx, _ = self._decode_transaction(params, config)
        sig_verify = bool(config.get("sigVerify", False))
        replace = bool(config.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise invalid_params("sigVerify may not be used with replaceRecentBlockhash")
        if sig_verify and not all(tx.verify_with_results()):
            raise RpcError(
                TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
                "Transaction signature verification failure",
            )
        wanted = config.get("accounts")
        addresses: list[Pubkey] = []
        encoding = "base64"
        if wanted is not None:
            if not isinstance(wanted, dict):
                raise invalid_params("Invalid params: accounts must be a config object")
            keys = p.string_list(wanted.get("addresses", []), "accounts.addresses", 100)
            addresses = [p.pubkey(k, "address") for k in keys]
            encoding = check_account_encoding(wanted, "base64")
            if encoding in ("binary", "base58"):
                raise invalid_params("Invalid params: base58 encoding is not supported here")
        ex, post = self.chain.simulate(tx, replace)
        value = self._simulation_value(ex)
        if wanted is not None and post is not None:
            post_map = dict(post)
            value["accounts"] = [
                None
                if (acc := post_map.get(k) or self.chain.get_account(k)) is None or not acc.lamports
                else encode_account(acc, encoding, None, self.chain.mint_decimals)
                for k in addresses
            ]
        if config.get("innerInstructions"):
            value["innerInstructions"] = ex.inner
        if replace:
            blocks = self.chain.blocks
            value["replacementBlockhash"] = {
                "blockhash": str(blocks.blockhash),
                "lastValidBlockHeight": blocks.last_valid_block_height,
            }
        return self._with_context(value)

    def get_signature_statuses(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        config = p.config_at(params, 1)
        sigs = p.string_list(params[0], "signatures", MAX_SIGNATURE_STATUSES)
        search_history = bool(config.get("searchTransactionHistory", False))
        out: list[Any] = []
        for s in sigs:
            p.signature(s)
            entry = self.chain.statuses.get(s)
            if entry is None:
                out.append(None)
                continue
            slot, err = entry
            if not search_history and self.chain.slot - slot > STATUS_CACHE_SLOTS:
                out.append(None)  # outside the status cache, as on a real node
                continue
            confirmations, status = self.chain.confirmation(slot)
            out.append(
                {
                    "slot": slot,
                    "confirmations": confirmations,
                    "status": {"Ok": None} if err is None else {"Err": err},
                    "err": err,
                    "confirmationStatus": status,
                }
            )
        return self._with_context(out)

    def get_transaction(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        second = params[1] if len(params) > 1 else None
        # A bare string is the deprecated positional encoding.
        config = {"encoding": second} if isinstance(second, str) else p.config_at(params, 1)
        self._check_config(config)
        sig = params[0]
        p.signature(sig)
        commitment = config.get("commitment") or "finalized"
        if commitment == "processed":
            raise invalid_params("Method does not support commitment below `confirmed`")
        encoding = config.get("encoding") or "json"
        if encoding not in ("json", "jsonParsed", "base58", "base64"):
            raise invalid_params(f"Invalid params: unknown encoding {encoding!r}")
        detail = self.chain.details.get(sig)
        if detail is None:
            return None
        _, status = self.chain.confirmation(detail["slot"])
        if _RANK[status] < _RANK.get(commitment, 2):
            return None
        raw = base64.b64decode(detail["raw"])
        tx = VersionedTransaction.from_bytes(raw)
        is_v0 = isinstance(tx.message, MessageV0)
        max_version = config.get("maxSupportedTransactionVersion")
        if is_v0 and max_version is None:
            raise RpcError(
                UNSUPPORTED_TRANSACTION_VERSION,
                "Transaction version (0) is not supported by the requesting client. "
                "Please try the request again with the following configuration parameter: "
                '"maxSupportedTransactionVersion": 0',
            )
        if encoding == "base64":
            ui_tx: Any = [detail["raw"], "base64"]
        elif encoding == "base58":
            ui_tx = [b58(raw), "base58"]
        else:
            ui_tx = ui_transaction(tx)
        err = detail["err"]
        meta: dict[str, Any] = {
            "err": err,
            "status": {"Ok": None} if err is None else {"Err": err},
            "fee": detail["fee"],
            "preBalances": detail["pre"],
            "postBalances": detail["post"],
            "innerInstructions": detail["inner"] or [],
            "logMessages": detail["logs"],
            "preTokenBalances": self._token_balances(detail["preToken"]),
            "postTokenBalances": self._token_balances(detail["postToken"]),
            "rewards": [],
            "computeUnitsConsumed": detail["units"],
        }
        if detail["loaded"] is not None:
            meta["loadedAddresses"] = detail["loaded"]
        if detail["returnData"] is not None:
            meta["returnData"] = detail["returnData"]
        result: dict[str, Any] = {
            "slot": detail["slot"],
            "transaction": ui_tx,
            "meta": meta,
            "blockTime": detail["blockTime"],
        }
        if max_version is not None:
            result["version"] = 0 if is_v0 else "legacy"
        return result

    # --------------------------------------------------------------- accounts
    def get_account_info(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        config = self._config(params, 1)
        key = p.pubkey(params[0])
        encoding = check_account_encoding(config)
        return self._with_context(self._account_json(key, encoding, check_data_slice(config)))

    def get_multiple_accounts(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        config = self._config(params, 1)
        keys = [p.pubkey(k) for k in p.string_list(params[0], "pubkeys", MAX_MULTIPLE_ACCOUNTS)]
        encoding = check_account_encoding(config, "base64")
        data_slice = check_data_slice(config)
        return self._with_context([self._account_json(k, encoding, data_slice) for k in keys])

    def get_balance(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        self._config(params, 1)
        acc = self.chain.get_account(p.pubkey(params[0]))
        return self._with_context(0 if acc is None else acc.lamports)

    def get_token_account_balance(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        self._config(params, 1)
        acc = self.chain.get_account(p.pubkey(params[0]))
        if acc is None:
            raise invalid_params("Invalid param: could not find account")
        token = parse_token_account(acc.owner, bytes(acc.data))
        if token is None:
            raise invalid_params("Invalid param: not a Token account")
        decimals = self.chain.mint_decimals(token.mint)
        if decimals is None:
            raise invalid_params("Invalid param: could not find mint")
        return self._with_context(ui_token_amount(token.amount, decimals))

    def get_token_supply(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        self._config(params, 1)
        acc = self.chain.get_account(p.pubkey(params[0]))
        mint = None if acc is None else parse_mint(acc.owner, bytes(acc.data))
        if mint is None:
            raise invalid_params("Invalid param: not a Token mint")
        return self._with_context(ui_token_amount(mint.supply, mint.decimals))

    def get_token_accounts_by_owner(self, params: list[Any]) -> Any:
        params = p.positional(params, 2, 3)
        config = self._config(params, 2)
        owner = p.pubkey(params[0], "owner")
        want = params[1]
        if not isinstance(want, dict) or len(want) != 1 or not {"mint", "programId"} >= set(want):
            raise invalid_params('Invalid params: expected {"mint": ...} or {"programId": ...}')
        mint = p.pubkey(want["mint"], "mint") if "mint" in want else None
        program = p.pubkey(want["programId"], "programId") if "programId" in want else None
        encoding = check_account_encoding(config, "binary")
        data_slice = check_data_slice(config)
        out = []
        for key in sorted(self.chain.known, key=str):
            acc = self.chain.get_account(key)
            if acc is None or (program is not None and acc.owner != program):
                continue
            token = parse_token_account(acc.owner, bytes(acc.data))
            if token is None or token.owner != owner or (mint is not None and token.mint != mint):
                continue
            out.append(
                {
                    "pubkey": str(key),
                    "account": encode_account(acc, encoding, data_slice, self.chain.mint_decimals),
                }
            )
        return self._with_context(out)

    def get_program_accounts(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        config = self._config(params, 1)
        program = p.pubkey(params[0], "program id")
        encoding = check_account_encoding(config, "binary")
        data_slice = check_data_slice(config)
        filters = _account_filters(config.get("filters"))
        out = []
        for key in sorted(self.chain.known, key=str):
            acc = self.chain.get_account(key)
            if acc is None or acc.owner != program:
                continue
            data = bytes(acc.data)
            if all(f(data) for f in filters):
                out.append(
                    {
                        "pubkey": str(key),
                        "account": encode_account(
                            acc, encoding, data_slice, self.chain.mint_decimals
                        ),
                    }
                )
        return self._with_context(out) if config.get("withContext") else out

    def get_minimum_balance_for_rent_exemption(self, params: list[Any]) -> Any:
        params = p.positional(params, 1, 2)
        self._config(params, 1)
        size = p.uint(params[0], "data length", MAX_DATA_LEN)
        return self.chain.svm.minimum_balance_for_rent_exemption(size)

    # ------------------------------------------------------------ cluster info
    def get_block_height(self, params: list[Any]) -> Any:
        self._config(p.positional(params, 0, 1), 0)
        return self.chain.height

    def get_slot(self, params: list[Any]) -> Any:
        self._config(p.positional(params, 0, 1), 0)
        return self.chain.slot

    def get_health(self, params: list[Any]) -> Any:
        p.positional(params, 0, 0)
        return "ok"

    def get_version(self, params: list[Any]) -> Any:
        p.positional(params, 0, 0)
        return {"solana-core": SOLANA_CORE_VERSION, "feature-set": FEATURE_SET}

    def get_genesis_hash(self, params: list[Any]) -> Any:
        p.positional(params, 0, 0)
        return b58(self.chain.genesis)

    def get_identity(self, params: list[Any]) -> Any:
        p.positional(params, 0, 0)
        return {"identity": str(self.chain.faucet.pubkey())}

    def get_epoch_info(self, params: list[Any]) -> Any:
        self._config(p.positional(params, 0, 1), 0)
        per_epoch = self.chain.svm.get_epoch_schedule().slots_per_epoch
        slot = self.chain.slot
        return {
            "absoluteSlot": slot,
            "blockHeight": self.chain.height,
            "epoch": slot // per_epoch,
            "slotIndex": slot % per_epoch,
            "slotsInEpoch": per_epoch,
            "transactionCount": self.chain.transaction_count,
        }

    def get_transaction_count(self, params: list[Any]) -> Any:
        self._config(p.positional(params, 0, 1), 0)
        return self.chain.transaction_count

    def get_recent_prioritization_fees(self, params: list[Any]) -> Any:
        params = p.positional(params, 0, 1)
        if params:
            for k in p.string_list(params[0], "addresses", 128):
                p.pubkey(k, "address")
        return []

    def get_first_available_block(self, params: list[Any]) -> Any:
        p.positional(params, 0, 0)
        return 0

    # ------------------------------------------------------------ local faucet
    def request_airdrop(self, params: list[Any]) -> Any:
        params = p.positional(params, 2, 3)
        self._config(params, 2)
        to = p.pubkey(params[0])
        lamports = p.uint(params[1], "lamports")
        if lamports == 0:
            raise invalid_params("Invalid param: lamports must be positive")
        ex = self.chain.airdrop(to, lamports)
        if ex.landed:
            self.on_change()
        return ex.signature

    def cx_set_account(self, params: list[Any]) -> Any:
        """Local-only: write an account directly (used by the simulated Pyth publisher).

        params: ``[pubkey, {"lamports": int, "data": [base64, "base64"], "owner": base58,
        "executable": false, "rentEpoch": int (optional)}]``; result: null. A real cluster
        has no such method: code that needs it is local tooling, never settlement.
        """
        params = p.positional(params, 2, 2)
        key = p.pubkey(params[0])
        spec = params[1]
        if not isinstance(spec, dict):
            raise invalid_params("Invalid params: account must be an object")
        unknown = set(spec) - {"lamports", "data", "owner", "executable", "rentEpoch", "space"}
        if unknown:
            raise invalid_params(f"Invalid params: unknown account fields {sorted(unknown)}")
        lamports = p.uint(spec.get("lamports"), "lamports")
        data_field = spec.get("data", ["", "base64"])
        if (
            not isinstance(data_field, list)
            or len(data_field) != 2
            or data_field[1] != "base64"
            or not isinstance(data_field[0], str)
        ):
            raise invalid_params('Invalid params: data must be [base64_string, "base64"]')
        try:
            data = base64.b64decode(data_field[0], validate=True)
        except binascii.Error:
            raise invalid_params("Invalid params: data is not valid base64") from None
        if len(data) > MAX_DATA_LEN:
            raise invalid_params(f"Invalid params: data longer than {MAX_DATA_LEN} bytes")
        owner = p.pubkey(spec.get("owner"), "owner")
        executable = spec.get("executable", False)
        if not isinstance(executable, bool):
            raise invalid_params("Invalid params: executable must be a boolean")
        rent_epoch = p.uint(spec.get("rentEpoch", p.U64_MAX), "rentEpoch")
        self.chain.set_account(key, Account(lamports, data, owner, executable, rent_epoch))
        self.on_change()
        return None

    def cx_advance_blocks(self, params: list[Any]) -> Any:
        """Local-only: close ``n`` blocks now (``[n]``, 1..1000) and return the new height.

        The test hook ``LocalSolana.advance_blocks`` for a node in another process.
        """
        n = p.uint(p.positional(params, 1, 1)[0], "n", 1000)
        if n == 0:
            raise invalid_params("Invalid param: n must be at least 1")
        if self.advance is None:
            raise invalid_params("cx_advanceBlocks is not available on this node")
        self.advance(n)
        return self.chain.height


def _has_size(data: bytes, *, size: int) -> bool:
    return len(data) == size


def _bytes_at(data: bytes, *, offset: int, expected: bytes) -> bool:
    return data[offset : offset + len(expected)] == expected


def _account_filters(raw: Any) -> list[Callable[[bytes], bool]]:
    """getProgramAccounts filters: dataSize and memcmp (base58 or base64 bytes)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 4:
        raise invalid_params("Invalid params: filters must be an array of at most 4 filters")
    out: list[Callable[[bytes], bool]] = []
    for f in raw:
        if isinstance(f, dict) and "dataSize" in f:
            size = p.uint(f["dataSize"], "dataSize")
            out.append(functools.partial(_has_size, size=size))
        elif isinstance(f, dict) and isinstance(f.get("memcmp"), dict):
            mc = f["memcmp"]
            offset = p.uint(mc.get("offset"), "memcmp.offset")
            enc = mc.get("encoding", "base58")
            raw_bytes = p.decode_wire(mc.get("bytes"), enc, "memcmp bytes", limit=128)
            out.append(functools.partial(_bytes_at, offset=offset, expected=raw_bytes))
        else:
            raise invalid_params(f"Invalid params: unsupported filter {f!r}")
    return out
