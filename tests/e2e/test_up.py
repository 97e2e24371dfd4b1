"""`xbot up` (what `make up` runs): starts NATS, PostgreSQL and the services, prints where they are, resumes
from its log on a second start, and leaves no process behind after Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from xbot.embedded import free_port, wait_port

pytestmark = pytest.mark.e2e


def _ours(home: Path) -> list[psutil.Process]:
    found = []
    h = str(home)
    real = str((home / "pg" / "data").resolve()) if (home / "pg" / "data").exists() else h
    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            env = p.info["environ"] or {}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if h in cmd or real in cmd or env.get("XBOT_HOME") == h:
            found.append(p)
    return [p for p in found if p.pid != os.getpid()]


def _start(home: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL", "ADMIN_TOKEN")}
    env.update(GATEWAY_PORT=str(port), LOG_FORMAT="json")
    return subprocess.Popen(
        [sys.executable, "-m", "xbot", "up", "--home", str(home), "--clock-speed", "60"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_ready(proc: subprocess.Popen, home: Path, timeout: float = 90) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise AssertionError("xbot up exited:\n" + "".join(lines))
            continue
        lines.append(line)
        if line.startswith("Ctrl-C stops everything"):
            return lines
    raise AssertionError("xbot up did not come up:\n" + "".join(lines))


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return out


def test_up_resume_and_clean_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    proc = _start(home, port)
    try:
        lines = _wait_ready(proc, home)
        text = "".join(lines)
        token = (home / "admin_token").read_text().strip()
        assert f"admin token     {token}" in text
        assert "mode            shadow, shadow clock x60 (an hour every 1 min)" in text
        assert f"http://127.0.0.1:{port}" in text
        up = json.loads((home / "up.json").read_text())
        assert up["nats_url"] != "nats://127.0.0.1:4222"  # never assumes the default port is free

        # write something to the log through the CLI, as a user would
        env = dict(os.environ, XBOT_HOME=str(home))
        env.pop("NATS_URL", None)
        r = subprocess.run([sys.executable, "-m", "xbot", "flags", "set", "POSTING_DISABLED", "true"],
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    finally:
        out = _stop(proc)
    assert "stopped; nothing left running." in out
    time.sleep(0.5)
    assert _ours(home) == []

    proc = _start(home, port)
    try:
        text = "".join(_wait_ready(proc, home))
        assert "(resuming)" in text, text
        assert (home / "admin_token").read_text().strip() in text  # the same token
    finally:
        _stop(proc)
    time.sleep(0.5)
    assert _ours(home) == []


def test_up_runs_the_accounts_of_its_home(tmp_path: Path) -> None:
    """`make up` with an accounts file in its home: both accounts are recorded, planned for and reported."""
    import urllib.request

    home = tmp_path / "home"
    home.mkdir()
    example = Path(__file__).parents[2] / "docs" / "accounts.example.toml"
    (home / "accounts.toml").write_text(example.read_text())
    port = free_port()
    proc = _start(home, port)
    try:
        _wait_ready(proc, home)
        token = (home / "admin_token").read_text().strip()
        base = f"http://127.0.0.1:{port}"
        wait_port(port, timeout=60)  # the gateway listens once it has caught up with the log
        req = urllib.request.Request(f"{base}/admin/jobs/run?job=plan", method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
        urllib.request.urlopen(req, timeout=10).read()
        metrics: dict = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            metrics = json.loads(urllib.request.urlopen(f"{base}/api/metrics", timeout=10).read())
            accounts = metrics.get("accounts", {})
            if all(accounts.get(a, {}).get("queueSize", 0) > 0 for a in ("runner", "lawyer")):
                break
            time.sleep(0.5)
        assert {"runner", "lawyer"} <= set(metrics["accounts"]), metrics.get("accounts")
        assert metrics["accounts"]["runner"]["queueSize"] > 0 and metrics["accounts"]["lawyer"]["queueSize"] > 0
        # the plan run may still be queueing drafts: the two views must agree once two reads in a row match
        one: dict = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            one = json.loads(urllib.request.urlopen(f"{base}/api/metrics?account=runner", timeout=10).read())
            metrics = json.loads(urllib.request.urlopen(f"{base}/api/metrics", timeout=10).read())
            if one["queueSize"] == metrics["accounts"]["runner"]["queueSize"]:
                break
            time.sleep(0.5)
        assert one["queueSize"] == metrics["accounts"]["runner"]["queueSize"]
        req = urllib.request.Request(f"{base}/admin/accounts", headers={"Authorization": f"Bearer {token}"})
        listed = json.loads(urllib.request.urlopen(req, timeout=10).read())
        assert {a["id"] for a in listed} >= {"runner", "lawyer"}
    finally:
        _stop(proc)
    assert not [p for p in _ours(home) if p.is_running()]
