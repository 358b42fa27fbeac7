"""The prod tier: the prod stack (the guide's HA topology) deployed for real by
`make up STACK=prod` on a local cluster of PROD_NODES nodes, grown to that size when a
smaller one runs. The stack is left deployed, as `make up` leaves it.

The drills' figures go to tests/conformance/report.py: one table at the end of the
session, and JSON lines in $AI_INFRA_MEASUREMENTS when set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deployed import Deployed, deployed_stack

STACK = "prod"
# The prod topology's required anti-affinity needs 6 schedulable nodes (the stack's
# minimumNodes output); one more lets a node be drained with every pod rescheduled.
PROD_NODES = 7


# The deployment is judged first, then previews against it, then the drills disturb it
# and the scaling and day-2 changes change it (and put it back);
# and the tier runs after every other one, so its 7 nodes and its stack never slow them.
MODULE_ORDER = ("test_prod_stack", "test_data_safety", "test_drills", "test_scaling", "test_day2")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ours = [item for item in items if "tests/prod/" in str(item.fspath)]
    for item in ours:
        item.add_marker(pytest.mark.prod)
    others = [item for item in items if "tests/prod/" not in str(item.fspath)]
    items[:] = others + sorted(ours, key=lambda item: MODULE_ORDER.index(item.path.stem))


@pytest.fixture(scope="package")
def prod() -> Iterator[Deployed]:
    yield deployed_stack(STACK, nodes=PROD_NODES)


@pytest.fixture
def config_restored(prod: Deployed) -> Iterator[None]:
    """The prod stack's config as it was before the test, put back (and applied by
    `pulumi up`) after it, whatever happened."""
    from tests.prod.stack_changes import LOCAL_STACK_FILE, up

    original = LOCAL_STACK_FILE.read_text()
    yield
    if LOCAL_STACK_FILE.read_text() != original:
        LOCAL_STACK_FILE.write_text(original)
        up()
