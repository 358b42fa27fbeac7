"""manifests.yaml is written by libyaml where that gives PyYAML's bytes and by PyYAML
elsewhere: the same bytes as PyYAML alone, faster (tools/render.py, object_yaml)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import render_stack
from tools import render


def reference(obj: dict[str, Any]) -> str:
    """What the render wrote before libyaml was used: PyYAML's pure-Python emitter."""
    return yaml.safe_dump(obj, **render.YAML_STYLE)


@pytest.mark.parametrize(
    ("stack", "overrides"),
    [("dev", ()), ("prod", ()), ("prod", ("monitoring.enabled=true",)), ("dev", ("monitoring.enabled=true",))],
)
def test_every_rendered_object_is_written_byte_for_byte_as_pyyaml_writes_it(stack, overrides):
    objects = render_stack(stack, *overrides).objects
    for obj in objects:
        assert render.object_yaml(obj) == reference(obj), f"{obj['kind']} {obj['metadata']['name']}"
    assert render.manifests_yaml(objects) == "".join("---\n" + reference(obj) for obj in objects)


def test_libyaml_writes_the_workloads():
    assert yaml.__with_libyaml__, "PyYAML was installed without libyaml: the render falls back to the slow emitter"
    assert render.FAST_DUMPER is yaml.CSafeDumper
    objects = render_stack("prod").objects
    slow = [(obj["kind"], obj["metadata"]["name"]) for obj in objects if not render._only_printable_lines(obj)]
    assert len(slow) < len(objects) / 3, slow
    assert not [kind for kind, _ in slow if kind in ("StatefulSet", "Deployment", "Service", "Job", "CronJob")], slow


def test_a_folded_double_quoted_string_keeps_pyyaml_where_libyaml_would_differ():
    script = {"data": {"run.sh": "#!/bin/sh\n" + "echo a fairly long line of shell that must fold " * 6 + "\n"}}
    assert yaml.dump(script, Dumper=yaml.CSafeDumper, **render.YAML_STYLE) != reference(script)  # why the rule exists
    assert render.object_yaml(script) == reference(script)


# Printable ASCII (what libyaml writes) is drawn most, long enough to fold at width 120;
# any text for the rest. Keys too: longer than PyYAML's 128-character simple-key limit.
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
keys = st.one_of(printable, st.text(max_size=40))
scalars = st.one_of(printable, st.text(max_size=80), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=25
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, documents, max_size=5))
def test_any_document_is_written_as_pyyaml_writes_it(document):
    assert render.object_yaml(document) == reference(document)
