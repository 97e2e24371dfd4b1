"""The bus's process read mode: the log read in a second process, so a consumer of the whole log (the gateway's
rebuild) uses both cores.

Reading the log costs as much CPU as projecting it: nats-py parses every protocol line and every message's
headers (each stored event carries a ``Nats-Msg-Id``) one Python call at a time. ``xbot replay --rebuild``
therefore reads in a child process (``python -m shared.bus.reader``): an ordered read in the bus's raw read mode
(``JetStreamBus.read``, flow-controlled, restarted after a gap, ending once caught up with the log as it was at
the start) whose messages go to the parent over the child's stdout as frames of a few thousand raw
``(seq, subject, data)`` each, one msgpack array per frame. The parent decodes a frame in one call straight into
``ReadItem``s and does the rest as the live projector does (decode, fold, COPY, the offset row).

The pipe between them: ``<kind: 1 byte><length: 4 bytes, big-endian><payload>`` frames,

- ``D`` data: a msgpack array of ``[seq, subject, data]``, in log order;
- ``K`` keepalive (empty): sent when nothing else was for ``keepalive_s``, so a silent child is a stalled one;
- ``E`` end: ``[last_seq_read, messages]``: the child caught up with the log and exits 0;
- ``X`` error: the reason, text; the child exits 1.

The configuration (the NATS URL may carry credentials) comes as one JSON line on stdin, never on the command
line; the child exits as soon as its stdin closes (the parent is gone). Every wait on either side is bounded:
the parent fails the rebuild (``ReaderFailed``, with the child's exit code and last stderr lines) when the child
exits without an end frame, sends something it cannot read, sends nothing for ``stall_s`` or nothing but
keepalives for ``no_data_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import msgspec
import structlog

from .core import BusNames
from .jetstream import JetStreamBus, ReadItem

log = structlog.get_logger("rebuild-reader")

DATA, KEEPALIVE, END, ERROR = b"D", b"K", b"E", b"X"
_KINDS = (DATA, KEEPALIVE, END, ERROR)
_HEAD = struct.Struct(">cI")
#: a frame larger than this is garbage (frames are cut at ``frame_bytes``, plus one message of at most a few MB)
MAX_FRAME = 256 * 1024 * 1024
_PIPE_SIZE = 1024 * 1024  # asked for on the child's stdout (best effort: Linux allows up to pipe-max-size)


class ReaderConfig(msgspec.Struct, frozen=True, kw_only=True):
    nats_url: str
    namespace: str
    from_seq: int = 1
    frame_items: int = 4096
    frame_bytes: int = 4 * 1024 * 1024
    flush_s: float = 0.05  # a frame goes out at least this often while messages trickle in
    keepalive_s: float = 2.0
    retries: int = 5  # NATS failures in a row the read survives (resuming after the last message sent)
    retry_s: float = 1.0
    connect_timeout_s: float = 30.0


class FrameItem(ReadItem, array_like=True):
    """A ``ReadItem`` decoded from a data frame's ``[seq, subject, data]`` (msgspec builds it, no Python per item)."""


class ReaderFailed(RuntimeError):
    """The reader process died, stalled or sent something that is not a frame: the rebuild stops."""


class _ParentGone(Exception):
    """The child's stdout pipe is closed: nobody reads what the child would send."""


# --- the child ----------------------------------------------------------------------------------------------
class _PipeOut(asyncio.Protocol):
    """Write side of the child's stdout with backpressure: ``drain`` waits while the pipe is full."""

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self._room = asyncio.Event()
        self._room.set()
        self.lost: BaseException | None = None
        self.closed = asyncio.Event()
        self.last_sent = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def pause_writing(self) -> None:
        self._room.clear()

    def resume_writing(self) -> None:
        self._room.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = _ParentGone(f"the pipe to the parent is closed: {exc}")
        self._room.set()
        self.closed.set()

    async def send(self, kind: bytes, payload: bytes = b"") -> None:
        if self.lost is not None:
            raise self.lost
        assert self.transport is not None
        self.transport.write(_HEAD.pack(kind, len(payload)) + payload)
        self.last_sent = time.monotonic()
        await self._room.wait()
        if self.lost is not None:
            raise self.lost

    async def close(self, timeout: float) -> None:
        """Close once what was written has gone into the pipe (at most ``timeout``)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.closed.wait()


async def _pump(cfg: ReaderConfig, out: _PipeOut) -> None:
    """The ordered read from ``from_seq`` to the end of the log, as data frames, then the end frame."""
    enc = msgspec.msgpack.Encoder()
    try:
        async with asyncio.timeout(cfg.connect_timeout_s):
            bus = await JetStreamBus.connect(cfg.nats_url, names=BusNames(cfg.namespace),
                                             name="xbot-rebuild-reader", raw_reads=True)
    except TimeoutError:
        where = ", ".join(urlsplit(u.strip()).hostname or "?" for u in cfg.nats_url.split(","))  # no credentials
        raise ConnectionError(f"no NATS connection to {where} within {cfg.connect_timeout_s:.0f}s") from None
    try:
        next_seq, sent, failures = cfg.from_seq, 0, 0
        frame: list[tuple[int, str, bytes]] = []
        size = 0
        flushed = time.monotonic()
        while True:
            try:
                async for item in bus.read(None, from_seq=next_seq, follow=False, decode_events=False):
                    if item.caught_up:
                        continue
                    frame.append((item.seq, item.subject, item.data))
                    size += len(item.data)
                    next_seq = item.seq + 1
                    if len(frame) >= cfg.frame_items or size >= cfg.frame_bytes or (
                            time.monotonic() - flushed >= cfg.flush_s):
                        await out.send(DATA, enc.encode(frame))
                        sent += len(frame)
                        frame, size, flushed, failures = [], 0, time.monotonic(), 0
                break
            except _ParentGone:
                raise
            except Exception as exc:  # NATS trouble: resume after the last message read, a few times
                failures += 1
                if failures > cfg.retries:
                    raise
                log.warning("rebuild read failed, resuming", error=f"{type(exc).__name__}: {exc}",
                            from_seq=next_seq, attempt=failures)
                await asyncio.sleep(cfg.retry_s)
        if frame:
            await out.send(DATA, enc.encode(frame))
            sent += len(frame)
        await out.send(END, enc.encode([next_seq - 1, sent]))
    finally:
        await bus.close()


async def _keepalive(cfg: ReaderConfig, out: _PipeOut) -> None:
    while True:
        await asyncio.sleep(cfg.keepalive_s / 2)
        if time.monotonic() - out.last_sent >= cfg.keepalive_s:
            await out.send(KEEPALIVE)


async def _parent_gone(stdin: asyncio.StreamReader) -> None:
    while await stdin.read(65536):
        pass


async def _serve(cfg: ReaderConfig, out_fd: int) -> int:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError, ImportError):  # fewer wake-ups of the parent; not needed for correctness
        import fcntl

        fcntl.fcntl(out_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)
    _, out = await loop.connect_write_pipe(_PipeOut, os.fdopen(out_fd, "wb", buffering=0))
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    pump = asyncio.create_task(_pump(cfg, out))
    others = [asyncio.create_task(_keepalive(cfg, out)), asyncio.create_task(_parent_gone(stdin))]
    try:
        await asyncio.wait([pump, *others], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in others:
            t.cancel()
    if not pump.done():  # the parent went away (or the keepalive could not write): nobody to read for
        pump.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(pump, 5)
        return 3
    exc = pump.exception()
    if isinstance(exc, _ParentGone):
        return 3
    code = 0
    if exc is not None:
        log.error("rebuild reader failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(out.send(ERROR, f"{type(exc).__name__}: {exc}".encode()), 5)
        code = 1
    await out.close(10)  # the end (or error) frame reaches the parent before the exit
    return code


def main() -> None:
    from shared.logging import configure_logging

    line = sys.stdin.buffer.readline()
    cfg = msgspec.json.decode(line, type=ReaderConfig)
    out_fd = os.dup(1)  # frames go here; anything else printed to stdout goes to stderr
    os.dup2(2, 1)
    configure_logging("console")
    sys.exit(asyncio.run(_serve(cfg, out_fd)))


# --- the parent ---------------------------------------------------------------------------------------------
class ReaderProcess:
    """The parent's end of one reader process: ``frames()`` yields lists of ``ReadItem`` in log order (events not
    decoded yet) and returns at the end of the log; any failure of the child raises ``ReaderFailed``."""

    #: the child's command line (tests put a stand-in here)
    COMMAND: tuple[str, ...] = (sys.executable, "-m", "shared.bus.reader")
    #: the pipe's reader buffers up to twice this before the child waits (on top of the pipe's 1 MB); a bigger
    #: buffer costs more in copying than it saves in wake-ups (1M events: 88k-96k ev/s at 8 MB, 97k-103k here)
    PIPE_LIMIT = 256 * 1024

    def __init__(self, cfg: ReaderConfig, *, stall_s: float = 30.0, start_timeout_s: float = 30.0,
                 no_data_s: float = 120.0, command: Sequence[str] | None = None):
        self.cfg, self.stall_s, self.start_timeout_s, self.no_data_s = cfg, stall_s, start_timeout_s, no_data_s
        self.command = tuple(command or self.COMMAND)
        self.proc: asyncio.subprocess.Process | None = None
        self.last_seq = cfg.from_seq - 1  # of the last message received
        self.received = 0
        self.stderr: deque[str] = deque(maxlen=8)
        self._stderr_task: asyncio.Task[None] | None = None
        self._dec = msgspec.msgpack.Decoder(list[FrameItem])

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=self.PIPE_LIMIT,
        )
        self._stderr_task = asyncio.create_task(self._collect_stderr(), name="rebuild-reader-stderr")
        assert self.proc.stdin is not None
        self.proc.stdin.write(msgspec.json.encode(self.cfg) + b"\n")
        async with asyncio.timeout(self.start_timeout_s):
            await self.proc.stdin.drain()

    async def _collect_stderr(self) -> None:
        """The child's log, drained (a full pipe would stop it); the last lines are kept for the error message."""
        assert self.proc is not None and self.proc.stderr is not None
        partial = b""
        while chunk := await self.proc.stderr.read(65536):
            *lines, partial = (partial + chunk).split(b"\n")
            partial = partial[-4096:]
            for line in lines:
                text = line.decode(errors="replace").rstrip()[:2000]
                self.stderr.append(text)
                log.debug("rebuild reader", line=text)
        if partial.strip():
            self.stderr.append(partial.decode(errors="replace").rstrip()[:2000])

    async def frames(self) -> AsyncIterator[list[ReadItem]]:
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout
        wait = self.start_timeout_s  # the first frame may take the child's start-up
        quiet = 0.0  # time spent waiting since the last message (keepalives say the child lives, not that it reads)
        while True:
            t0 = time.monotonic()
            kind, n = _HEAD.unpack(await self._read(stdout, _HEAD.size, wait))
            if kind != DATA:
                quiet += time.monotonic() - t0
                if quiet > self.no_data_s:
                    raise await self._failed(f"no message from the reader process for {quiet:.0f}s")
            else:
                quiet = 0.0
            if kind not in _KINDS:
                raise await self._failed(f"a frame of unknown kind {kind!r} from the reader process")
            if n > MAX_FRAME:
                raise await self._failed(f"a frame of {n} bytes from the reader process: not a frame")
            body = await self._read(stdout, n, self.stall_s) if n else b""
            wait = self.stall_s
            if kind == DATA:
                try:
                    items = cast(list[ReadItem], self._dec.decode(body))
                except msgspec.DecodeError as exc:
                    raise await self._failed(f"a data frame the parent cannot read: {exc}") from None
                if items:
                    if items[0].seq <= self.last_seq:  # never expected: the child's read does not go back
                        items = [it for it in items if it.seq > self.last_seq]
                        if not items:
                            continue
                    self.last_seq = items[-1].seq
                    self.received += len(items)
                    yield items
            elif kind == END:
                return
            elif kind == ERROR:
                raise await self._failed(f"the reader process failed: {body.decode(errors='replace')}")

    async def _read(self, stdout: asyncio.StreamReader, n: int, wait: float) -> bytes:
        try:
            async with asyncio.timeout(wait):
                return await stdout.readexactly(n)
        except TimeoutError:
            raise await self._failed(f"nothing from the reader process for {wait:.0f}s") from None
        except asyncio.IncompleteReadError:
            raise await self._failed("the reader process exited before the end of the log") from None

    async def _failed(self, why: str) -> ReaderFailed:
        code = await self._stop()
        tail = " | ".join(self.stderr) or "(no output)"
        return ReaderFailed(f"rebuild reader: {why} (exit code {code}, after seq {self.last_seq}); stderr: {tail}")

    async def _stop(self) -> int | None:
        """Close the child's stdin (it exits), then terminate and kill it if it does not; reap it."""
        proc = self.proc
        if proc is None:
            return None
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        for signal_it, grace in ((None, 2.0), (proc.terminate, 2.0), (proc.kill, 5.0)):
            if proc.returncode is not None:
                break
            if signal_it is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal_it()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await proc.wait()
        if self._stderr_task is not None:  # the last lines, if the pipe closed with the child
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), 1.0)
        return proc.returncode

    async def close(self) -> None:
        await self._stop()
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            with contextlib.suppress(BaseException):
                await self._stderr_task


def spec_of(bus: Any, nats_url: str | None) -> tuple[str, str]:
    """(NATS URL, namespace) for a reader process reading what ``bus`` reads."""
    url = nats_url
    if not url:
        connected = getattr(getattr(bus, "nc", None), "connected_url", None)
        if connected is None:
            raise ValueError("the rebuild reader needs a NATS URL")
        url = connected.geturl()
    return url, bus.names.namespace


if __name__ == "__main__":
    main()
