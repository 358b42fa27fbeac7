"""The failover drills on the deployed prod stack (tests/prod/drills.py), from a writer in
a backend pod through the Services: 0 acknowledged writes lost, recovery within its bound.

With AI_INFRA_DRILL_ANCHORS=1 (`make drills`) every drill runs again under the anchor
configuration, applied to the running stack the way an operator would and put back
afterwards: Patroni ttl 30 / loop_wait 10 / retry_timeout 10, asynchronous (patronictl
edit-config); Redis cluster-node-timeout 15000 (CONFIG SET on every node; the preStop
handover is part of the pod spec and stays). Kafka's failover timings are Kafka's own
defaults in this program (broker.session.timeout.ms, controller.quorum.*), so its anchor
is the same configuration and its ratio is 1 by construction: it runs once.

With AI_INFRA_DRILL_NODES=1 (`make drills` too) the node drills run as well: a node lost
(every process of it killed, tools/cluster/outage.py) under each system's writer, and a
`kubectl drain` of a node holding the Patroni leader, a Redis master and a Kafka broker
under all three writers, bounded in time (no anchor: it is a bound, not a failover)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import pytest

from tests.conformance import report
from tests.deployed import Deployed
from tests.prod import drills

# Upper bounds with room for this 2-core machine (the anchor's are the loopback anchor's
# figures with the same room); the figures themselves go to the table.
# The node drain's figure is the drain's duration.
RECOVERY_BOUND = {"patroni": 45.0, "redis": 30.0, "kafka-broker": 30.0, "kafka-controller": 30.0,
                  "node-lost-patroni": 60.0, "node-lost-redis": 30.0, "node-lost-kafka": 30.0, "node-drain": 300.0}  # fmt: skip
ANCHOR_BOUND = {"patroni": 90.0, "redis": 60.0, "node-lost-patroni": 90.0, "node-lost-redis": 60.0}
CONFIGS = ["ours", "anchor"] if os.environ.get("AI_INFRA_DRILL_ANCHORS") == "1" else ["ours"]
# AI_INFRA_DRILL_NODES=1 (`make drills`): the node loss and drain drills as well
ALL_DRILLS = {**drills.DRILLS, **(drills.NODE_DRILLS if os.environ.get("AI_INFRA_DRILL_NODES") == "1" else {})}
ANCHOR_PATRONI = {"ttl": "30", "loop_wait": "10", "retry_timeout": "10", "synchronous_mode": "false"}
ANCHOR_REDIS_NODE_TIMEOUT = "15000"
RESULTS: dict[tuple[str, str], drills.DrillResult] = {}


@report.summary
def _table() -> list[str]:
    if not RESULTS:
        return []
    rows = []
    for drill in ALL_DRILLS:
        ours, anchor = RESULTS.get((drill, "ours")), RESULTS.get((drill, "anchor"))
        if ours is None:
            continue
        ratio = f"{ours.recovery / anchor.recovery:.2f}" if anchor and anchor.recovery else "-"
        detail = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in ours.detail.items())
        rows.append([ours.drill, ours.recovery, anchor.recovery if anchor else "not run", ratio,
                     f"{ours.lost}/{ours.acked}", f"{anchor.lost}/{anchor.acked}" if anchor else "-", detail])  # fmt: skip
    report.table(
        "Failover drills, prod stack on the local cluster (writer in a backend pod, through the Services; "
        "recovery = longest gap between acknowledged writes from the fault on)",
        ["drill", "ours_s", "anchor_s", "ratio", "lost/acked ours", "lost/acked anchor", "detail"],
        rows,
    )
    return []


def _patroni_config(prod: Deployed) -> dict[str, str]:
    code, out = prod.exec(f"{drills.PATRONI}-0", "patronictl show-config")
    assert code == 0, out
    found = {key: re.search(rf"^{key}: (.+)$", out, re.MULTILINE) for key in ANCHOR_PATRONI}
    return {key: match.group(1).strip() if match else "null" for key, match in found.items()}


def _set_patroni(prod: Deployed, values: dict[str, str]) -> None:
    settings = " ".join(f"-s {key}={value}" for key, value in values.items())
    code, out = prod.exec(f"{drills.PATRONI}-0", f"patronictl edit-config --force {settings}")
    assert code == 0, out


def _set_redis_node_timeout(prod: Deployed, value: str) -> str:
    """CONFIG SET cluster-node-timeout on every Redis node; the value it had."""
    before = ""
    for pod in prod.pods("-l", "app.kubernetes.io/name=redis-cluster"):
        name = pod["metadata"]["name"]
        code, out = prod.exec(name, "redis-cli config get cluster-node-timeout", container="redis")
        assert code == 0, out
        before = out.split()[-1]
        code, out = prod.exec(name, f"redis-cli config set cluster-node-timeout {value}", container="redis")
        assert code == 0 and "OK" in out, out
    return before


@pytest.fixture(scope="module", params=CONFIGS)
def configured(request: pytest.FixtureRequest, prod: Deployed) -> Iterator[str]:
    if request.param == "ours":
        yield "ours"
        return
    drills.wait_healthy(prod)
    patroni_before = _patroni_config(prod)
    _set_patroni(prod, ANCHOR_PATRONI)
    redis_before = _set_redis_node_timeout(prod, ANCHOR_REDIS_NODE_TIMEOUT)
    try:
        yield "anchor"
    finally:
        _set_patroni(prod, patroni_before)
        _set_redis_node_timeout(prod, redis_before)


@pytest.mark.parametrize("drill", list(ALL_DRILLS))
def test_failover_drill_loses_no_acknowledged_write(prod: Deployed, configured: str, drill: str) -> None:
    if configured == "anchor" and drill not in ANCHOR_BOUND:
        pytest.skip("Kafka's anchor is the configuration the ours run used, and a drain has no anchor (module docstring)")
    drills.wait_healthy(prod)
    result = ALL_DRILLS[drill](prod)
    RESULTS[(drill, configured)] = result
    report.measurement("prod-drill", config=configured, drill=result.drill, victim=result.victim,
                       recovery_s=result.recovery, acked=result.acked, lost=result.lost, **result.detail)  # fmt: skip
    drills.wait_healthy(prod)
    print(json.dumps(vars(result), default=str))
    assert result.lost == 0, result
    assert result.recovery <= (RECOVERY_BOUND if configured == "ours" else ANCHOR_BOUND)[drill], result
