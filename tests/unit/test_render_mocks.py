"""The render's mock monitor answers each registration with the request's own Struct
(tools/render_mocks.py, echo_monitor): the objects and outputs are the ones the SDK's own
MockMonitor gives, and an input the render cannot write stops it."""

from __future__ import annotations

import pytest
from pulumi.runtime import mocks

from settings import load_settings
from settings.stack_file import stack_config
from tools import render, render_mocks


@pytest.mark.parametrize(("stack", "overrides"), [("prod", ()), ("dev", ("monitoring.enabled=true",))])
def test_the_echo_monitor_renders_what_the_sdks_mock_monitor_renders(stack, overrides, monkeypatch: pytest.MonkeyPatch):
    raw, secret_keys = stack_config(stack, overrides)
    settings = load_settings(raw, stack=stack, secret_keys=secret_keys)
    echoed = render.evaluate(settings, stack)
    monkeypatch.setattr(render_mocks, "echo_monitor", mocks.MockMonitor)
    reference = render.evaluate(settings, stack)
    assert echoed.objects == reference.objects
    assert echoed.outputs == reference.outputs
    assert echoed.secret_outputs == reference.secret_outputs
    assert echoed.resource_types == reference.resource_types


def test_a_value_the_render_cannot_write_is_refused():
    asset = {render_mocks.SECRET_SIGNATURE_KEY: "c44067f5952c0a294b673a41bacd8c17", "text": "x"}  # a FileAsset on the wire
    with pytest.raises(ValueError, match="cannot write"):
        render_mocks.plain({"data": asset})
    secret = {render_mocks.SECRET_SIGNATURE_KEY: render_mocks.SECRET_SIGNATURE, "value": "x"}
    assert render_mocks.plain({"n": 3.0, "s": secret}) == {"n": 3, "s": "x"}


def test_the_render_takes_no_stack_trace_and_gives_the_sdk_its_own_back(monkeypatch: pytest.MonkeyPatch):
    from pulumi.runtime import resource as sdk_resource

    def refuse() -> None:
        raise AssertionError("a stack trace was taken under the render's mocks")

    monkeypatch.setattr(sdk_resource, "_get_stack_trace", refuse)
    rendered = render.render("dev")
    assert rendered.objects
    assert sdk_resource._get_stack_trace is refuse
