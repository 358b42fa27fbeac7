"""The program pauses while it builds the platform, so the real engine starts on the
provider and the first systems before the last one is built (platform_stack.py,
build_platform_yielding); paused or not, it registers the same resources."""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
from pulumi.runtime import mocks

import platform_stack
from settings import load_settings
from settings.stack_file import stack_config
from tools.render_mocks import RenderMocks


def _under_mocks(program: Callable[[], Any]) -> set[str]:
    """Run ``program`` (its result awaited) under mocks; the URNs it registered."""
    render_mocks = typing.cast(pulumi.runtime.Mocks, RenderMocks())  # stand-in passwords, as the render has
    monitor = mocks.MockMonitor(render_mocks)
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(render_mocks, project="ai-infra-matrix", stack="prod", preview=False, monitor=monitor)
    try:
        pulumi.runtime.test(lambda: pulumi.Output.from_input(program()))()
    finally:
        asyncio.get_event_loop().close()
        pulumi.runtime.settings.reset_options()
    return set(monitor.resources)


def _prod() -> Any:
    raw, secret_keys = stack_config("prod")
    return load_settings(raw, stack="prod", secret_keys=secret_keys)


def test_the_first_pause_comes_right_after_the_provider_and_the_namespace_with_its_isolation(monkeypatch: pytest.MonkeyPatch):
    made: list[str] = []
    register = pulumi.Resource.__init__

    def recording(self: pulumi.Resource, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        made.append(t)
        register(self, t, name, *args, **kwargs)

    monkeypatch.setattr(pulumi.Resource, "__init__", recording)
    pauses: list[list[str]] = []

    def program() -> int:
        made.clear()  # the root Stack
        steps = platform_stack.platform_steps(_prod())
        while next(steps) is None:
            pauses.append(list(made))
        return len(made)

    _under_mocks(program)
    # The provider, the namespace (after its lock) and its default-deny isolation, which every workload waits for.
    assert pauses[0] == [
        "pulumi:providers:kubernetes",
        "random:index/randomId:RandomId",  # the change lock of namespace and releaseName, which the namespace waits for
        "kubernetes:core/v1:Namespace",
        "ai-infra:index:NamespaceIsolation",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    ]
    # Then one pause after each system: Patroni, Redis, Kafka, backups, the three app tiers.
    assert len(pauses) == 8
    assert made[len(pauses[-1]) :], "the last pause comes before the last objects (secrets outputs, policies)"


def test_paused_or_not_the_same_resources_are_registered():
    settings = _prod()

    async def paused() -> int:
        return len((await platform_stack.build_platform_yielding(settings)).outputs)

    at_once = _under_mocks(lambda: len(platform_stack.build_platform(settings).outputs))
    yielding = _under_mocks(lambda: asyncio.ensure_future(paused()))
    assert yielding == at_once
    assert len(at_once) > 80
