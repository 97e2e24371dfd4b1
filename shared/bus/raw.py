"""The bus's raw read mode: ordered-read delivery on a NATS connection of our own, parsed in bulk.

``JetStreamBus.connect(..., raw_reads=True)`` makes ``read`` take delivery this way (the rebuild's reader process,
``shared.bus.reader``, is the one user); everything else about the ordered read (the consumer, flow control,
heartbeats, gaps, restarts) stays ``_OrderedFeed``'s.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import structlog

log = structlog.get_logger("bus")


class RawSubscription(asyncio.Protocol):
    """A NATS connection of our own that receives one subject (the ordered consumer's deliver subject) and parses
    what arrives in bulk, a few ``bytes.find`` per message, into the feed's buffer as nats-py's callback would.

    nats-py builds a ``Msg``, parses its headers, queues it and runs a callback for each message: most of what a
    rebuild's read costs. The consumer, flow control, heartbeats, gaps and restarts stay the feed's
    (``_OrderedFeed``), and its control requests go through nats-py; only delivery comes this way. Plain TCP with
    the URL's user and password or token; anything else (TLS) uses nats-py's subscription."""

    def __init__(self, feed: Any, gen: int):
        self.feed, self.gen = feed, gen
        self.transport: asyncio.Transport | None = None
        self.rest = b""
        self.connect_line = b""
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, feed: Any, gen: int, url: Any, inbox: str, timeout: float = 5.0) -> RawSubscription:
        loop = asyncio.get_running_loop()
        opts: dict[str, Any] = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                                "protocol": 1, "lang": "python", "version": "xbot", "name": "xbot-rebuild-reader"}
        if url.username and url.password is not None:
            opts["user"], opts["pass"] = url.username, url.password
        elif url.username:
            opts["auth_token"] = url.username
        proto = cls(feed, gen)
        proto.connect_line = b"CONNECT " + msgspec.json.encode(opts) + f"\r\nSUB {inbox} 1\r\nPING\r\n".encode()
        async with asyncio.timeout(timeout):
            await loop.create_connection(lambda: proto, url.hostname or "127.0.0.1", url.port or 4222)
            try:
                await proto.ready  # INFO, then CONNECT + SUB answered by PONG: the subscription is in place
            except BaseException:
                await proto.unsubscribe()
                raise
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("connection closed"))
        # after that, no message comes: the feed's heartbeat watchdog restarts the read on a new connection

    async def unsubscribe(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def data_received(self, data: bytes) -> None:
        buf = self.rest + data if self.rest else data
        feed = self.feed
        out = feed.buf
        append = out.append
        find = buf.find
        n = len(buf)
        pos = 0
        count = 0
        live = feed._gen == self.gen
        while True:
            eol = find(b"\r\n", pos)
            if eol < 0:
                break
            if buf.startswith(b"HMSG ", pos) or buf.startswith(b"MSG ", pos):
                toks = buf[pos:eol].split()  # HMSG <subject> <sid> [reply] <header size> <size>; MSG: no header size
                hmsg = toks[0] == b"HMSG"
                size = int(toks[-1])
                hsize = int(toks[-2]) if hmsg else 0
                start = eol + 2
                end = start + size
                if end + 2 > n:
                    break  # the rest of this message comes with the next read
                reply = toks[3].decode() if len(toks) == (6 if hmsg else 5) else ""
                body = buf[start + hsize:end]
                if live:
                    append((toks[1].decode(), reply, body, None if body else _headers(buf[start:start + hsize])))
                    count += 1
                pos = end + 2
                continue
            line = buf[pos:eol]
            pos = eol + 2
            if line == b"PING":
                self._write(b"PONG\r\n")
            elif line == b"PONG":
                if not self.ready.done():
                    self.ready.set_result(None)
            elif line.startswith(b"INFO ") and self.connect_line:  # the first INFO: say who we are, subscribe
                if msgspec.json.decode(line[5:]).get("tls_required"):
                    self.ready.set_exception(ConnectionError("the server requires TLS"))
                    return
                self._write(self.connect_line)
                self.connect_line = b""
            elif line.startswith(b"-ERR"):
                log.warning("nats error on the raw read connection", error=line.decode(errors="replace"))
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(line.decode(errors="replace")))
        self.rest = buf[pos:]
        if count:
            feed.arrived += count
            feed.wake.set()

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)


def _headers(raw: bytes) -> dict[str, str]:
    """``NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 7\r\n\r\n`` -> the headers (control messages)."""
    out: dict[str, str] = {}
    for line in raw.decode(errors="replace").split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out
