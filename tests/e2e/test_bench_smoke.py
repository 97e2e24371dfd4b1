"""Every benchmark runs at its --quick size, so the benchmark code cannot rot. No figure is asserted: speed is
measured by `make bench`, never by timed assertions in tests."""

import json

import pytest

from bench.run import BENCHMARKS, main

pytestmark = pytest.mark.e2e


def test_quick_suite_produces_every_row(tmp_path) -> None:
    out = tmp_path / "latest.json"
    rows = main(quick=True, out=out)
    names = {r.benchmark for r in rows}
    failed = [r for r in rows if r.note.startswith("failed")]
    assert not failed, failed
    assert any(n.startswith("replay read") for n in names)
    assert any(n.startswith("uniqueness gate") for n in names)
    assert any(n.startswith("learning") for n in names)
    assert any(n.startswith("accounts: restart of the planner") for n in names)
    assert any(n.startswith("accounts: memory per account: planner") for n in names)
    data = json.loads(out.read_text())
    assert data["quick"] is True and len(data["rows"]) == len(rows) >= len(BENCHMARKS)
    for r in rows:
        if r.baseline is not None and r.figure is not None:
            assert r.ratio == pytest.approx(r.figure / r.baseline)
