"""Shared fixtures. Rendering goes through tools/render.py, the same path reviewers
and the real engine take, so unit and manifest tests see exactly what is deployed."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import render as render_tool  # noqa: E402


@functools.cache
def _render(stack: str, overrides: tuple[str, ...]) -> render_tool.Rendered:
    return render_tool.render(stack, overrides)


def render_stack(stack: str, *overrides: str) -> render_tool.Rendered:
    """Render ``stack`` with ``--set`` style overrides (cached: rendering is pure)."""
    return _render(stack, tuple(overrides))


def objects(stack: str, *overrides: str) -> Objects:
    """The Kubernetes objects of one render (cached)."""
    return Objects(render_stack(stack, *overrides).objects)


def env(container: dict[str, Any]) -> dict[str, Any]:
    """A container's env by name: the literal value, else its valueFrom block."""
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


class Objects:
    """Lookup helpers over one render's Kubernetes objects."""

    def __init__(self, objects: list[dict[str, Any]]):
        self.all = objects

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.all if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        assert len(found) == 1, (
            f"expected one {kind} {name}, found {len(found)}: {[o['metadata']['name'] for o in self.of_kind(kind)]}"
        )
        return found[0]

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name), None)

    def names(self, kind: str) -> list[str]:
        return [obj["metadata"]["name"] for obj in self.of_kind(kind)]

    def pod_templates(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(owner, pod template) for every workload that creates pods."""
        for obj in self.all:
            spec = obj.get("spec", {})
            if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
                yield obj, spec["template"]
            elif obj["kind"] == "CronJob":
                yield obj, spec["jobTemplate"]["spec"]["template"]


@pytest.fixture(params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def objects_of() -> Callable[..., Objects]:
    """``objects_of("prod", "kafka.replicaCount=5")`` -> Objects of that render."""
    return objects


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures the conformance and prod drills measured (tests/conformance/report.py)."""
    from tests.conformance import report

    lines = report.lines()
    if lines:
        terminalreporter.section("measured figures")
        for text in lines:
            terminalreporter.write_line(text)
