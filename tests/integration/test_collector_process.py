"""The collector and learner processes refuse a bad configuration at start with one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import service_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]


def run(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=40
    )


@pytest.mark.parametrize(
    ("name", "extra", "named"),
    [
        ("collector", {"COLLECT_HORIZONS_HOURS": "1,x"}, "COLLECT_HORIZONS_HOURS"),
        ("collector", {"COLLECT_MAX_ATTEMPTS": "0"}, "COLLECT_MAX_ATTEMPTS"),
        ("collector", {"MODE": "live", "REAL_METRICS_ENABLED": "true", "X_USERNAME": ""}, "X_USERNAME"),
        ("learner", {"LEARN_EVERY_N_OUTCOMES": "-1"}, "LEARN_EVERY_N_OUTCOMES"),
        ("learner", {"SUCCESS_ER_THRESHOLD": "lots"}, "SUCCESS_ER_THRESHOLD"),
    ],
)
def test_bad_setting_stops_the_service_with_one_line(nats_url: str, namespace: str, name, extra, named):
    proc = run(name, service_env(nats_url, namespace, **extra))
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if "configuration error" in ln]
    assert len(lines) == 1 and named in lines[0], proc.stderr
