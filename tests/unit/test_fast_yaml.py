"""tools/fast_yaml.py gives PyYAML's scalar analysis and PyYAML's bytes."""

from __future__ import annotations

import io

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.fast_yaml import FastSafeDumper

# Strings the analysis and the double-quoted writer branch on: indicators, whitespace
# around breaks, escapes, non-ASCII, long runs that fold; and anything else.
tricky = st.text(
    st.sampled_from(list(" \n\t\r\x00\x85\u2028\u2029\ufeff\xa0\xe9\u4e2d\U0001f600\"\\'#:-?,[]{}&*!|>%@`.ab")), max_size=200
)
strings = st.one_of(tricky, st.text(max_size=200), st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=400))


def _analysis(dumper: type[yaml.SafeDumper], scalar: str) -> dict:
    return vars(dumper(io.StringIO()).analyze_scalar(scalar))


@settings(max_examples=2000, deadline=None)
@given(strings)
def test_the_analysis_is_pyyamls(scalar):
    assert _analysis(FastSafeDumper, scalar) == _analysis(yaml.SafeDumper, scalar)


@settings(max_examples=1000, deadline=None)
@given(strings, st.integers(10, 200), st.booleans())
def test_a_double_quoted_scalar_is_written_as_pyyaml_writes_it(text, width, as_key):
    document = {text: "v"} if as_key else {"key": [text, {"nested": text}]}
    expected = yaml.dump(document, Dumper=yaml.SafeDumper, width=width, default_style='"')
    assert yaml.dump(document, Dumper=FastSafeDumper, width=width, default_style='"') == expected


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(strings, st.one_of(strings, st.lists(strings, max_size=3)), max_size=4), st.integers(20, 160))
def test_any_document_is_written_as_pyyaml_writes_it(document, width):
    style = {"sort_keys": True, "default_flow_style": False, "width": width}
    assert yaml.dump(document, Dumper=FastSafeDumper, **style) == yaml.dump(document, Dumper=yaml.SafeDumper, **style)
