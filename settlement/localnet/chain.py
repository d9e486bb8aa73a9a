"""The local chain: LiteSVM plus what a cluster adds around it.

LiteSVM executes transactions; this class adds the parts a node provides: the recent
blockhash queue and block production, the signature status cache and transaction history,
fee-charging rules for failed transactions, airdrops, and the set of accounts the chain has
touched (LiteSVM cannot list its accounts, and persistence needs them). It is not
thread-safe: one thread (the server's event loop) owns it.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from solders.account import Account
from solders.clock import Clock
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from .blocks import MAX_PROCESSING_AGE, BlockClock
from .token import parse_mint, token_balance_fields
from .txmeta import (
    err_to_json,
    fee_for_message,
    inner_instructions_json,
    is_static_writable,
    return_data_json,
)

SYSTEM_PROGRAM = Pubkey.default()
SYSVAR_OWNER = Pubkey.from_string("Sysvar1111111111111111111111111111111111111")
ALT_PROGRAM = Pubkey.from_string("AddressLookupTab1e1111111111111111111111111")
_ALT_META_SIZE = 56
FINALITY_DEPTH = 32  # blocks after which a slot is rooted ("finalized")
FAUCET_LAMPORTS = 10**18
MAX_TX_DETAILS = 10_000  # the latest transactions whose getTransaction details are kept
MAX_STATUSES = 1_000_000  # the latest signatures whose status is kept (far beyond 150 blocks)


class LiteSVMPanic(RuntimeError):
    """LiteSVM panicked (a Rust panic surfaces as a BaseException); the request fails."""


@dataclass(slots=True)
class Execution:
    """What happened to one submitted transaction.

    ``stage`` says how far it got: "sigverify" (bad signature), "check" (blockhash or
    duplicate, never executed), "executed" (ran; ``landed`` says whether it is in a block).
    """

    signature: str
    stage: str
    landed: bool
    err: Any = None
    logs: list[str] = field(default_factory=list)
    units: int = 0
    return_data: dict[str, Any] | None = None
    inner: list[dict[str, Any]] | None = None


def account_to_row(acc: Account) -> list[Any]:
    """Persistable row: lamports, owner, data (base64), executable, rent epoch."""
    return [
        acc.lamports,
        str(acc.owner),
        base64.b64encode(bytes(acc.data)).decode(),
        acc.executable,
        acc.rent_epoch,
    ]


def row_to_account(row: list[Any]) -> Account:
    lamports, owner, data, executable, rent_epoch = row
    return Account(
        lamports=lamports,
        data=base64.b64decode(data),
        owner=Pubkey.from_string(owner),
        executable=executable,
        rent_epoch=rent_epoch,
    )


def _is_runtime_account(acc: Account | None) -> bool:
    """Programs and sysvars: the runtime's own accounts, never ours to save or restore."""
    return acc is not None and (acc.executable or acc.owner == SYSVAR_OWNER)


def _call_svm(fn: Any, *args: Any) -> Any:
    """Call into LiteSVM, turning a Rust panic (a BaseException) into an ordinary error."""
    try:
        return fn(*args)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except Exception:
        raise
    except BaseException as exc:  # pyo3 PanicException derives from BaseException
        raise LiteSVMPanic(f"LiteSVM panicked: {exc}") from None


class Chain:
    """One local chain; see the module docstring."""

    def __init__(self, genesis: bytes, slot: int = 0, height: int = 0) -> None:
        self.genesis = genesis
        self.svm = (
            LiteSVM()
            .with_sigverify(False)  # we verify (and report) signatures ourselves
            .with_blockhash_check(False)  # we keep the 150-block queue ourselves
            .with_transaction_history(0)  # we keep statuses ourselves (and persist them)
        )
        self.blocks = BlockClock(genesis, slot, height)
        self.statuses: dict[str, tuple[int, Any]] = {}  # signature -> (slot, err)
        self.details: dict[str, dict[str, Any]] = {}  # signature -> getTransaction facts
        self.known: set[Pubkey] = set()  # every account the chain has written
        self.dirty: set[Pubkey] = set()  # written since the last export
        self.new_signatures: list[str] = []  # landed since the last export
        self.block_has_transactions = False
        self.durable_slot = slot - 1  # highest slot whose changes are on disk
        self.transaction_count = 0
        self._mint_decimals: dict[Pubkey, int] = {}
        self.faucet = Keypair.from_seed(hashlib.sha256(b"cx-localnet-faucet" + genesis).digest())
        self._sync_sysvars()

    # ------------------------------------------------------------------ blocks
    @property
    def slot(self) -> int:
        return self.blocks.slot

    @property
    def height(self) -> int:
        return self.blocks.height

    def advance(self, blocks: int = 1) -> None:
        """Close the open block (and ``blocks - 1`` empty ones after it)."""
        self.blocks.advance(blocks)
        self.block_has_transactions = False
        self._sync_sysvars()

    def skip(self, blocks: int) -> None:
        """Jump ahead ``blocks`` slots (after a crash: every unsaved blockhash expires)."""
        self.blocks.skip(blocks)
        self._sync_sysvars()

    def _sync_sysvars(self) -> None:
        """Keep LiteSVM's Clock, SlotHashes and its own blockhash in step with our blocks."""
        schedule = self.svm.get_epoch_schedule()
        per_epoch = schedule.slots_per_epoch
        epoch = self.slot // per_epoch
        self.svm.set_clock(Clock(self.slot, 0, epoch, epoch + 1, int(time.time())))
        self.svm.set_slot_hashes(self.blocks.slot_hashes())
        self.svm.expire_blockhash()  # durable nonces advance from LiteSVM's blockhash

    def confirmation(self, slot: int) -> tuple[int | None, str]:
        """(confirmations, confirmationStatus) of a transaction that landed in ``slot``."""
        if slot >= self.slot or slot > self.durable_slot:
            return 0, "processed"
        depth = self.slot - slot
        if depth >= FINALITY_DEPTH:
            return None, "finalized"
        return depth, "confirmed"

    # ---------------------------------------------------------------- accounts
    def get_account(self, pubkey: Pubkey) -> Account | None:
        """The account, or None when it does not exist (zero lamports counts as gone)."""
        acc = self.svm.get_account(pubkey)
        if acc is None or acc.lamports == 0:
            return None
        return acc

    def set_account(self, pubkey: Pubkey, acc: Account) -> None:
        _call_svm(self.svm.set_account, pubkey, acc)
        self._touch(pubkey)

    def _touch(self, pubkey: Pubkey) -> None:
        self.known.add(pubkey)
        self.dirty.add(pubkey)

    def mint_decimals(self, mint: Pubkey) -> int | None:
        """Decimals of a mint (cached: they never change once initialized)."""
        dec = self._mint_decimals.get(mint)
        if dec is None:
            acc = self.get_account(mint)
            parsed = None if acc is None else parse_mint(acc.owner, bytes(acc.data))
            if parsed is None:
                return None
            dec = self._mint_decimals[mint] = parsed.decimals
        return dec

    @staticmethod
    def _token_balances(accounts: list[Account | None]) -> list[list[Any]]:
        """Token balances of a transaction's accounts as [index, mint, owner, program, amount]
        (rendered as UiTransactionTokenBalance when read: decimals never change)."""
        out = []
        for index, acc in enumerate(accounts):
            if acc is None:
                continue
            fields = token_balance_fields(acc.owner, acc.data)
            if fields is not None:
                out.append([index, fields[0], fields[1], str(acc.owner), fields[2]])
        return out

    # ------------------------------------------------------------ transactions
    def loaded_addresses(self, msg: Message | MessageV0) -> tuple[list[Pubkey], list[Pubkey]]:
        """Addresses a v0 message loads from lookup tables: (writable, readonly)."""
        if not isinstance(msg, MessageV0):
            return [], []
        writable: list[Pubkey] = []
        readonly: list[Pubkey] = []
        for lookup in msg.address_table_lookups:
            acc = self.get_account(lookup.account_key)
            if acc is None or acc.owner != ALT_PROGRAM:
                continue  # LiteSVM reports the error when it loads the transaction
            data = bytes(acc.data)
            count = (len(data) - _ALT_META_SIZE) // 32

            def addr(i: int, data: bytes = data) -> Pubkey:
                at = _ALT_META_SIZE + 32 * i
                return Pubkey.from_bytes(data[at : at + 32])

            writable += [addr(i) for i in lookup.writable_indexes if i < count]
            readonly += [addr(i) for i in lookup.readonly_indexes if i < count]
        return writable, readonly

    def _nonce_ok(self, tx: VersionedTransaction) -> bool:
        """A durable-nonce transaction may reference its nonce instead of a recent hash."""
        if not tx.uses_durable_nonce():
            return False
        msg = tx.message
        ix = msg.instructions[0]
        if not ix.accounts:
            return False
        acc = self.get_account(msg.account_keys[ix.accounts[0]])
        if acc is None or acc.owner != SYSTEM_PROGRAM:
            return False
        data = bytes(acc.data)
        return len(data) >= 72 and data[4] == 1 and data[40:72] == bytes(msg.recent_blockhash)

    def check(self, tx: VersionedTransaction) -> Any:
        """The error a transaction meets before execution (blockhash age, duplicate), or None."""
        blockhash = bytes(tx.message.recent_blockhash)
        if not self.blocks.is_valid(blockhash) and not self._nonce_ok(tx):
            return "BlockhashNotFound"
        if str(tx.signatures[0]) in self.statuses:
            return "AlreadyProcessed"
        return None

    def process(self, tx: VersionedTransaction, raw: bytes, preflight: bool) -> Execution:
        """Verify, check and execute ``tx``; with ``preflight`` a failure changes nothing."""
        signature = str(tx.signatures[0])
        if not all(tx.verify_with_results()):
            return Execution(signature, "sigverify", False, "SignatureFailure")
        err = self.check(tx)
        if err is not None:
            return Execution(signature, "check", False, err)

        msg = tx.message
        static = list(msg.account_keys)
        loaded_w, loaded_r = self.loaded_addresses(msg)
        keys = static + loaded_w + loaded_r
        writable = [k for i, k in enumerate(static) if is_static_writable(msg, i)] + loaded_w
        pre = [self.svm.get_account(k) for k in keys]
        pre_token = self._token_balances(pre)

        result = _call_svm(self.svm.send_transaction, tx)
        failed = hasattr(result, "err")
        meta = result.meta() if failed else result
        err_json = err_to_json(result.err()) if failed else None
        payer_pre = pre[0].lamports if pre[0] is not None else 0
        charged = not failed or (self.svm.get_balance(keys[0]) or 0) != payer_pre
        execution = Execution(
            signature,
            "executed",
            charged and not (failed and preflight),
            err_json,
            list(meta.logs()),
            meta.compute_units_consumed(),
            return_data_json(meta),
            inner_instructions_json(meta.inner_instructions()),
        )
        if failed and preflight:
            # Preflight would have refused it: undo the fee (and a nonce advance).
            for key, acc in zip(keys, pre, strict=True):
                if acc is not None and key in writable:
                    self.svm.set_account(key, acc)
            return execution
        if not execution.landed:
            return execution  # never entered a block (e.g. the payer cannot pay the fee)

        post = [self.svm.get_account(k) for k in keys]
        for key, acc in zip(keys, post, strict=True):
            if key in writable and not _is_runtime_account(acc):
                self._touch(key)
        self._record(
            signature,
            err_json,
            {
                "raw": base64.b64encode(raw).decode(),
                "fee": fee_for_message(msg),
                "logs": execution.logs,
                "units": execution.units,
                "pre": [0 if a is None else a.lamports for a in pre],
                "post": [0 if a is None else a.lamports for a in post],
                "preToken": pre_token,
                "postToken": self._token_balances(post),
                "inner": execution.inner,
                "returnData": execution.return_data,
                "loaded": None
                if not isinstance(msg, MessageV0)
                else {
                    "writable": [str(k) for k in loaded_w],
                    "readonly": [str(k) for k in loaded_r],
                },
            },
        )
        return execution

    def _record(self, signature: str, err: Any, detail: dict[str, Any]) -> None:
        detail["slot"] = self.slot
        detail["err"] = err
        detail["blockTime"] = int(time.time())
        self.statuses[signature] = (self.slot, err)
        self.details[signature] = detail
        self._prune()
        self.new_signatures.append(signature)
        self.block_has_transactions = True
        self.transaction_count += 1

    def _prune(self) -> None:
        """Forget the oldest details and statuses beyond their caps (dicts keep order)."""
        while len(self.details) > MAX_TX_DETAILS:
            del self.details[next(iter(self.details))]
        while len(self.statuses) > MAX_STATUSES:
            del self.statuses[next(iter(self.statuses))]

    def simulate(
        self, tx: VersionedTransaction, replace_blockhash: bool
    ) -> tuple[Execution, list[tuple[Pubkey, Account]] | None]:
        """Run ``tx`` without committing anything: (execution, post-state accounts)."""
        signature = str(tx.signatures[0])
        msg = tx.message
        if replace_blockhash:
            tx = VersionedTransaction.populate(
                _with_blockhash(msg, self.blocks.blockhash), tx.signatures
            )
        elif not self.blocks.is_valid(bytes(msg.recent_blockhash)) and not self._nonce_ok(tx):
            return Execution(signature, "check", False, "BlockhashNotFound"), None
        result = _call_svm(self.svm.simulate_transaction, tx)
        failed = hasattr(result, "err")
        meta = result.meta()
        execution = Execution(
            signature,
            "executed",
            False,
            err_to_json(result.err()) if failed else None,
            list(meta.logs()),
            meta.compute_units_consumed(),
            return_data_json(meta),
            inner_instructions_json(meta.inner_instructions()),
        )
        return execution, None if failed else list(result.post_accounts())

    def airdrop(self, to: Pubkey, lamports: int) -> Execution:
        """Send ``lamports`` from the local faucet in a real, signed transfer."""
        faucet = self.faucet.pubkey()
        balance = self.svm.get_balance(faucet) or 0
        if balance < lamports + FAUCET_LAMPORTS // 2:
            self.set_account(faucet, Account(FAUCET_LAMPORTS + lamports, b"", SYSTEM_PROGRAM))
        ix = transfer(TransferParams(from_pubkey=faucet, to_pubkey=to, lamports=lamports))
        for _ in range(2):
            blockhash = self.blocks.blockhash
            tx = Transaction.new_signed_with_payer([ix], faucet, [self.faucet], blockhash)
            vtx = VersionedTransaction.from_legacy(tx)
            if str(vtx.signatures[0]) not in self.statuses:
                break
            self.advance()  # same transfer twice in one block: sign with the next blockhash
        return self.process(vtx, bytes(vtx), preflight=False)

    # -------------------------------------------------------------- persistence
    def export_changes(self) -> dict[str, Any] | None:
        """What changed since the last export (None if nothing), as a JSON-ready record."""
        if not self.dirty and not self.new_signatures:
            return None
        record = {
            "slot": self.slot,
            "height": self.height,
            "accounts": {str(k): self._row(k) for k in self.dirty},
            "statuses": [[s, *self.statuses[s]] for s in self.new_signatures],
            "details": {s: self.details[s] for s in self.new_signatures if s in self.details},
        }
        self.dirty.clear()
        self.new_signatures.clear()
        return record

    def export_state(self) -> dict[str, Any]:
        """The whole chain state as a JSON-ready snapshot."""
        self.dirty.clear()
        self.new_signatures.clear()
        return {
            "genesis": base64.b64encode(self.genesis).decode(),
            "slot": self.slot,
            "height": self.height,
            "transactionCount": self.transaction_count,
            "accounts": {str(k): self._row(k) for k in self.known},
            "statuses": [[s, slot, err] for s, (slot, err) in self.statuses.items()],
            "details": dict(self.details),  # a copy: the file is written by another thread
        }

    def _row(self, pubkey: Pubkey) -> list[Any] | None:
        acc = self.svm.get_account(pubkey)
        if acc is None or acc.lamports == 0:
            return None
        return account_to_row(acc)

    def apply(self, record: dict[str, Any]) -> None:
        """Load a snapshot or replay a change record (the same shape, minus genesis)."""
        for key, row in record["accounts"].items():
            pubkey = Pubkey.from_string(key)
            if row is None:
                self.known.discard(pubkey)
                _call_svm(self.svm.set_account, pubkey, Account(0, b"", SYSTEM_PROGRAM))
            else:
                self.known.add(pubkey)
                _call_svm(self.svm.set_account, pubkey, row_to_account(row))
        for signature, slot, err in record["statuses"]:
            self.statuses[signature] = (slot, err)
        self.details.update(record["details"])
        self._prune()
        self.transaction_count = record.get("transactionCount", self.transaction_count)
        if record["height"] > self.height:
            self.blocks.skip(record["height"] - self.height)
        self.durable_slot = self.slot - 1
        self._sync_sysvars()


def _with_blockhash(msg: Message | MessageV0, blockhash: Hash) -> Message | MessageV0:
    if isinstance(msg, MessageV0):
        return MessageV0(
            msg.header,
            msg.account_keys,
            blockhash,
            msg.instructions,
            msg.address_table_lookups,
        )
    h = msg.header
    return Message.new_with_compiled_instructions(
        h.num_required_signatures,
        h.num_readonly_signed_accounts,
        h.num_readonly_unsigned_accounts,
        msg.account_keys,
        blockhash,
        msg.instructions,
    )


__all__ = ["MAX_PROCESSING_AGE", "Chain", "Execution", "LiteSVMPanic"]
