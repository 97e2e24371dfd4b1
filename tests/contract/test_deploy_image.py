"""The Dockerfile builds one slim image for every service: pinned base, non-root, the dependency layer before
the code (so a code change does not reinstall dependencies), Debian's Chromium, entrypoint `xbot service`,
no secret inside; .dockerignore keeps local data and secrets out of the build context. (No Docker engine
here: the file is checked as text, and the one command it runs to list dependencies is run for real.)"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from xbot.supervisor import SERVICES

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAMES = ("OPENAI_API_KEY", "ADMIN_TOKEN", "X_SESSION_B64", "DATABASE_URL", "POSTGRES_PASSWORD")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        op, _, args = buf.strip().partition(" ")
        out.append((op.upper(), args.strip()))
        buf = ""
    return out


def index(op: str, pred: str = "") -> int:
    for i, (o, a) in enumerate(instructions()):
        if o == op and pred in a:
            return i
    raise AssertionError(f"no {op} {pred!r} in the Dockerfile")


def test_base_image_is_pinned_python_311_slim_bookworm() -> None:
    froms = [a for o, a in instructions() if o == "FROM"]
    assert froms == ["python:3.11-slim-bookworm"]


def test_runs_as_a_non_root_user() -> None:
    users = [(i, a) for i, (o, a) in enumerate(instructions()) if o == "USER"]
    assert users, "no USER: the services would run as root"
    last_i, user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    assert last_i < index("ENTRYPOINT")


def test_dependency_layer_comes_before_the_code() -> None:
    copy_pyproject = index("COPY", "pyproject.toml")
    install_deps = index("RUN", "pip install -r")
    copy_code = min(index("COPY", "shared"), index("COPY", "services"))
    install_code = index("RUN", "pip install --no-deps")
    assert copy_pyproject < install_deps < copy_code < install_code


def test_the_dependency_listing_command_lists_exactly_the_pinned_dependencies(tmp_path: Path) -> None:
    [run] = [a for o, a in instructions() if o == "RUN" and "tomllib" in a]
    m = re.search(r'python -c "([^"]+)"', run)
    assert m, run
    code = m.group(1).replace("/src/pyproject.toml", str(ROOT / "pyproject.toml"))
    code = code.replace("/tmp/requirements.txt", str(tmp_path / "req.txt"))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert (tmp_path / "req.txt").read_text().split() == pinned
    assert all("==" in d for d in pinned)


def test_chromium_is_installed_from_debian() -> None:
    run = " ".join(a for o, a in instructions() if o == "RUN" and "apt-get install" in a)
    assert " chromium " in f" {run} "
    assert "rm -rf /var/lib/apt/lists" in run


def test_entrypoint_is_xbot_service_and_the_command_a_service_name() -> None:
    entry = json.loads(next(a for o, a in instructions() if o == "ENTRYPOINT"))
    cmd = json.loads(next(a for o, a in instructions() if o == "CMD"))
    assert entry[-2:] == ["xbot", "service"]
    assert len(cmd) == 1 and cmd[0] in SERVICES
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["xbot"] == "xbot.cli:main"


def test_exposes_the_gateway_and_health_ports() -> None:
    ports = {int(p) for o, a in instructions() if o == "EXPOSE" for p in a.split()}
    assert ports == {8080, 8081}


def test_no_secret_is_baked_into_the_image() -> None:
    for op, args in instructions():
        if op in ("ENV", "ARG", "LABEL"):
            for name in SECRET_NAMES:
                assert name not in args, f"{op} {args}"
    copied = [shlex.split(a)[0] for o, a in instructions() if o in ("COPY", "ADD")]
    assert all(not c.startswith((".env", "secrets", ".xbot")) for c in copied), copied


def _ignored(path: str) -> bool:
    """.dockerignore semantics for the top-level patterns it uses: the last matching rule wins."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pat = line[1:] if neg else line
        pat = pat.rstrip("/")
        parts = path.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatch(p, pat[3:]) for p in parts)
        else:
            hit = any(fnmatch.fnmatch(c, pat) for c in candidates)
        if hit:
            ignored = not neg
    return ignored


def test_build_context_has_the_code_and_nothing_private() -> None:
    copied = [shlex.split(a)[0] for o, a in instructions() if o == "COPY"]
    for src in copied:
        assert (ROOT / src).exists(), src
        assert not _ignored(src), f"{src} is copied but .dockerignore excludes it"
    for private in (".env", ".xbot/admin_token", ".venv/bin/python", "tests/conftest.py", ".git/config",
                    "shared/__pycache__/x.pyc", "secrets/x_session.json", "services/.env"):
        assert _ignored(private), private
    assert not _ignored("shared/migrations/001_seed_tables.sql")
