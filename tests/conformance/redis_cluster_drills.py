"""Failover drills against a LocalCluster: a SIGKILLed master, and a planned restart of
a master with or without the preStop switchover. Each returns measured figures."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from dataclasses import dataclass, field

import redis

from tests.conformance.redis_cluster_nodes import LocalCluster, NodeInfo, slot_of
from tests.loopback import wait_until


def tag_in(master: NodeInfo, prefix: str) -> str:
    """A hash tag whose slot the master owns."""
    ranges = []
    for part in master.slots:
        if part.startswith("["):
            continue
        low, _, high = part.partition("-")
        ranges.append((int(low), int(high or low)))
    for n in range(100000):
        tag = f"{prefix}-{n}"
        slot = slot_of(tag)
        if any(low <= slot <= high for low, high in ranges):
            return tag
    raise AssertionError(f"no tag found in the slots of {master.address}")


class SlotWriter(threading.Thread):
    """Writes keys of one slot as fast as it can, following MOVED and re-resolving the
    owner when its node is gone. With ``wait_replica`` each SET is followed by WAIT 1, and
    keys a replica acknowledged are kept in ``acked``."""

    def __init__(self, cluster: LocalCluster, tag: str, *, wait_replica: bool = False):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.tag = tag
        self.slot = slot_of(tag)
        self.wait_replica = wait_replica
        self.successes: list[float] = []
        self.owners: list[str] = []  # the node each success was written to
        self.acked: list[str] = []
        self.errors: dict[str, int] = {}
        self._halt = threading.Event()
        self._clients: dict[str, redis.Redis] = {}

    def _client(self, address: str) -> redis.Redis:
        if address not in self._clients:
            host, port = address.rsplit(":", 1)
            self._clients[address] = redis.Redis(
                host=host,
                port=int(port),
                password=self.cluster.password,
                socket_timeout=1.0,
                socket_connect_timeout=0.5,
            )
        return self._clients[address]

    def _count(self, error: Exception) -> None:
        name = type(error).__name__
        self.errors[name] = self.errors.get(name, 0) + 1

    def run(self) -> None:
        owner = self.cluster.owner_of(self.slot)
        index = 0
        while not self._halt.is_set():
            key = f"{{{self.tag}}}:{index}"
            try:
                if owner is None:
                    raise redis.ConnectionError("owner unknown")
                client = self._client(owner)
                client.set(key, index)
                self.successes.append(time.monotonic())
                self.owners.append(owner)
                if self.wait_replica and int(client.execute_command("WAIT", 1, 200)) >= 1:
                    self.acked.append(key)
                index += 1
            except redis.exceptions.MovedError as error:
                self._count(error)
                owner = f"{error.host}:{error.port}"  # what a cluster client does
            except redis.ResponseError as error:
                self._count(error)
                time.sleep(0.02)  # CLUSTERDOWN, TRYAGAIN...
            except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
                self._count(error)
                time.sleep(0.05)
                owner = self.cluster.owner_of(self.slot) or owner
        for client in self._clients.values():
            client.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def first_success_after(self, moment: float, *, elsewhere_than: str = "") -> float | None:
        """The first write after ``moment`` (on a node other than ``elsewhere_than``)."""
        return next(
            (t for t, owner in zip(self.successes, self.owners, strict=False) if t > moment and owner != elsewhere_than),
            None,
        )

    def longest_gap(self, since: float) -> float:
        times = [since] + [t for t in self.successes if t > since]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


@dataclass
class KillResult:
    failover_seconds: float
    acked: int
    lost: list[str] = field(default_factory=list)


def sigkill_master(cluster: LocalCluster, run: int, *, timeout: float = 90) -> KillResult:
    """SIGKILL one master while a writer writes (WAIT 1) to its slots; time until its
    slots accept writes again; check every replica-acknowledged write survived. The
    killed node is started again and the cluster is healthy again afterwards."""
    expected = len(cluster.running())
    masters = sorted(cluster.masters(), key=lambda info: info.address)
    master = masters[run % len(masters)]
    node = cluster.node_at(master.address)
    writer = SlotWriter(cluster, tag_in(master, f"kill{run}"), wait_replica=True)
    writer.start()
    wait_until(lambda: len(writer.acked) >= 50, 30, "the writer to get 50 replica-acknowledged writes")
    killed_at = time.monotonic()
    node.send(signal.SIGKILL)
    try:
        first = wait_until(
            lambda: writer.first_success_after(killed_at, elsewhere_than=node.address),
            timeout,
            "writes to the killed master's slots on its replica",
        )
    finally:
        writer.stop()
    assert first is not None  # wait_until returns only a truthy result
    acked = list(writer.acked)
    owner = cluster.owner_of(writer.slot, exclude=node.address)
    assert owner and owner != node.address, f"slot {writer.slot} still served by the killed node"
    client = cluster.node_at(owner).client()
    values = client.mget(acked)
    lost = [key for key, value in zip(acked, values, strict=True) if value is None]
    node.stop()
    node.start()
    node.wait_up()
    cluster.wait_healthy(expected, timeout=120)
    return KillResult(first - killed_at, len(acked), lost)


def restart_master(cluster: LocalCluster, run: int, *, prestop: bool, restart_delay: float = 5.0) -> float:
    """A planned restart of one master, as a rolling update does it: (the preStop hook,)
    SIGTERM, ``restart_delay`` seconds for the pod to be recreated, start again. Returns
    the longest gap between successful writes to the master's slots from the moment the
    stop began."""
    expected = len(cluster.running())
    masters = sorted(cluster.masters(), key=lambda info: info.address)
    master = masters[run % len(masters)]
    node = cluster.node_at(master.address)
    writer = SlotWriter(cluster, tag_in(master, f"roll{run}"))
    writer.start()
    wait_until(lambda: len(writer.successes) >= 100, 30, "the writer to get going")
    began = time.monotonic()
    try:
        if prestop:
            result = cluster.prestop(node)
            assert result.returncode == 0, result.stdout + result.stderr
            assert node.info("replication")["role"] == "slave", "preStop returned while the node was still a master"
        node.stop(signal.SIGTERM)
        time.sleep(restart_delay)
        node.start()
        node.wait_up()
        cluster.wait_healthy(expected, timeout=120)
        restarted = time.monotonic()
        wait_until(lambda: writer.first_success_after(restarted), 30, "writes after the restart")
    finally:
        writer.stop()
    return writer.longest_gap(began)
