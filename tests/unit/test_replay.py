"""The bench's objects floor (tools/benchmark/replay.py): every object of the render
registered once, flat, under its provider type token, and nothing of the program loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools import render
from tools.benchmark import replay

ROOT = Path(__file__).resolve().parents[2]


def test_type_tokens_and_names_are_the_providers_and_unique():
    assert replay.type_token({"apiVersion": "v1", "kind": "ConfigMap"}) == "kubernetes:core/v1:ConfigMap"
    assert replay.type_token({"apiVersion": "apps/v1", "kind": "StatefulSet"}) == "kubernetes:apps/v1:StatefulSet"
    objects = render.render("prod").objects
    assert len({replay.resource_name(obj) for obj in objects}) == len(objects)
    assert replay.resource_name({"kind": "Namespace", "metadata": {"name": "ai"}}) == "Namespace-ai"


def test_the_render_floor_registers_every_object_of_the_render_and_imports_nothing_of_the_program(tmp_path: Path):
    objects = render.render("prod").objects
    listed = replay.objects_file(objects, tmp_path / "objects.json")
    check = (
        "import sys; from pathlib import Path; from tools.benchmark import replay; "
        f"n = replay.render_floor(Path({str(listed)!r})); "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('settings', 'components', 'platform_stack', 'pydantic')); "
        "print(n, loaded)"
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300)
    assert result.stdout.split(maxsplit=1) == [str(len(objects)), "[]\n"]
