"""A small HTTP/1.1 server for JSON-RPC on asyncio: keep-alive, pipelining, size limits.

A full web framework would cost more per request than the chain work itself; the node needs
only POST (JSON-RPC) and GET /health, answered on the event loop thread that owns the chain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_BODY = 50 * 1024  # a Solana node's request body limit (MAX_REQUEST_BODY_SIZE)
MAX_HEAD = 16 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}

Handler = Callable[[bytes], bytes | None]


def _response(status: int, body: bytes, content_type: str, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


class HttpProtocol(asyncio.Protocol):
    """One connection; requests are answered in order as soon as each is complete."""

    def __init__(
        self, handler: Handler, max_body: int = MAX_BODY, live: set[HttpProtocol] | None = None
    ) -> None:
        self.handler = handler
        self.max_body = max_body
        self.live = live  # the server's open connections, so that stop can close them
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.continued = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.live is not None:
            self.live.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.live is not None:
            self.live.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.transport is not None and self._one():
            pass

    def _fail(self, status: int, message: str) -> bool:
        assert self.transport is not None
        self.transport.write(_response(status, message.encode(), "text/plain", False))
        self.transport.close()
        self.buf.clear()
        return False

    def _one(self) -> bool:
        """Answer one complete request from the buffer; False when more bytes are needed."""
        assert self.transport is not None
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                return self._fail(431, "request head too large")
            return False
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return self._fail(400, "malformed request line")
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                return self._fail(400, "malformed header")
            headers[name.strip().lower()] = value.strip()
        if "transfer-encoding" in headers:
            return self._fail(411, "chunked bodies are not accepted; send Content-Length")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            return self._fail(400, "bad Content-Length")
        if length < 0:
            return self._fail(400, "bad Content-Length")
        if length > self.max_body:
            return self._fail(413, f"request body larger than {self.max_body} bytes")
        start = end + 4
        if len(self.buf) < start + length:
            if headers.get("expect", "").lower() == "100-continue" and not self.continued:
                self.continued = True
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return False
        body = bytes(self.buf[start : start + length])
        del self.buf[: start + length]
        self.continued = False
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        self.transport.write(self._answer(method, target, body, keep_alive))
        if not keep_alive:
            self.transport.close()
            return False
        return True

    def _answer(self, method: str, target: str, body: bytes, keep_alive: bool) -> bytes:
        if method == "POST":
            try:
                reply = self.handler(body)
            except Exception:
                log.exception("localnet: request failed")
                return _response(500, b"internal error", "text/plain", keep_alive)
            return _response(200, reply or b"", "application/json", keep_alive)
        if method == "GET" and target.split("?")[0] == "/health":
            return _response(200, b"ok", "text/plain", keep_alive)
        if method == "GET":
            return _response(404, b"not found", "text/plain", keep_alive)
        return _response(405, b"use POST for JSON-RPC", "text/plain", keep_alive)
