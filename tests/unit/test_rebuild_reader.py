"""The rebuild's reader process, without servers: the NATS delivery parser against split reads, and the parent's
end of the pipe against stand-in children that end, crash, stall or send garbage (each wait bounded)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from collections import deque
from typing import Any

import pytest

from shared.bus.raw import RawSubscription
from shared.bus.reader import ReaderConfig, ReaderFailed, ReaderProcess

pytestmark = pytest.mark.unit


class _Feed:
    """What ``RawSubscription`` touches of an ``_OrderedFeed``."""

    def __init__(self) -> None:
        self.buf: deque[Any] = deque()
        self.wake = asyncio.Event()
        self.arrived = 0
        self._gen = 1


class _Transport:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        pass


def _hmsg(subject: str, reply: str, headers: bytes, body: bytes) -> bytes:
    return (f"HMSG {subject} 1 {reply} {len(headers)} {len(headers) + len(body)}\r\n".encode() + headers + body
            + b"\r\n")


STREAM = b"".join([
    b'INFO {"server_id":"x","headers":true,"max_payload":1048576}\r\n',
    b"PONG\r\n",
    _hmsg("xbot.evt.llm.r1.call_completed", "$JS.ACK.S.C.1.1.1.1700000000000000000.2",
          b"NATS/1.0\r\nNats-Msg-Id: e1\r\n\r\n", b'{"a":1}'),
    b"PING\r\n",
    b"MSG xbot.evt.job.j1.completed 1 $JS.ACK.S.C.1.2.2.1700000000000000000.1 9\r\n{\"b\":\r\n2}\r\n",
    _hmsg("_INBOX.x", "", b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 2\r\nNats-Last-Stream: 2\r\n\r\n", b""),
    _hmsg("_INBOX.x", "$JS.FC.S.C.abc", b"NATS/1.0 100 FlowControl Request\r\n\r\n", b""),
    b"+OK\r\n",
    _hmsg("xbot.evt.llm.r3.call_completed", "$JS.ACK.S.C.1.3.3.1700000000000000000.0",
          b"NATS/1.0\r\nNats-Msg-Id: e3\r\n\r\n", b"x" * 3000),
])

EXPECTED = [
    ("xbot.evt.llm.r1.call_completed", "$JS.ACK.S.C.1.1.1.1700000000000000000.2", b'{"a":1}', None),
    ("xbot.evt.job.j1.completed", "$JS.ACK.S.C.1.2.2.1700000000000000000.1", b'{"b":\r\n2}', None),
    ("_INBOX.x", "", b"", {"Nats-Last-Consumer": "2", "Nats-Last-Stream": "2"}),
    ("_INBOX.x", "$JS.FC.S.C.abc", b"", {}),
    ("xbot.evt.llm.r3.call_completed", "$JS.ACK.S.C.1.3.3.1700000000000000000.0", b"x" * 3000, None),
]


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1000, len(STREAM)])
async def test_delivery_is_parsed_whatever_the_read_boundaries(chunk: int) -> None:
    feed = _Feed()
    sub = RawSubscription(feed, 1)
    sub.connect_line = b"CONNECT {}\r\nSUB _INBOX.x 1\r\nPING\r\n"
    transport = _Transport()
    sub.connection_made(transport)  # type: ignore[arg-type]
    for i in range(0, len(STREAM), chunk):
        sub.data_received(STREAM[i:i + chunk])
    assert list(feed.buf) == EXPECTED
    assert feed.arrived == len(EXPECTED) and feed.wake.is_set()
    assert sub.ready.done() and sub.ready.exception() is None
    # CONNECT + SUB + PING once after the first INFO, PONG for the server's PING
    assert transport.written == b"CONNECT {}\r\nSUB _INBOX.x 1\r\nPING\r\nPONG\r\n"
    assert sub.rest == b""


async def test_delivery_after_the_feed_moved_on_is_dropped() -> None:
    feed = _Feed()
    sub = RawSubscription(feed, 1)
    sub.connection_made(_Transport())  # type: ignore[arg-type]
    feed._gen = 2  # the feed restarted on another subscription
    sub.data_received(STREAM)
    assert not feed.buf and feed.arrived == 0


async def test_a_server_that_requires_tls_or_refuses_us_fails_the_handshake() -> None:
    for first, why in ((b'INFO {"tls_required":true}\r\n', "TLS"), (b"INFO {}\r\n-ERR 'Authorization Violation'\r\n",
                                                                     "Authorization")):
        sub = RawSubscription(_Feed(), 1)
        sub.connect_line = b"CONNECT {}\r\n"
        sub.connection_made(_Transport())  # type: ignore[arg-type]
        sub.data_received(first)
        assert sub.ready.done()
        exc = sub.ready.exception()
        assert isinstance(exc, ConnectionError) and why in str(exc)


# --- the parent's end, against stand-in children ------------------------------------------------------------
_PRELUDE = textwrap.dedent("""
    import struct, sys, time, msgspec
    sys.stdin.buffer.readline()
    out = sys.stdout.buffer
    def frame(kind, payload=b""):
        out.write(struct.pack(">cI", kind, len(payload)) + payload)
        out.flush()
    def data(first, n):
        frame(b"D", msgspec.msgpack.encode([[s, f"xbot.evt.llm.r{s}.call_completed", b"{}"] for s in range(first, first + n)]))
""")


def _child(body: str) -> list[str]:
    return [sys.executable, "-c", _PRELUDE + textwrap.dedent(body)]


async def _drain(reader: ReaderProcess) -> list[int]:
    seqs: list[int] = []
    try:
        async for items in reader.frames():
            seqs += [it.seq for it in items]
    finally:
        await reader.close()
    return seqs


def _reader(body: str, **kw: Any) -> ReaderProcess:
    return ReaderProcess(ReaderConfig(nats_url="nats://127.0.0.1:1", namespace="t"), command=_child(body), **kw)


async def test_frames_in_order_until_the_end_frame() -> None:
    reader = _reader("""
        data(1, 3); frame(b"K"); data(4, 2)
        data(3, 4)  # what was sent already is dropped, the rest kept
        frame(b"E", msgspec.msgpack.encode([6, 6]))
    """)
    await reader.start()
    seqs = await _drain(reader)
    assert seqs == [1, 2, 3, 4, 5, 6] and reader.received == 6 and reader.last_seq == 6
    assert reader.proc is not None and reader.proc.returncode == 0


async def test_a_child_that_dies_mid_log_fails_the_read_with_its_exit_code_and_stderr() -> None:
    reader = _reader("""
        data(1, 2)
        print("lost the connection to nats", file=sys.stderr, flush=True)
        sys.exit(7)
    """)
    await reader.start()
    seqs: list[int] = []
    with pytest.raises(ReaderFailed) as err:
        async for items in reader.frames():
            seqs += [it.seq for it in items]
    await reader.close()
    assert seqs == [1, 2]
    msg = str(err.value)
    assert "exited before the end of the log" in msg and "exit code 7" in msg and "after seq 2" in msg
    assert "lost the connection to nats" in msg


async def test_a_silent_child_fails_the_read_after_the_stall_time_and_is_killed() -> None:
    reader = _reader("""
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # even a child that ignores SIGTERM goes
        data(1, 1)
        time.sleep(120)
    """, stall_s=1.0, start_timeout_s=10.0)
    await reader.start()
    t0 = time.monotonic()
    with pytest.raises(ReaderFailed, match="nothing from the reader process for 1s"):
        await _drain(reader)
    assert time.monotonic() - t0 < 15
    assert reader.proc is not None and reader.proc.returncode is not None


@pytest.mark.parametrize(("body", "why"), [
    ('out.write(b"hello world\\n"); out.flush(); time.sleep(5)', "unknown kind"),
    ('frame(b"D", b"\\xc1\\xc1"); time.sleep(5)', "cannot read"),
    ('frame(b"X", b"NoRespondersError: no stream"); sys.exit(1)', "the reader process failed: NoRespondersError"),
])
async def test_garbage_or_an_error_frame_fails_the_read(body: str, why: str) -> None:
    reader = _reader(body, stall_s=10.0)
    await reader.start()
    t0 = time.monotonic()
    with pytest.raises(ReaderFailed, match=why):
        await _drain(reader)
    assert time.monotonic() - t0 < 15
    assert reader.proc is not None and reader.proc.returncode is not None


async def test_a_child_that_only_says_it_lives_fails_the_read_after_the_no_data_time() -> None:
    reader = _reader("""
        data(1, 1)
        for _ in range(200):
            frame(b"K"); time.sleep(0.1)
    """, stall_s=5.0, no_data_s=1.5)
    await reader.start()
    t0 = time.monotonic()
    with pytest.raises(ReaderFailed, match=r"no message from the reader process for \d+s"):
        await _drain(reader)
    assert time.monotonic() - t0 < 15


async def test_the_reader_fails_with_the_reason_when_nats_is_not_there() -> None:
    reader = ReaderProcess(ReaderConfig(nats_url="nats://someone:secret@127.0.0.1:1", namespace="t",
                                        connect_timeout_s=2.0))
    await reader.start()
    t0 = time.monotonic()
    with pytest.raises(ReaderFailed, match="no NATS connection to 127.0.0.1 within 2s") as err:
        await _drain(reader)
    assert time.monotonic() - t0 < 20
    assert "secret" not in str(err.value)
    assert reader.proc is not None and reader.proc.returncode == 1
