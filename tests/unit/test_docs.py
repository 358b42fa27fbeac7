"""The README's generated reference sections match the code they describe."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tools import config_reference


@pytest.mark.parametrize("name", sorted(config_reference.SECTIONS))
def test_readme_section_is_up_to_date(name):
    readme = (ROOT / "README.md").read_text()
    assert config_reference.section(readme, name) == config_reference.SECTIONS[name](), (
        f"README section {name!r} is stale: run `make docs`"
    )


def test_readme_has_exactly_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = quick_start.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make up STACK=dev", "make test"]
