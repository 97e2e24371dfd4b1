"""The import rules of the layout (docs/decisions/0012-layout-tooling-above-services.md), read from the source
with `ast` — nothing is imported or executed, so a wrong import fails here in milliseconds, wherever it hides
(inside a function, under TYPE_CHECKING, relative, or as `importlib.import_module("...")` of a literal or an
f-string's literal start):

- `shared/` imports neither `services/`, `bench/`, `xbot/` nor `tests/`;
- a service imports no other service (`services.planner` never imports `services.poster`), nor `bench/`,
  `xbot/` or `tests/`;
- `xbot/` (the tooling) sits above `services/` and `bench/`: a module of `xbot/` that `bench/` uses (the
  embedded servers) must not itself lead back to `bench/`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CODE = ("shared", "services", "bench", "xbot")
#: calls whose first (literal) argument names a module they import
IMPORTING_CALLS = ("import_module", "__import__", "find_spec", "run_module")


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name of the file
    path: str  # the file, relative to the repo
    line: int
    target: str  # dotted name imported (for `from a import b`: also `a.b`, which may be a submodule)

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.target}"


def module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(source: str, module: str, *, is_package: bool = False, path: str = "") -> list[Import]:
    """Every module `source` (the text of `module`) imports, relative imports resolved to absolute names."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def add(node: ast.AST, target: str) -> None:
        found.append(Import(module, path or module, getattr(node, "lineno", 0), target))

    for node in ast.walk(ast.parse(source, path or module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                base_parts = base_parts[: len(base_parts) - (node.level - 1)] if node.level > 1 else base_parts
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module and base else (node.module or base)
            else:
                target = node.module or ""
            add(node, target)
            for alias in node.names:
                if alias.name != "*":
                    add(node, f"{target}.{alias.name}")
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            arg = node.args[0]
            if name not in IMPORTING_CALLS:
                continue
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                add(node, arg.value)
            elif (isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant)
                  and "." in str(arg.values[0].value)):
                # f"services.{name}.config": the literal packages before the first placeholder
                add(node, str(arg.values[0].value).rpartition(".")[0])
    return found


@cache
def project_imports() -> tuple[Import, ...]:
    out: list[Import] = []
    for top in CODE:
        for file in sorted((ROOT / top).rglob("*.py")):
            rel = file.relative_to(ROOT)
            if "__pycache__" in rel.parts:
                continue
            out += imports_in(file.read_text(), module_name(rel), is_package=file.name == "__init__.py",
                              path=str(rel))
    return tuple(out)


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _service(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "services" else None


# ------------------------------------------------------------------------------------------------- rules


def shared_violations(imports: Iterable[Import]) -> Iterator[Import]:
    for i in imports:
        if _under(i.importer, "shared") and _top(i.target) in ("services", "bench", "xbot", "tests"):
            yield i


def service_violations(imports: Iterable[Import]) -> Iterator[Import]:
    for i in imports:
        own = _service(i.importer)
        if own is None:
            continue
        other = _service(i.target)
        if (other is not None and other != own) or _top(i.target) in ("bench", "xbot", "tests"):
            yield i


def _known_module(target: str, modules: set[str]) -> str | None:
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in modules:
            return ".".join(parts[:n])
    return None


def bench_cycle_violations(imports: Iterable[Import]) -> Iterator[Import]:
    """`bench/` may use a module of `xbot/` only if that module does not lead (through `xbot/`) to `bench/`."""
    imports = list(imports)
    modules = {i.importer for i in imports}  # a module of xbot/ that imports nothing cannot reach bench/
    edges: dict[str, set[str]] = {}
    for i in imports:
        if _under(i.importer, "xbot"):
            edges.setdefault(i.importer, set()).add(i.target)

    def reaches_bench(module: str, seen: frozenset[str] = frozenset()) -> bool:
        for target in edges.get(module, ()):
            if _under(target, "bench"):
                return True
            nxt = _known_module(target, modules) if _under(target, "xbot") else None
            if nxt is not None and nxt not in seen and reaches_bench(nxt, seen | {module}):
                return True
        return False

    for i in imports:
        if _under(i.importer, "bench") and _under(i.target, "xbot"):
            known = _known_module(i.target, modules)
            if known is not None and reaches_bench(known):
                yield i


def _report(found: Iterable[Import], rule: str) -> str:
    lines = sorted({str(i) for i in found})
    return f"{rule}:\n  " + "\n  ".join(lines)


# ------------------------------------------------------------------------------------------------ tests


def test_the_scan_reads_every_package() -> None:
    importers = {i.importer for i in project_imports()}
    for module in ("shared.service", "shared.bus", "services.gateway.app", "services.planner.bootstrap",
                   "bench.run", "xbot.cli", "xbot.supervisor"):
        assert module in importers, f"{module} was not scanned"
    assert len(importers) > 100


def test_shared_imports_neither_services_bench_nor_xbot() -> None:
    found = list(shared_violations(project_imports()))
    assert not found, _report(found, "shared/ imports neither services/, bench/, xbot/ nor tests/")


def test_no_service_imports_another_service() -> None:
    found = list(service_violations(project_imports()))
    assert not found, _report(found, "a service imports shared/ and itself, never another service, "
                                     "bench/, xbot/ or tests/")


def test_bench_uses_only_the_parts_of_xbot_below_it() -> None:
    found = list(bench_cycle_violations(project_imports()))
    assert not found, _report(found, "bench/ imports a module of xbot/ that leads back to bench/")


def test_the_tooling_is_what_imports_services_and_bench() -> None:
    """The reason for xbot/: the command line reaches the gateway's replay and the benchmarks from there."""
    targets = {i.target for i in project_imports() if i.importer == "xbot.cli"}
    assert "services.gateway.replay" in targets and "bench.run" in targets


# ----------------------------------------------------------------------- the scanner itself, on examples


@pytest.mark.parametrize(("module", "is_package", "source", "expected"), [
    ("shared.thing", False, "import services.gateway.replay as r", "services.gateway.replay"),
    ("shared.thing", False, "def f():\n    from xbot.embedded import free_port\n", "xbot.embedded"),
    ("shared.thing", False, "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import bench\n", "bench"),
    ("shared.thing", False, "import importlib\nimportlib.import_module('services.learner.config')",
     "services.learner.config"),
    ("shared.thing", False, "from services import planner", "services.planner"),
    ("shared.thing", False, "import importlib\nfor s in S:\n    importlib.import_module(f'services.{s}.config')",
     "services"),
])
def test_the_scanner_sees_every_form_of_import(module: str, is_package: bool, source: str, expected: str) -> None:
    found = list(shared_violations(imports_in(source, module, is_package=is_package)))
    assert expected in {i.target for i in found}


@pytest.mark.parametrize(("module", "source", "bad"), [
    ("services.planner.handlers", "from services.poster.domain import decide", True),
    ("services.planner.handlers", "from ..poster import domain", True),
    ("services.planner", "from ..replier.config import ReplierSettings", True),
    ("services.planner.handlers", "from . import bootstrap\nfrom ..planner import domain", False),
    ("services.planner.handlers", "from services import replier", True),
    ("services.planner.handlers", "from bench.core import Harness", True),
    ("services.planner.handlers", "from xbot.embedded import free_port", True),
    ("services.planner.handlers", "from .domain import decide\nfrom services.planner.config import S", False),
    ("services.planner.handlers", "from shared.drafting import judge_draft\nimport services", False),
])
def test_a_service_importing_another_is_seen(module: str, source: str, bad: bool) -> None:
    is_package = module.count(".") == 1  # services.<name> is the package's __init__
    assert bool(list(service_violations(imports_in(source, module, is_package=is_package)))) is bad


def test_a_cycle_between_bench_and_xbot_is_seen() -> None:
    imports = [*imports_in("import socket", "xbot.embedded"),
               *imports_in("from bench.run import main\nfrom . import embedded", "xbot.cli"),
               *imports_in("from xbot.embedded import free_port", "bench.a"),
               *imports_in("from xbot import cli", "bench.b"),
               *imports_in("def main(): ...", "bench.run")]
    assert {i.importer for i in bench_cycle_violations(imports)} == {"bench.b"}
