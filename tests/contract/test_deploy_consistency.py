"""The configuration the deployment files document is the configuration the code reads: no setting documented
that the code ignores, none read that is undocumented.

What the code reads is discovered, not listed: every pydantic-settings class in ``services/<name>/config.py``
(with what it inherits from ``shared.config.CommonSettings``), the flags of ``shared.flags.FLAG_SPECS``, and
every ``os.environ`` / ``os.getenv`` read of a literal name in shared/, services/ and xbot/ (the tooling). A
service whose config module does not exist yet is skipped; one that exists but does not import fails the test.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from shared.config import CommonSettings, load_settings
from shared.flags import FLAG_SPECS, SPECS, parse_value
from xbot.supervisor import SERVICES

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

#: read by docker compose (the postgres container and DATABASE_URL's interpolation), not by xbot
INFRA = frozenset({"POSTGRES_PASSWORD"})
#: read by the code but meaningless in a deployment: `make up`/test harness, and the crash-matrix hook
DEV_ONLY = frozenset({"NATS_SERVER_BIN", "XBOT_TEST_CRASH_AT"})
#: upper-case words RUNBOOK.md may use that are not environment variables: stream names, the seed's log tags,
#: the flag summary's REAL_METRICS, and the runbook's own shell variable
RUNBOOK_WORDS = frozenset({
    "XBOT_EVENTS", "XBOT_COMMANDS", "XBOT_DLQ",
    "PLAN_JOB", "REPLY_JOB", "GATE_CHAIN", "POSTING_ORCHESTRATOR", "ANALYTICS_COLLECTOR", "LEARN_JOB",
    "REAL_METRICS", "BACKUP_DIR",
})
ENV_LINE = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]+)=(.*)$")


# ------------------------------------------------------------------------------------------- discovery


def settings_classes() -> dict[str, list[type[BaseSettings]]]:
    """service -> its settings classes (from services/<service>/config.py)."""
    out: dict[str, list[type[BaseSettings]]] = {}
    for service in SERVICES:
        if not (ROOT / "services" / service / "config.py").exists():
            continue
        module = importlib.import_module(f"services.{service}.config")
        out[service] = [c for c in vars(module).values()
                        if inspect.isclass(c) and issubclass(c, BaseSettings)]
    return out


def _direct_reads() -> set[str]:
    names: set[str] = set()
    files = [p for d in ("shared", "services", "xbot") for p in (ROOT / d).rglob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                func = ast.unparse(node.func)
                receiver = func.rsplit(".", 1)[0]
                if func == "os.getenv" or (func.endswith(".get") and (receiver.endswith("environ") or receiver == "env")):
                    names.add(str(node.args[0].value))
            elif (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
                  and ast.unparse(node.value).endswith("environ") and isinstance(node.slice, ast.Constant)):
                names.add(str(node.slice.value))
    return {n for n in names if re.fullmatch(r"[A-Z][A-Z0-9_]+", n)}


@cache
def code_reads() -> frozenset[str]:
    names = set(CommonSettings.model_fields)
    for classes in settings_classes().values():
        for cls in classes:
            names |= set(cls.model_fields)
    names |= {s.name for s in FLAG_SPECS}
    names |= _direct_reads()
    return frozenset(names)


def env_example() -> dict[str, tuple[str, bool]]:
    """NAME -> (value, active) from .env.example; `# NAME=value` lines are documented but inactive."""
    out: dict[str, tuple[str, bool]] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = ENV_LINE.match(line)
        if m:
            assert m.group(1) not in out, f"{m.group(1)} is listed twice in .env.example"
            out[m.group(1)] = (m.group(2), not line.startswith("#"))
    return out


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifest_names() -> tuple[set[str], set[str], dict[str, set[str]]]:
    """Keys of the base ConfigMaps, of the Secret example, and the env names each Deployment sets itself."""
    base = ROOT / "deploy" / "base"
    config_keys: set[str] = set()
    container_env: dict[str, set[str]] = {}
    for path in base.glob("*.yaml"):
        if path.name in ("kustomization.yaml", "secret.example.yaml"):
            continue
        for doc in _docs(path):
            if doc["kind"] == "ConfigMap":
                config_keys |= set(doc["data"])
            if doc["kind"] == "Deployment":
                for c in doc["spec"]["template"]["spec"]["containers"]:
                    container_env[doc["metadata"]["name"]] = {e["name"] for e in c.get("env", [])}
    [secret] = _docs(base / "secret.example.yaml")
    return config_keys, set(secret["stringData"]), container_env


# ------------------------------------------------------------------------------------------------ tests


def test_discovery_sees_the_settings_of_every_service_that_exists() -> None:
    found = settings_classes()
    for service in SERVICES:
        if (ROOT / "services" / service / "__main__.py").exists():
            assert found.get(service), f"services/{service} runs but has no settings class in config.py"
    reads = code_reads()
    assert {"NATS_URL", "MODE", "POSTING_DISABLED", "ADMIN_TOKEN", "GATEWAY_PORT"} <= reads
    assert DEV_ONLY <= reads and not (INFRA & reads)


def test_env_example_documents_exactly_what_the_code_reads() -> None:
    documented = set(env_example())
    reads = code_reads()
    assert sorted(reads - documented) == [], "read by the code but missing from .env.example"
    assert sorted(documented - reads - INFRA) == [], "in .env.example but read by no code"


def test_env_example_ships_shadow_mode_with_posting_off_and_the_seed_defaults() -> None:
    env = env_example()
    for spec in FLAG_SPECS:
        value, active = env[spec.name]
        assert active, f"{spec.name} should be set explicitly in .env.example"
        assert parse_value(spec, value) == spec.default, f"{spec.name}={value} is not the default {spec.default}"
    assert env["MODE"][0] == "shadow" and env["POSTING_DISABLED"][0] == "true" and env["LIVE_POSTS"][0] == "false"
    for name in DEV_ONLY:
        assert not env[name][1], f"{name} must stay commented out"
    for secret in ("OPENAI_API_KEY", "ADMIN_TOKEN", "X_SESSION_B64"):
        assert env[secret] == ("", True), f"{secret} must ship empty"


def test_env_example_values_are_accepted_by_every_service() -> None:
    env = {k: v for k, (v, active) in env_example().items() if active}
    env.setdefault("DATABASE_URL", "postgresql://xbot:xbot@127.0.0.1:5432/xbot")
    for classes in settings_classes().values():
        for cls in classes:
            load_settings(cls, env)  # raises ConfigError naming the variable


def test_compose_environment_names_are_read_by_the_code() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    reads = code_reads()
    for name in SERVICES:
        env = doc["services"][name].get("environment") or {}
        assert sorted(set(env) - reads) == [], f"compose sets {name} variables no code reads"


def test_manifests_configure_exactly_what_the_code_reads() -> None:
    config_keys, secret_keys, container_env = manifest_names()
    reads = code_reads()
    set_anywhere = config_keys | secret_keys | set().union(*container_env.values())
    assert sorted(set_anywhere - reads) == [], "the manifests set variables no code reads"
    assert sorted(reads - DEV_ONLY - set_anywhere) == [], "read by the code but absent from the manifests"
    assert not (config_keys & secret_keys), "a secret in a ConfigMap"
    assert secret_keys == {"DATABASE_URL", "ADMIN_TOKEN", "OPENAI_API_KEY", "X_SESSION_B64"}


def test_flags_configmap_holds_every_flag_at_its_default() -> None:
    [flags] = _docs(ROOT / "deploy" / "base" / "flags.yaml")
    assert set(flags["data"]) == set(SPECS)
    for name, raw in flags["data"].items():
        assert parse_value(SPECS[name], raw) == SPECS[name].default, name


def test_manifest_values_are_accepted_by_every_service() -> None:
    base = ROOT / "deploy" / "base"
    env: dict[str, str] = {}
    for path in ("flags.yaml", "config.yaml"):
        [doc] = _docs(base / path)
        env.update({k: str(v) for k, v in doc["data"].items()})
    [secret] = _docs(base / "secret.example.yaml")
    env.update(secret["stringData"])
    for overlay in ("shadow", "live"):
        overlay_env = dict(env)
        for path in (ROOT / "deploy" / "overlays" / overlay).glob("*.yaml"):
            for doc in _docs(path):
                if doc.get("kind") == "ConfigMap":
                    overlay_env.update({k: str(v) for k, v in doc["data"].items()})
        for classes in settings_classes().values():
            for cls in classes:
                load_settings(cls, overlay_env)


def _readme_table_names() -> set[str] | None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0] if "## Configuration" in text else ""
    if "CONFIG_TABLE_PLACEHOLDER" in section:
        return None
    names = set()
    for line in section.splitlines():
        if line.startswith("|"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_readme_configuration_table_matches_the_code() -> None:
    names = _readme_table_names()
    if names is None:
        pytest.skip("README.md's configuration table is not written yet (CONFIG_TABLE_PLACEHOLDER)")
    reads = code_reads()
    assert sorted(names - reads - INFRA) == [], "README documents variables no code reads"
    assert sorted(reads - DEV_ONLY - names) == [], "read by the code but missing from README's table"


def test_runbook_names_only_real_variables_and_services() -> None:
    text = (ROOT / "RUNBOOK.md").read_text()
    tokens = set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", text))
    unknown = tokens - code_reads() - INFRA - RUNBOOK_WORDS
    assert sorted(unknown) == [], "RUNBOOK.md names variables the code does not read"
    named = set(re.findall(r"\bxbot service ([a-z]+)", text))
    named |= set(re.findall(r"\bdeploy/xbot-([a-z]+)", text))
    named |= set(re.findall(r"--scale ([a-z]+)=", text))
    named |= set(re.findall(r"\bdocker compose (?:logs|restart|exec(?: -T)?) ([a-z]+)", text))
    named |= set(re.findall(r"^\s*logs ([a-z]+)", text, re.M)) | set(re.findall(r"`logs ([a-z]+)", text))
    assert {"poster", "planner", "gateway"} <= named, named
    assert named <= {*SERVICES, "postgres"}, sorted(named - {*SERVICES, "postgres"})
