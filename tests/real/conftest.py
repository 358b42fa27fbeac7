"""The real tier: the dev stack deployed by `make up STACK=dev` on the local cluster.

The package deploys it (tools/stack.sh up dev: the local cluster, the project's images,
the real engine) unless it already runs, and then works on what the guide's users see:
pods, the guide's kubectl commands, the stack outputs, the NetworkPolicies, backups.
The stack is left deployed, as `make up` leaves it; `make down` / `make cluster-down`
remove it. CI runs it after `make up STACK=dev`, so nothing is deployed twice.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deployed import Deployed, deployed_stack, stack_tool

__all__ = ["STACK", "Deployed", "stack_tool"]

STACK = "dev"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/real/" in str(item.fspath):
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="package")
def deployed() -> Iterator[Deployed]:
    yield deployed_stack(STACK)
