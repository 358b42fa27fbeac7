"""Conformance tier: the figures its drills measured, shown after the test results."""

from __future__ import annotations

import pytest

from tests.conformance import report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = report.lines()
    if lines:
        terminalreporter.section("conformance figures")
        for text in lines:
            terminalreporter.write_line(text)
