"""Snapshots of a service's in-memory state with the stream sequence it reflects, in the JetStream object store.

A service's state is a projection of the log (promise 1). Replaying the whole log at every start costs time in
proportion to the log (about 40 s for 1M events), so each service saves its state now and then, with the stream
sequence of the last event applied, and a restart loads the newest snapshot and replays only the tail.

A snapshot is only an optimisation: it is used when it is certainly equivalent to a replay, and ignored (full
replay, a warning in the log) otherwise:

* the code that builds the state changed (``fingerprint``: a hash of the service's and ``shared``'s sources, the
  Python and numpy versions), so an upgrade costs one full replay and never restores a state the new code
  would not have built;
* the event stream is not the one the snapshot was taken from (its creation time differs), or it ends before the
  snapshot's sequence;
* the blob cannot be decoded.

The state is taken synchronously between two events (``apply`` is synchronous and the projection awaits
nothing between applying an event and recording its sequence), so the pickled state and its sequence always
agree. A dataclass state is encoded as typed msgpack with msgspec; other states (numpy matrices, custom classes)
are pickled. The blob is read only from the deployment's own bucket, which only its services can write (the
same trust as the event stream).
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import pickle
import sys
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import structlog

log = structlog.get_logger("snapshots")

FORMAT = 2
_ROOT = Path(__file__).resolve().parents[1]


class SnapshotEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    format: int
    service: str
    fingerprint: str
    stream: str
    stream_created: str
    seq: int
    events_applied: int
    taken_at: float
    codec: str  # "msgspec": zlib(msgpack(state)), decoded with the state's own type; "pickle": zlib(pickle(vars))
    state: bytes


@dataclass(frozen=True)
class Restored:
    seq: int
    events_applied: int
    bytes: int
    seconds: float
    taken_at: float


def code_fingerprint(service: str, root: Path = _ROOT) -> str:
    """A hash of everything that shapes a service's state: its package and ``shared``, Python and numpy."""
    import numpy

    h = hashlib.sha256(f"{FORMAT}|{sys.version_info[:2]}|{numpy.__version__}|{service}".encode())
    dirs = [root / "shared", root / "services" / service]
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:32]


def state_dict(state: Any) -> dict[str, Any]:
    try:
        return vars(state)
    except TypeError:
        raise TypeError(f"{type(state).__name__} has no __dict__; a snapshot state must be a plain object") from None


def encode_state(state: Any) -> tuple[str, bytes]:
    """The state as bytes. A dataclass msgspec can encode goes as typed msgpack (about 18x faster than pickle for
    dicts of Structs); anything else (numpy matrices, custom classes) is pickled."""
    state_dict(state)
    if dataclasses.is_dataclass(state):
        try:
            return "msgspec", zlib.compress(msgspec.msgpack.encode(state), 1)
        except (TypeError, msgspec.EncodeError):
            pass
    return "pickle", zlib.compress(pickle.dumps(vars(state), protocol=pickle.HIGHEST_PROTOCOL), 1)


def restore_per_account(current: dict[str, Any], restored: dict[str, Any], empty: Any) -> None:
    """Restore a state of per-account states in place: an account's state object already handed out (to a job's
    dependencies) is the one that now holds its restored attributes; an account the snapshot does not have is
    reset with ``empty()``. The ``restore_attributes`` of each per-account container calls this."""
    for account, inner in restored.items():
        held = current.get(account)
        if held is None:
            current[account] = inner
        else:
            vars(held).clear()
            vars(held).update(vars(inner))
    for account in set(current) - set(restored):
        vars(current[account]).clear()
        vars(current[account]).update(vars(empty()))


def restore_into(state: Any, blob: bytes, codec: str = "pickle") -> None:
    """Replace ``state``'s attributes in place (handlers and closures keep their reference to the object)."""
    raw = zlib.decompress(blob)
    gc_was = gc.isenabled()
    gc.disable()  # millions of new objects: the cyclic collector would run hundreds of times for nothing
    try:
        if codec == "msgspec":
            loaded = vars(msgspec.msgpack.decode(raw, type=type(state)))
        elif codec == "pickle":
            loaded = pickle.loads(raw)  # noqa: S301 - our own bucket, see the module docstring
        else:
            raise ValueError(f"unknown snapshot codec {codec!r}")
    finally:
        if gc_was:
            gc.enable()
    if not isinstance(loaded, dict):
        raise TypeError("snapshot state is not an attribute dict")
    target = state_dict(state)
    missing = set(target) ^ set(loaded)
    if missing:
        raise ValueError(f"snapshot attributes differ from the state's: {sorted(missing)}")
    restore = getattr(state, "restore_attributes", None)
    if restore is not None:  # a state of states keeps the identity of the inner ones others hold
        restore(loaded)
        return
    target.clear()
    target.update(loaded)


async def _get(obs: Any, name: str) -> bytes:
    """An object's bytes, checked against its SHA-256 digest. Read here rather than with nats-py's ``get``: its
    plain form appends chunk to bytes (quadratic: 75 s for 100 MB) and its ``writeinto`` form hands every 128 kB
    chunk to a thread (0.8 s for 17 MB on a busy machine); this reads the chunks in order from an ordered
    consumer and joins them once (0.1 s for 17 MB)."""
    import base64
    import hashlib

    from nats.js.errors import BadObjectMetaError, DigestMismatchError
    from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_DIGEST_TYPE

    info = await obs.get_info(name)
    if not info.nuid or info.is_link():
        raise BadObjectMetaError
    size = int(info.size or 0)
    if size == 0:
        return b""
    subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=obs._name, obj=info.nuid)
    chunks: list[bytes] = []
    got = 0
    h = hashlib.sha256()
    sub = await obs._js.subscribe(subject, ordered_consumer=True, pending_msgs_limit=int(info.chunks or 0) + 16,
                                  pending_bytes_limit=size + (1 << 20))
    try:
        while got < size:
            msg = await sub.next_msg(timeout=10)
            chunks.append(msg.data)
            h.update(msg.data)
            got += len(msg.data)
    finally:
        await sub.unsubscribe()
    digest = (info.digest or "").replace(OBJ_DIGEST_TYPE, "").replace(OBJ_DIGEST_TYPE.upper(), "")
    if got != size or h.digest() != base64.urlsafe_b64decode(digest):
        raise DigestMismatchError
    return b"".join(chunks)


def _created(info: Any) -> str:
    created = getattr(info, "created", None)
    if isinstance(created, datetime):
        return created.isoformat()
    return str(created or "")


class SnapshotStore:
    """Save and load one service's snapshot (object ``<service>`` in the ``<ns>_snapshots`` bucket)."""

    def __init__(self, bus: Any, service: str, fingerprint: str | None = None):
        self.bus, self.service = bus, service
        self.fingerprint = fingerprint or code_fingerprint(service)
        self._obs: Any = None

    async def _store(self) -> Any:
        if self._obs is None:
            self._obs = await self.bus.object_store_bucket()
        return self._obs

    async def _stream(self) -> tuple[str, int]:
        info = await self.bus.js.stream_info(self.bus.names.events_stream)
        return _created(info), int(info.state.last_seq)

    async def save(self, state: Any, seq: int, events_applied: int) -> int:
        """Write the snapshot; returns its size in bytes. ``state`` is encoded before the first await, so it
        is the state at ``seq``."""
        codec, blob = encode_state(state)
        created, _ = await self._stream()
        env = SnapshotEnvelope(
            format=FORMAT, service=self.service, fingerprint=self.fingerprint,
            stream=self.bus.names.events_stream, stream_created=created, seq=seq,
            events_applied=events_applied, taken_at=time.time(), codec=codec, state=blob,
        )
        data = msgspec.msgpack.encode(env)
        obs = await self._store()
        await obs.put(self.service, data)
        return len(data)

    async def load_into(self, state: Any) -> Restored | None:
        """Restore the newest valid snapshot into ``state``; None (and ``state`` untouched) when there is none
        or it cannot be used."""
        from nats.js.errors import ObjectNotFoundError

        t0 = time.perf_counter()
        try:
            data = await _get(await self._store(), self.service)
        except ObjectNotFoundError:
            return None
        except Exception as exc:
            log.warning("snapshot unreadable; full replay", service=self.service, error=str(exc))
            return None
        try:
            env = msgspec.msgpack.decode(data, type=SnapshotEnvelope)
        except Exception as exc:
            log.warning("snapshot undecodable; full replay", service=self.service, error=str(exc))
            return None
        created, last_seq = await self._stream()
        why = None
        if env.format != FORMAT or env.fingerprint != self.fingerprint:
            why = "the code changed since it was taken"
        elif env.stream != self.bus.names.events_stream or env.stream_created != created:
            why = "the event stream was recreated"
        elif env.seq > last_seq:
            why = f"it is ahead of the stream (seq {env.seq} > last {last_seq})"
        if why is not None:
            log.warning(f"snapshot ignored: {why}; full replay", service=self.service, seq=env.seq)
            return None
        try:
            restore_into(state, env.state, env.codec)
        except Exception as exc:
            log.warning("snapshot state unusable; full replay", service=self.service, error=str(exc))
            return None
        return Restored(env.seq, env.events_applied, len(data), time.perf_counter() - t0, env.taken_at)

    async def drop(self) -> bool:
        from nats.js.errors import ObjectNotFoundError

        obs = await self._store()
        try:
            await obs.delete(self.service)
        except ObjectNotFoundError:
            return False
        return True


async def list_snapshots(bus: Any) -> list[dict[str, Any]]:
    """Every service's snapshot: its sequence, size and age (for ``xbot snapshots``)."""
    obs = await bus.object_store_bucket()
    out = []
    try:
        infos = await obs.list()
    except Exception:  # an empty bucket answers "not found"
        return []
    for info in infos:
        if getattr(info, "deleted", False):
            continue
        try:
            env = msgspec.msgpack.decode(await _get(obs, info.name), type=SnapshotEnvelope)
        except Exception:
            out.append({"service": info.name, "seq": None, "bytes": info.size, "taken_at": None})
            continue
        out.append({"service": env.service, "seq": env.seq, "bytes": info.size, "events_applied": env.events_applied,
                    "taken_at": env.taken_at})
    return out
