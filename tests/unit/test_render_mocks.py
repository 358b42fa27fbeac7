"""The render's mock monitor answers each registration with the request's own Struct
(tools/render.py, _echo_monitor): the objects and outputs are the ones the SDK's own
MockMonitor gives, and an input the render cannot write stops it."""

from __future__ import annotations

import pytest
from pulumi.runtime import mocks

from settings import load_settings
from settings.stack_file import stack_config
from tools import render


@pytest.mark.parametrize(("stack", "overrides"), [("prod", ()), ("dev", ("monitoring.enabled=true",))])
def test_the_echo_monitor_renders_what_the_sdks_mock_monitor_renders(stack, overrides, monkeypatch: pytest.MonkeyPatch):
    raw, secret_keys = stack_config(stack, overrides)
    settings = load_settings(raw, stack=stack, secret_keys=secret_keys)
    echoed = render.evaluate(settings, stack)
    monkeypatch.setattr(render, "_echo_monitor", mocks.MockMonitor)
    reference = render.evaluate(settings, stack)
    assert echoed.objects == reference.objects
    assert echoed.outputs == reference.outputs
    assert echoed.secret_outputs == reference.secret_outputs
    assert echoed.resource_types == reference.resource_types


def test_a_value_the_render_cannot_write_is_refused():
    asset = {render._SECRET_SIGNATURE_KEY: "c44067f5952c0a294b673a41bacd8c17", "text": "x"}  # a FileAsset on the wire
    with pytest.raises(ValueError, match="cannot write"):
        render._plain({"data": asset})
    secret = {render._SECRET_SIGNATURE_KEY: render._SECRET_SIGNATURE, "value": "x"}
    assert render._plain({"n": 3.0, "s": secret}) == {"n": 3, "s": "x"}
