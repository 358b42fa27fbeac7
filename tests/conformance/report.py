"""The figures the conformance drills measure (failover times, data lost, backup sizes),
shown once at the end of the run by the terminal-summary hook in conftest.py, and written
as JSON lines to $AI_INFRA_MEASUREMENTS when it is set.

A test adds what it measured with ``table`` or ``line``; nothing here is a test, so the
order tests run in never decides whether a figure is shown."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_SECTIONS: dict[str, list[str]] = {}
_PRODUCERS: list[Callable[[], list[str]]] = []


def line(title: str, text: str) -> None:
    """One line under the heading ``title``."""
    _SECTIONS.setdefault(title, []).append(text)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Rows under ``title``, in aligned columns (floats with two decimals)."""
    cells = [[_fmt(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    _SECTIONS.setdefault(title, []).extend([lines[0], "  ".join("-" * width for width in widths), *lines[1:]])


def summary(producer: Callable[[], list[str]]) -> Callable[[], list[str]]:
    """Register a function that turns what a module measured into summary lines, run at
    the end of the session (empty when its tests did not run)."""
    _PRODUCERS.append(producer)
    return producer


def measurement(system: str, **row: Any) -> None:
    """One JSON line in $AI_INFRA_MEASUREMENTS, for tracking figures across runs."""
    target = os.environ.get("AI_INFRA_MEASUREMENTS")
    if target:
        with Path(target).open("a") as out:
            out.write(json.dumps({"system": system, **row}, sort_keys=True) + "\n")


def lines() -> list[str]:
    """Every section, as the terminal summary shows it."""
    out: list[str] = []
    for producer in _PRODUCERS:
        out += producer()
    for title, body in _SECTIONS.items():
        out += ["", title, *(f"  {text}" for text in body)]
    return out


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)
