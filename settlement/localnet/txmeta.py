"""Transaction facts in the JSON shapes a Solana node returns (errors, metadata, fees).

The error JSON comes from solders' own serializer, so it is byte-for-byte what solana-py
parses from a real cluster; the human messages follow the runtime's Display strings.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import based58  # Rust base58 (anchorpy's dependency); instruction data is arbitrary bytes
import orjson
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorType, TransactionStatus

LAMPORTS_PER_SIGNATURE = 5000
COMPUTE_BUDGET_PROGRAM = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
DEFAULT_UNITS_PER_INSTRUCTION = 200_000
MAX_UNITS_PER_TRANSACTION = 1_400_000

_TX_MESSAGES = {
    "AccountInUse": "Account in use",
    "AccountLoadedTwice": "Account loaded twice",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "SignatureFailure": "Transaction did not pass signature verification",
    "SanitizeFailure": "Transaction failed to sanitize accounts offsets correctly",
    "AddressLookupTableNotFound": "Transaction loads an address table account that doesn't exist",
    "InvalidAddressLookupTableIndex": "Transaction address table lookup uses an invalid index",
}
_IX_MESSAGES = {
    "GenericError": "generic instruction error",
    "InvalidArgument": "invalid program argument",
    "InvalidInstructionData": "invalid instruction data",
    "InvalidAccountData": "invalid account data for instruction",
    "AccountDataTooSmall": "account data too small for instruction",
    "InsufficientFunds": "insufficient funds for instruction",
    "IncorrectProgramId": "incorrect program id for instruction",
    "MissingRequiredSignature": "missing required signature for instruction",
    "AccountAlreadyInitialized": "instruction requires an uninitialized account",
    "UninitializedAccount": "instruction requires an initialized account",
    "AccountNotRentExempt": "An account does not have enough lamports to be rent-exempt",
    "InvalidSeeds": "Provided seeds do not result in a valid address",
    "ExternalAccountLamportSpend": (
        "instruction spent from the balance of an account it does not own"
    ),
    "ReadonlyLamportChange": "instruction changed the balance of a read-only account",
    "ReadonlyDataModified": "instruction modified data of a read-only account",
    "ComputationalBudgetExceeded": "Computational budget exceeded",
}


def b58(data: bytes) -> str:
    """Base58 text of arbitrary bytes (instruction data in the ``json`` encodings)."""
    return based58.b58encode(bytes(data)).decode()


def err_to_json(err: TransactionErrorType | None) -> Any:
    """The RPC JSON of a transaction error (None when the transaction succeeded)."""
    if err is None:
        return None
    return orjson.loads(TransactionStatus(0, None, None, err, None).to_json())["err"]


def describe_err(err: Any) -> str:
    """A runtime-style human message for an error in its JSON form."""
    if isinstance(err, str):
        return _TX_MESSAGES.get(err, err)
    if isinstance(err, dict) and "InstructionError" in err:
        index, ix_err = err["InstructionError"]
        return f"Error processing Instruction {index}: {_describe_ix_err(ix_err)}"
    if isinstance(err, dict) and "InsufficientFundsForRent" in err:
        index = err["InsufficientFundsForRent"].get("account_index")
        return f"Transaction results in an account ({index}) with insufficient funds for rent"
    return orjson.dumps(err).decode()


def _describe_ix_err(err: Any) -> str:
    if isinstance(err, dict) and "Custom" in err:
        return f"custom program error: {err['Custom']:#x}"
    if isinstance(err, str):
        return _IX_MESSAGES.get(err, err)
    return orjson.dumps(err).decode()


def inner_instructions_json(inner: list[list[Any]]) -> list[dict[str, Any]]:
    """UiInnerInstructions (compiled form) from LiteSVM's per-instruction lists."""
    out = []
    for index, group in enumerate(inner):
        if not group:
            continue
        instructions = []
        for inner_ix in group:
            ix = inner_ix.instruction()  # LiteSVM's types expose fields through methods
            instructions.append(
                {
                    "programIdIndex": ix.program_id_index,
                    "accounts": list(ix.accounts),
                    "data": b58(ix.data),
                    "stackHeight": inner_ix.stack_height(),
                }
            )
        out.append({"index": index, "instructions": instructions})
    return out


def return_data_json(meta: Any) -> dict[str, Any] | None:
    """UiTransactionReturnData, or None when the program returned nothing."""
    rd = meta.return_data()
    data = bytes(rd.data)
    if not data:
        return None
    return {"programId": str(rd.program_id), "data": [base64.b64encode(data).decode(), "base64"]}


def fee_for_message(message: Message | MessageV0) -> int:
    """Signature fee plus priority fee, as the runtime computes it."""
    keys = message.account_keys
    price = 0
    limit: int | None = None
    other = 0
    for ix in message.instructions:
        if ix.program_id_index < len(keys) and keys[ix.program_id_index] == COMPUTE_BUDGET_PROGRAM:
            data = bytes(ix.data)
            if len(data) >= 9 and data[0] == 3:
                price = struct.unpack_from("<Q", data, 1)[0]
            elif len(data) >= 5 and data[0] == 2:
                limit = struct.unpack_from("<I", data, 1)[0]
        else:
            other += 1
    if limit is None:
        limit = DEFAULT_UNITS_PER_INSTRUCTION * other
    limit = min(limit, MAX_UNITS_PER_TRANSACTION)
    priority = (price * limit + 999_999) // 1_000_000
    return LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures + priority


def is_static_writable(message: Message | MessageV0, index: int) -> bool:
    """Whether static account key ``index`` is requested as writable by the header."""
    h = message.header
    signed = h.num_required_signatures
    if index < signed:
        return index < signed - h.num_readonly_signed_accounts
    return index < len(message.account_keys) - h.num_readonly_unsigned_accounts


def ui_transaction(tx: VersionedTransaction) -> dict[str, Any]:
    """The ``json`` encoding of a transaction (UiTransaction with a raw message)."""
    msg = tx.message
    h = msg.header
    ui_msg: dict[str, Any] = {
        "header": {
            "numRequiredSignatures": h.num_required_signatures,
            "numReadonlySignedAccounts": h.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": h.num_readonly_unsigned_accounts,
        },
        "accountKeys": [str(k) for k in msg.account_keys],
        "recentBlockhash": str(msg.recent_blockhash),
        "instructions": [
            {
                "programIdIndex": ix.program_id_index,
                "accounts": list(ix.accounts),
                "data": b58(ix.data),
                "stackHeight": None,
            }
            for ix in msg.instructions
        ],
    }
    if isinstance(msg, MessageV0):
        ui_msg["addressTableLookups"] = [
            {
                "accountKey": str(lk.account_key),
                "writableIndexes": list(lk.writable_indexes),
                "readonlyIndexes": list(lk.readonly_indexes),
            }
            for lk in msg.address_table_lookups
        ]
    return {"signatures": [str(s) for s in tx.signatures], "message": ui_msg}
