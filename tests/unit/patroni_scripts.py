"""The Python scripts of the rendered Patroni ConfigMap as modules, the way Python runs them
in the pod: each beside kube_api.py, which they import."""

from __future__ import annotations

import sys
import types
from typing import Any

from tests.conftest import Objects

CONFIG_MAP = "ai-infra-patroni-files"


def load(objects: Objects, filename: str) -> Any:
    """The rendered ``filename`` executed as a module, kube_api.py its kube_api. Tests replace
    the names it imported (``api``, ``namespace``) on the module it returns."""
    data = objects.get("ConfigMap", CONFIG_MAP)["data"]
    kube_api = types.ModuleType("kube_api")
    exec(compile(data["kube_api.py"], "kube_api.py", "exec"), kube_api.__dict__)
    module = types.ModuleType(filename.removesuffix(".py").replace("-", "_"))
    saved = sys.modules.get("kube_api")
    sys.modules["kube_api"] = kube_api
    try:
        # a NamedTuple's class body looks its module up in sys.modules
        sys.modules[module.__name__] = module
        exec(compile(data[filename], filename, "exec"), module.__dict__)
    finally:
        sys.modules.pop(module.__name__, None)
        if saved is None:
            sys.modules.pop("kube_api", None)
        else:
            sys.modules["kube_api"] = saved
    return module
