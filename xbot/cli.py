"""The `xbot` command line. Every command explains itself with --help."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="xbot: an autonomous X account as event-sourced services over NATS JetStream. "
    "Start with `xbot up` (or `make up`); inspect with `xbot events`, `xbot flags`, `xbot streams`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
events_app = typer.Typer(help="Read the event log (the truth every table is projected from).", no_args_is_help=True)
flags_app = typer.Typer(help="Read and set runtime flag overrides (seen by every replica without a restart).",
                        no_args_is_help=True)
accounts_app = typer.Typer(
    help="The X accounts of this stack: their profiles in the accounts file (XBOT_ACCOUNTS_FILE, else "
         "$XBOT_HOME/accounts.toml, else one account `default` from the environment) and in the log.",
    no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(flags_app, name="flags")
app.add_typer(accounts_app, name="accounts")

HomeOpt = Annotated[Path, typer.Option("--home", envvar="XBOT_HOME", help="Where data lives (NATS store, PostgreSQL, logs).")]


def _connection() -> tuple[str, str | None, str]:
    """NATS URL, database URL and namespace: from the environment, else from a running `xbot up`."""
    home = Path(os.environ.get("XBOT_HOME", ".xbot"))
    up: dict[str, Any] = {}
    f = home / "up.json"
    if f.exists():
        up = json.loads(f.read_text())
    nats_url = os.environ.get("NATS_URL") or up.get("nats_url") or "nats://127.0.0.1:4222"
    db_url = os.environ.get("DATABASE_URL") or up.get("database_url")
    ns = os.environ.get("XBOT_NAMESPACE") or up.get("namespace") or "xbot"
    return nats_url, db_url, ns


async def _bus() -> Any:
    from shared.bus import BusNames, JetStreamBus

    nats_url, _, ns = _connection()
    try:
        return await JetStreamBus.connect(nats_url, names=BusNames(ns), connect_timeout=3)
    except Exception as exc:
        typer.echo(f"cannot reach NATS at {nats_url}: {exc} (is `xbot up` running? set NATS_URL)", err=True)
        raise typer.Exit(2) from None


@app.command()
def up(
    home: HomeOpt = Path(".xbot"),
    clock_speed: Annotated[float, typer.Option(
        help="Shadow clock speed: 60 = an hour of the account per minute. Shadow mode only: with MODE=live the "
             "services run on the wall clock whatever this says.")] = 60.0,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these services (repeatable).")] = None,
) -> None:
    """Start embedded NATS JetStream and PostgreSQL, create streams, buckets and tables, and run every service in
    shadow mode (unless MODE says live). Prints the gateway address, the mode and the clock the services run on,
    and the admin token. Data survives restarts; Ctrl-C stops everything."""
    from .supervisor import run_up

    raise typer.Exit(run_up(home, clock_speed=clock_speed, services=only))


@app.command()
def service(
    name: Annotated[str, typer.Argument(help="gateway | planner | replier | poster | collector | learner")],
) -> None:
    """Run one service in the foreground (what docker compose and Kubernetes run). Configuration from the environment."""
    import runpy

    from .supervisor import SERVICES

    if name not in SERVICES:
        typer.echo(f"unknown service {name!r}; choose one of: {', '.join(SERVICES)}", err=True)
        raise typer.Exit(2)
    sys.argv = [f"services.{name}"]
    runpy.run_module(f"services.{name}", run_name="__main__", alter_sys=True)


def _fmt(item: Any) -> str:
    ev = item.event
    if ev is None:
        return f"{item.seq:>8}  {item.subject}  <undecodable: {item.error}>"
    body = {k: v for k, v in json.loads(item.data).items() if k not in ("embedding",)}
    return f"{item.seq:>8}  {item.subject}  {json.dumps(body, ensure_ascii=False)[:400]}"


@events_app.command("tail")
def events_tail(
    subject: Annotated[str | None, typer.Option(help="Filter, e.g. 'xbot.evt.decision.*.posted'.")] = None,
    last: Annotated[int, typer.Option(help="Start this many events before the end.")] = 20,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", "-f", help="Keep printing new events.")] = False,
) -> None:
    """Print the latest events of the log (optionally one subject), and follow it with -f."""

    async def run() -> None:
        bus = await _bus()
        try:
            end = await bus.last_seq()
            async for item in bus.read(subject, from_seq=max(1, end - last + 1), follow=follow):
                if item.caught_up:
                    continue
                typer.echo(_fmt(item))
        finally:
            await bus.close()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


@events_app.command("show")
def events_show(decision_id: Annotated[str, typer.Argument(help="The decision's id.")]) -> None:
    """One decision's whole history, of whichever account: queued or skipped, claims, attempts, posted,
    outcomes."""

    async def run() -> int:
        bus = await _bus()
        try:
            items = []
            for aggregate in ("decision", "outcome"):
                default_shape = bus.names.history(aggregate, decision_id)  # validates the id as a token
                for subject in (default_shape, f"{bus.names.evt_prefix}.*.{aggregate}.{decision_id}.*"):
                    items += [i async for i in bus.read(subject)]
        finally:
            await bus.close()
        items = sorted((i for i in items if not i.caught_up), key=lambda i: i.seq)
        if not items:
            typer.echo(f"no events for decision {decision_id}", err=True)
            return 1
        for i in items:
            typer.echo(_fmt(i))
        return 0

    raise typer.Exit(asyncio.run(run()))


@flags_app.command("get")
def flags_get(name: Annotated[str | None, typer.Argument(help="One flag; all when omitted.")] = None) -> None:
    """Effective flag values with where each came from (default, env of this shell, or runtime override)."""
    from shared.flags import env_view
    from shared.flagstore import FlagStore

    async def run() -> None:
        bus = await _bus()
        try:
            store = FlagStore(bus, os.environ)
            await store.start(watch=False)
            flags = store.current()
            await store.stop()
        finally:
            await bus.close()
        data = {k: getattr(flags, k) for k in flags.__struct_fields__ if k != "sources"}
        if name:
            if name not in data:
                typer.echo(f"unknown flag {name!r}", err=True)
                raise typer.Exit(2)
            typer.echo(f"{name}={data[name]}  ({flags.sources.get(name)})")
            return
        for k, v in data.items():
            typer.echo(f"{k}={v}  ({flags.sources.get(k)})")
        typer.echo(f"summary: {env_view(flags)['summary']}")

    asyncio.run(run())


@flags_app.command("set")
def flags_set(
    name: Annotated[str, typer.Argument(help="Flag name, e.g. POSTING_DISABLED.")],
    value: Annotated[str, typer.Argument(help="New value, or 'unset' to remove the override.")],
    actor: Annotated[str, typer.Option(help="Who made the change (audited in flag.changed).")] = "cli",
) -> None:
    """Set a runtime override (the go-live switches, no redeploy). Every replica sees it; a flag.changed event records it."""
    from shared.errors import ConfigError
    from shared.flagstore import FlagStore

    async def run() -> None:
        bus = await _bus()
        try:
            store = FlagStore(bus, os.environ)
            await store.start(watch=False)
            try:
                flags = await store.set(name, None if value == "unset" else value, actor=actor, source="cli")
            except ConfigError as exc:
                typer.echo(f"refused: {exc}", err=True)
                raise typer.Exit(2) from None
            finally:
                await store.stop()
            typer.echo(f"{name}={getattr(flags, name)}  ({flags.sources.get(name)})")
        finally:
            await bus.close()

    asyncio.run(run())


FileOpt = Annotated[Path | None, typer.Option(
    "--file", help="The accounts file (default: XBOT_ACCOUNTS_FILE, else $XBOT_HOME/accounts.toml).")]


def _profiles(file: Path | None) -> tuple[list[Any], str]:
    """The accounts of ``file`` (or of this environment), validated: every problem on its own line, exit 2."""
    from shared.accounts import AccountsError, load_accounts, load_accounts_file
    from shared.accounts.book import accounts_source

    try:
        if file is not None:
            return load_accounts_file(file, os.environ), f"file:{file}"
        return load_accounts(os.environ), accounts_source(os.environ)
    except AccountsError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(2) from None


@accounts_app.command("check")
def accounts_check(file: FileOpt = None) -> None:
    """Validate the accounts file: one line per problem (naming the account and the field), exit 2 if any."""
    profiles, source = _profiles(file)
    typer.echo(f"{len(profiles)} account(s) valid ({source}): {', '.join(p.id for p in profiles)}")


@accounts_app.command("list")
def accounts_list(file: FileOpt = None) -> None:
    """The accounts of the file, each with what the log last recorded for it (when NATS is reachable)."""
    from shared.accounts import profile_digest
    from shared.accounts.book import read_book

    profiles, source = _profiles(file)

    async def recorded() -> Any:
        bus = await _bus()
        try:
            return await read_book(bus)
        finally:
            await bus.close()

    try:
        book = asyncio.run(recorded())
    except typer.Exit:
        book = None
    typer.echo(f"accounts of {source}:")
    for p in profiles:
        posting = "posting disabled" if p.flags.get("POSTING_DISABLED") == "true" else "posting per flags"
        state = "log not read"
        if book is not None:
            last = book.profiles.get(p.id)
            state = ("not recorded yet" if last is None else
                     "as recorded" if profile_digest(last) == profile_digest(p) else
                     f"differs from the log (last from {book.sources.get(p.id)})")
        typer.echo(f"  {p.id:<16} @{p.username or '-':<16} {p.publisher:<9} {len(p.topics)} topics  "
                   f"{p.timezone}  {posting}  [{state}]")


@accounts_app.command("show")
def accounts_show(account: Annotated[str, typer.Argument(help="The account id.")], file: FileOpt = None) -> None:
    """One account's profile, as an \\[\\[account]] table of the accounts file."""
    from shared.accounts import dump_accounts

    profiles, _ = _profiles(file)
    found = [p for p in profiles if p.id == account]
    if not found:
        typer.echo(f"no account {account!r} (accounts: {', '.join(p.id for p in profiles)})", err=True)
        raise typer.Exit(2)
    typer.echo(dump_accounts(found), nl=False)


@accounts_app.command("apply")
def accounts_apply(file: FileOpt = None) -> None:
    """Validate the file, then record each account whose profile changed as account.configured.

    The services follow the log, so a change applies without a restart. Unchanged accounts write nothing."""
    from shared.accounts import profile_digest
    from shared.accounts.book import read_book, record_accounts

    profiles, source = _profiles(file)

    async def run() -> None:
        bus = await _bus()
        try:
            before = await read_book(bus)
            await record_accounts(bus, profiles, source)
            after = await read_book(bus)
        finally:
            await bus.close()
        for p in profiles:
            if before.last_seq.get(p.id) != after.last_seq.get(p.id):
                typer.echo(f"{p.id}: configured (seq {after.last_seq[p.id]}, digest {profile_digest(p)[:12]})")
            else:
                typer.echo(f"{p.id}: unchanged")

    asyncio.run(run())


@app.command()
def streams() -> None:
    """Stream and consumer state: messages, bytes, sequences, and each consumer's pending and redelivered counts."""

    async def run() -> None:
        bus = await _bus()
        try:
            for s in (bus.names.events_stream, bus.names.commands_stream, bus.names.dlq_stream):
                try:
                    info = await bus.js.stream_info(s)
                except Exception as exc:
                    typer.echo(f"{s}: {exc}")
                    continue
                st = info.state
                typer.echo(f"{s}: messages={st.messages} bytes={st.bytes} first_seq={st.first_seq} last_seq={st.last_seq} "
                           f"replicas={info.config.num_replicas}")
                for c in await bus.js.consumers_info(s):
                    typer.echo(f"  consumer {c.name}: pending={c.num_pending} ack_pending={c.num_ack_pending} "
                               f"redelivered={c.num_redelivered} delivered={c.delivered.stream_seq}")
        finally:
            await bus.close()

    asyncio.run(run())


@app.command()
def snapshots(
    drop: Annotated[list[str] | None, typer.Option("--drop", help="Delete this service's snapshot (repeatable); "
                                                    "its next start replays the whole log.")] = None,
) -> None:
    """Each service's state snapshot: the stream sequence it reflects, its size and age. A restart loads it and
    replays only the events after it; a snapshot of other code, settings or another stream is ignored."""
    import time

    from shared.snapshots import SnapshotStore, list_snapshots

    async def run() -> None:
        bus = await _bus()
        try:
            for name in drop or []:
                found = await SnapshotStore(bus, name, fingerprint="-").drop()
                typer.echo(f"{name}: {'dropped' if found else 'no snapshot'}")
            if drop:
                return
            rows = await list_snapshots(bus)
            if not rows:
                typer.echo("no snapshots yet (a service saves one after SNAPSHOT_EVERY_EVENTS new events and on stop)")
            for r in rows:
                age = f"{time.time() - r['taken_at']:.0f}s ago" if r.get("taken_at") else "unreadable"
                typer.echo(f"{r['service']}: seq={r['seq']} events_applied={r.get('events_applied')} "
                           f"bytes={r['bytes']} taken {age}")
        finally:
            await bus.close()

    asyncio.run(run())


@app.command("run")
def run_job(
    job: Annotated[str, typer.Argument(help="plan | reply | posting | collect | learn")],
) -> None:
    """Trigger one job run now (publishes xbot.cmd.<job>, like POST /admin/jobs/run)."""
    import uuid

    from shared.events import JOBS, Command, utcnow

    if job not in JOBS:
        typer.echo(f"unknown job {job!r}; allowed: {', '.join(JOBS)}", err=True)
        raise typer.Exit(2)

    async def run() -> None:
        bus = await _bus()
        try:
            cmd = Command(job=job, run_id=f"{job}-{uuid.uuid4().hex[:12]}", requested_at=utcnow(), requested_by="cli")
            await bus.publish_command(cmd)
            typer.echo(f"queued {job} run_id={cmd.run_id}")
        finally:
            await bus.close()

    asyncio.run(run())


@app.command()
def replay(
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Drop the read models and rebuild them from the log.")] = False,
) -> None:
    """Rebuild the PostgreSQL read models from the event log, with a progress bar and the final rate."""
    if not rebuild:
        typer.echo("nothing to do: pass --rebuild to drop and rebuild the read models from the log", err=True)
        raise typer.Exit(2)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from services.gateway.replay import rebuild as do_rebuild

    nats_url, db_url, ns = _connection()
    if not db_url:
        typer.echo("DATABASE_URL is missing (or start `xbot up`)", err=True)
        raise typer.Exit(2)
    with Progress(TextColumn("rebuild"), BarColumn(), TextColumn("{task.completed}/{task.total} events"),
                  TimeRemainingColumn(), transient=False) as progress:
        task = progress.add_task("rebuild", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        stats = asyncio.run(do_rebuild(nats_url=nats_url, database_url=db_url, namespace=ns, on_progress=on_progress))
    typer.echo(f"rebuilt from {stats.events} events in {stats.seconds:.2f}s ({stats.rate:,.0f} events/s)")


@app.command()
def config() -> None:
    """Every setting the code reads, its default, which services read it and what it means."""
    from .settings_doc import rows

    for var, default, used, doc in rows():
        typer.echo(f"{var}={default}  [{used}]  {doc}")


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes (seconds, for smoke tests).")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only these benchmarks (repeatable).")] = None,
) -> None:
    """Run the benchmarks against real NATS and PostgreSQL (started in a temp dir) and print each figure with its
    baseline measured in the same run, the ratio and the goal. Also written to bench/results/latest.json."""
    from bench.run import BENCHMARKS
    from bench.run import main as bench_main

    unknown = [o for o in only or [] if o not in BENCHMARKS]
    if unknown:
        typer.echo(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}", err=True)
        raise typer.Exit(2)
    bench_main(quick=quick, only=only)


def main() -> None:
    try:
        app()
    except Exception as exc:  # one clear line instead of a traceback for the errors users meet
        from nats.errors import NoRespondersError
        from nats.js.errors import NoStreamResponseError, NotFoundError

        if isinstance(exc, NoStreamResponseError | NoRespondersError | NotFoundError):
            nats_url, _, ns = _connection()
            typer.echo(f"no xbot streams at {nats_url} (namespace {ns}): is `xbot up` running? "
                       "Set NATS_URL / XBOT_HOME to point at it.", err=True)
            raise SystemExit(2) from None
        raise


if __name__ == "__main__":
    main()
