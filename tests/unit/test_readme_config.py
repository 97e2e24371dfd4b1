"""README's configuration table is the code's: every setting read, with its default."""

from pathlib import Path

import pytest

from xbot.settings_doc import render_readme

pytestmark = pytest.mark.unit


def test_readme_table_matches_code() -> None:
    readme = Path(__file__).resolve().parents[2] / "README.md"
    text = readme.read_text()
    assert render_readme(text) == text, "README's configuration table is stale: run `python -m xbot.settings_doc README.md`"
