"""The JSON-RPC 2.0 envelope: single and batch requests, notifications, error objects."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from .errors import INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, RpcError
from .methods import Methods

log = logging.getLogger(__name__)
_NO_ID = object()


def _error(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": RpcError(code, message, data).to_json(), "id": id_}


class JsonRpc:
    """Turns a request body into a response body (None when nothing must be answered)."""

    def __init__(self, methods: Methods) -> None:
        self.methods = methods

    def handle(self, body: bytes) -> bytes | None:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return orjson.dumps(_error(None, PARSE_ERROR, "Parse error"))
        if isinstance(request, list):
            if not request:
                return orjson.dumps(_error(None, INVALID_REQUEST, "Invalid request"))
            replies = [r for r in map(self._one, request) if r is not None]
            return orjson.dumps(replies) if replies else None
        reply = self._one(request)
        return None if reply is None else orjson.dumps(reply)

    def _one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return _error(None, INVALID_REQUEST, "Invalid request")
        id_ = request.get("id", _NO_ID)
        reply_id = None if id_ is _NO_ID else id_
        method = request.get("method")
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return _error(reply_id, INVALID_REQUEST, "Invalid request")
        fn = self.methods.table.get(method)
        if fn is None:
            reply = _error(reply_id, METHOD_NOT_FOUND, "Method not found")
        else:
            try:
                params: Any = request.get("params")  # JSON: each method checks its shape
                reply = {"jsonrpc": "2.0", "result": fn(params), "id": reply_id}
            except RpcError as exc:
                reply = {"jsonrpc": "2.0", "error": exc.to_json(), "id": reply_id}
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # a LiteSVM panic is a BaseException
                log.exception("localnet: %s failed", method)
                reply = _error(reply_id, INTERNAL_ERROR, f"Internal error: {exc}")
        return None if id_ is _NO_ID else reply
