"""Every flag given an invalid value stops a service at start with one line naming it (every service is tried,
and across them every flag)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.flags import FLAG_SPECS
from xbot.supervisor import SERVICES, existing_services

pytestmark = pytest.mark.integration

BAD = {"bool": "maybe", "mode": "production", "float": "lots", "int": "1.5", "str": ""}


def _cases() -> list[tuple[str, str, str]]:
    services = existing_services() or list(SERVICES)
    cases = []
    for i, spec in enumerate(FLAG_SPECS):
        if spec.kind == "str":
            continue  # any non-empty string is a valid model name
        cases.append((services[i % len(services)], spec.name, BAD[spec.kind]))
    return cases


@pytest.mark.parametrize("service,flag,value", _cases())
def test_invalid_flag_stops_service_with_one_line(service: str, flag: str, value: str) -> None:
    if service not in existing_services():
        pytest.skip(f"services/{service} does not exist")
    env = {"PATH": "/usr/bin:/bin", "NATS_URL": "nats://127.0.0.1:1", "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
           flag: value}
    r = subprocess.run([sys.executable, "-m", f"services.{service}"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert flag in lines[0] and "configuration error" in lines[0]
