"""`xbot up`: embedded NATS + PostgreSQL + every service, in shadow mode, until Ctrl-C (then nothing remains)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from .embedded import EmbeddedNats, EmbeddedPostgres, free_port

SERVICES = ("gateway", "planner", "replier", "poster", "collector", "learner")


def existing_services() -> list[str]:
    return [s for s in SERVICES if importlib.util.find_spec(f"services.{s}.__main__") is not None]


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def admin_token(home: Path) -> str:
    f = home / "admin_token"
    if os.environ.get("ADMIN_TOKEN"):
        return os.environ["ADMIN_TOKEN"]
    if f.exists():
        return f.read_text().strip()
    tok = secrets.token_urlsafe(24)
    f.write_text(tok)
    f.chmod(0o600)
    return tok


def clock_line(mode: str, clock_speed: float) -> str:
    """What the services' clock will be, as they choose it (``shared.service``): the shadow clock runs at
    SHADOW_CLOCK_SPEED in shadow mode only; live mode always runs on the wall clock."""
    if mode != "shadow":
        return f"{mode}, wall clock (live mode never runs on the shadow clock; --clock-speed is for shadow mode)"
    if clock_speed == 1:
        return "shadow, wall clock (shadow clock x1)"
    return f"shadow, shadow clock x{clock_speed:g} (an hour every {60 / clock_speed:g} min)"


async def _prepare(nats_url: str, db_url: str, env: dict[str, str]) -> tuple[int, str]:
    """Streams, buckets and tables; returns the events already in the log and the MODE the services will run in
    (the environment's, or a runtime override in the flags bucket: what each service reads at its start)."""
    import asyncpg

    from shared.bus import BusNames, JetStreamBus
    from shared.config import CommonSettings, load_settings
    from shared.db import apply_migrations
    from shared.flagstore import FlagStore

    settings = load_settings(CommonSettings, env)
    bus = await JetStreamBus.connect(nats_url, names=BusNames(settings.XBOT_NAMESPACE), settings=settings.stream_settings())
    try:
        await bus.ensure()
        events = await bus.last_seq()
        store = FlagStore(bus, env)
        await store.start(watch=False)
        try:
            mode = store.current().MODE
        finally:
            await store.stop()
    finally:
        await bus.close()
    conn = await asyncpg.connect(db_url)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return events, mode


def run_up(home: Path, *, clock_speed: float, services: list[str] | None = None, echo=print) -> int:
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    nats = EmbeddedNats(home / "nats", name="xbot-up")
    pg = EmbeddedPostgres(home / "pg" / "data")
    children: list[tuple[str, subprocess.Popen]] = []
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        echo(f"xbot up: data in {home}")
        nats.start()
        echo(f"  NATS JetStream  {nats.url}  (store {home / 'nats'})")
        pg.start()
        echo(f"  PostgreSQL      {pg.url}")
        gport = int(os.environ.get("GATEWAY_PORT", "8080"))
        if not _port_free(gport):
            new = free_port()
            echo(f"  port {gport} is taken; the gateway uses {new} instead (set GATEWAY_PORT to choose)")
            gport = new
        token = admin_token(home)
        env = dict(os.environ)
        env.setdefault("MODE", "shadow")
        env.update(
            NATS_URL=nats.url, DATABASE_URL=pg.url, XBOT_HOME=str(home), GATEWAY_PORT=str(gport),
            GATEWAY_HOST=env.get("GATEWAY_HOST", "127.0.0.1"), ADMIN_TOKEN=token,
            SHADOW_CLOCK_SPEED=str(clock_speed), PYTHONUNBUFFERED="1",
        )
        env.setdefault("LOG_FORMAT", "console")
        # the shadow demo moves fast enough to watch: outcomes and models within minutes
        for k, v in {"COLLECT_INTERVAL_HOURS": "0.5", "LEARN_INTERVAL_MINUTES": "30"}.items():
            env.setdefault(k, v)
        events, mode = asyncio.run(_prepare(nats.url, pg.url, env))
        echo(f"  event log       {events} events already in the log" + (" (resuming)" if events else ""))
        names = services or existing_services()
        for name in names:
            logf = open(home / "logs" / f"{name}.log", "ab")
            p = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"], env=env, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            children.append((name, p))
        (home / "up.json").write_text(
            json.dumps({"nats_url": nats.url, "database_url": pg.url, "gateway": f"http://127.0.0.1:{gport}",
                        "pid": os.getpid(), "namespace": env.get("XBOT_NAMESPACE", "xbot")})
        )
        echo(f"  services        {', '.join(names)}  (logs in {home / 'logs'})")
        echo(f"  mode            {clock_line(mode, clock_speed)}")
        echo(f"  gateway         http://{env['GATEWAY_HOST']}:{gport}   dashboard /  API docs /docs")
        echo(f"  admin token     {token}")
        echo(f"  try: curl -s -XPOST -H 'Authorization: Bearer {token}' 'http://127.0.0.1:{gport}/admin/jobs/run?job=plan'")
        echo("Ctrl-C stops everything.")
        restarts: dict[str, list[float]] = {}
        given_up: set[str] = set()
        while not stopping:
            time.sleep(0.5)
            for i, (name, p) in enumerate(children):
                if stopping or name in given_up or p.poll() is None:
                    continue
                recent = [t for t in restarts.get(name, []) if time.monotonic() - t < 60] + [time.monotonic()]
                restarts[name] = recent
                logpath = home / "logs" / f"{name}.log"
                if len(recent) > 5:
                    echo(f"  {name} failed {len(recent)} times within a minute; not restarting it — see {logpath}")
                    given_up.add(name)
                    continue
                echo(f"  {name} exited with {p.returncode}; restarting — see {logpath}")
                logf = open(logpath, "ab")
                children[i] = (name, subprocess.Popen(
                    [sys.executable, "-m", f"services.{name}"], env=env, stdout=logf, stderr=subprocess.STDOUT,
                    start_new_session=True))
        return 0
    finally:
        echo("stopping…")
        for _, p in children:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, p in children:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        pg.stop()
        nats.stop()
        with contextlib.suppress(FileNotFoundError):
            (home / "up.json").unlink()
        for s, h in old.items():
            signal.signal(s, h)
        echo("stopped; nothing left running.")
