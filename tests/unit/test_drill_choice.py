"""The drain drill's choice of node (tests/prod/drills.py): in synchronous mode Patroni
switches over only to the sync standby, so a node whose Patroni member is an asynchronous
replica can never be made the leader's node; the drill once picked one, its switchover was
refused (patronictl still exits 0) and the drill waited out its 120 s."""

from __future__ import annotations

from tests.prod.drills import KAFKA, KAFKA_CONTROLLER, PATRONI, REDIS, choose_drain_node


def _held(patroni: int, redis: int, kafka: str) -> dict[str, str]:
    return {"patroni": f"{PATRONI}-{patroni}", "redis": f"{REDIS}-{redis}", "kafka": kafka}


ROLES = {f"{PATRONI}-0": "Replica", f"{PATRONI}-1": "Sync Standby", f"{PATRONI}-2": "Leader"}


def test_the_leaders_node_first() -> None:
    members = {"n1": _held(0, 0, f"{KAFKA}-0"), "n2": _held(1, 1, f"{KAFKA}-1"), "n3": _held(2, 2, f"{KAFKA_CONTROLLER}-2")}
    assert choose_drain_node(members, ROLES) == "n3"


def test_the_sync_standbys_node_when_the_leaders_lacks_a_system() -> None:
    members = {
        "n1": _held(0, 0, f"{KAFKA}-0"),
        "n2": _held(1, 1, f"{KAFKA_CONTROLLER}-1"),
        "n3": {**_held(2, 2, ""), "kafka": ""},
    }
    assert choose_drain_node(members, ROLES) == "n2"


def test_never_an_asynchronous_replicas_node() -> None:
    members = {"n1": _held(0, 0, f"{KAFKA}-0"), "n3": {**_held(2, 2, ""), "redis": ""}}
    assert choose_drain_node(members, ROLES) is None


def test_a_brokers_node_first_among_equals() -> None:
    roles = {f"{PATRONI}-0": "Leader", f"{PATRONI}-1": "Leader"}  # the same rank, as during a handover
    members = {"n1": _held(0, 0, f"{KAFKA_CONTROLLER}-0"), "n2": _held(1, 1, f"{KAFKA}-1")}
    assert choose_drain_node(members, roles) == "n2"
