"""KafkaKRaft against real Kafka (the Maven Central jars of tools/ci/kafka-pom.xml, the
version of the pinned apache/kafka image) on 127.0.0.1, started from the rendered
server.properties and entrypoint.sh (hosts, ports and directories changed only).

prod: 3 controllers + 3 brokers form a cluster; an idempotent acks=all producer keeps
sending while a broker is SIGKILLed and a consumer then finds every acknowledged message;
the active controller is SIGKILLed and a new one takes over; two more brokers join from
the kafka.replicaCount=5 render while the controllers' files stay byte-identical. dev: the
single combined node serves a consumer group. Failover times are medians of 3 runs.

The program keeps Kafka's own failover defaults (broker.session.timeout.ms=9000,
controller.quorum.fetch.timeout.ms=2000, election 1000), so there is no second set of
drills "with Kafka's defaults": test_failover_timing_is_kafkas_default holds that.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conformance import report
from tests.conformance.kafka_cluster import (
    Node,
    kafka_libs,
    kafka_version,
    localize,
    quorum_status,
    readiness_command,
    rendered_cluster_id,
    rendered_role,
    stop_all,
)
from tests.conftest import Objects, render_stack
from tests.loopback import free_port, wait_until

pytestmark = pytest.mark.conformance

RUNS = 3
# librdkafka's connection chatter (a killed broker refuses connections, as intended) goes
# to logging, which pytest shows only for a failing test.
RDKAFKA_LOG = logging.getLogger("rdkafka")
RELEASE = "ai-infra"


def _client():
    try:
        import confluent_kafka
        from confluent_kafka import admin
    except ImportError:  # pragma: no cover - the install script brings it
        pytest.fail("confluent-kafka is not installed: run tools/ci/install-kafka.sh")
    return confluent_kafka, admin


@dataclass
class Cluster:
    libs: Path
    controllers: dict[int, Node]
    brokers: dict[int, Node]
    root: Path
    cluster_id: str
    admins: dict = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{node.broker_port}" for node in self.brokers.values() if node.alive())

    @property
    def controller_ports(self) -> list[int]:
        return [node.voter_port for node in self.controllers.values()]

    def admin(self):
        """One AdminClient per set of live brokers (a client dropped while a request is
        pending fails it with _DESTROY)."""
        _, admin = _client()
        bootstrap = self.bootstrap
        if bootstrap not in self.admins:
            self.admins[bootstrap] = admin.AdminClient(
                {"logger": RDKAFKA_LOG, "bootstrap.servers": bootstrap, "socket.timeout.ms": 3000}
            )
        return self.admins[bootstrap]

    def broker_ids(self) -> set[int]:
        return {node.id for node in self.admin().describe_cluster(request_timeout=5).result(timeout=10).nodes}

    def partitions(self, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
        """partition -> (leader, replicas, isr), fresh from a broker.

        Each broker learns a new topic from the metadata log on its own; the admin client
        asks any one of them, so a just-created topic may be unknown to the broker asked
        (seen with brokers that had just joined): asked again, not reported as an error."""
        deadline = time.monotonic() + 15
        while True:
            found = self.admin().list_topics(topic, timeout=3).topics[topic]
            if found.error is None:
                return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in found.partitions.values()}
            if found.error.code() != found.error.UNKNOWN_TOPIC_OR_PART or time.monotonic() > deadline:
                raise RuntimeError(str(found.error))
            time.sleep(0.2)

    def create_topic(self, topic: str, partitions: int, replication: int, min_isr: int) -> None:
        _, admin = _client()
        future = self.admin().create_topics(
            [admin.NewTopic(topic, partitions, replication, config={"min.insync.replicas": str(min_isr)})],
            request_timeout=30,
        )[topic]
        future.result(timeout=40)
        wait_until(
            lambda: all(len(isr) == replication and leader >= 0 for leader, _, isr in self.partitions(topic).values()),
            60,
            f"topic {topic} fully in sync",
        )


def _make_node(role, pod: str, node_id: int, *, voter_ports, libs, root, cluster_id, broker_port=None, controller_port=None):
    ports = {}
    if broker_port:
        ports["BROKER"] = broker_port
    if controller_port:
        ports["CONTROLLER"] = controller_port
    workdir = root / pod
    properties = localize(role.properties, voter_ports=voter_ports, ports=ports, data_dir=workdir / "data")
    return Node(pod, node_id, role, properties, workdir, cluster_id, libs, broker_port, controller_port)


# --- prod: 3 controllers + 3 brokers ----------------------------------------------------


@pytest.fixture(scope="class")
def prod(tmp_path_factory) -> Iterator[Cluster]:
    libs = kafka_libs()
    _client()
    objects = Objects(render_stack("prod").objects)
    controller_role = rendered_role(objects, f"{RELEASE}-kafka-controller")
    broker_role = rendered_role(objects, f"{RELEASE}-kafka")
    cluster_id = rendered_cluster_id(objects)
    root = tmp_path_factory.mktemp("kafka-prod")
    voter_ports = {i: free_port() for i in range(controller_role.replicas)}
    offset = int(broker_role.env["KAFKA_NODE_ID_OFFSET"])
    controllers = {
        i: _make_node(controller_role, f"{RELEASE}-kafka-controller-{i}", i, voter_ports=voter_ports, libs=libs, root=root,
                      cluster_id=cluster_id, controller_port=port)
        for i, port in voter_ports.items()
    }  # fmt: skip
    brokers = {
        offset + i: _make_node(broker_role, f"{RELEASE}-kafka-{i}", offset + i, voter_ports=voter_ports, libs=libs,
                               root=root, cluster_id=cluster_id, broker_port=free_port())
        for i in range(broker_role.replicas)
    }  # fmt: skip
    cluster = Cluster(libs, controllers, brokers, root, cluster_id)
    every = [*controllers.values(), *brokers.values()]
    started = time.monotonic()
    try:
        for node in every:
            node.start()
        for node in controllers.values():
            node.wait_port(node.voter_port, 180)
        for node in brokers.values():
            node.wait_port(node.client_port, 180)
        wait_until(lambda: cluster.broker_ids() == set(brokers), 180, "3 brokers registered")
        report.line(
            "Kafka", f"prod cluster (3 controllers + 3 brokers, Kafka {kafka_version()}) up in {time.monotonic() - started:.1f}s"
        )
        yield cluster
    finally:
        stop_all([*cluster.controllers.values(), *cluster.brokers.values()])


class TestProdCluster:
    def test_cluster_forms_with_static_quorum(self, prod: Cluster):
        status = quorum_status(prod.libs, prod.controller_ports)
        assert int(status["LeaderId"]) in prod.controllers
        voters = status["CurrentVoters"]
        for node_id in prod.controllers:
            assert f'"id": {node_id}' in voters or f"{node_id}@" in voters or f'"id":{node_id}' in voters, voters
        assert status["ClusterId"] == prod.cluster_id
        assert prod.broker_ids() == {100, 101, 102}
        for node in [*prod.controllers.values(), *prod.brokers.values()]:
            assert "formatting" in node.log_text(), f"{node.pod} was not formatted by the entrypoint"
        prod.create_topic("orders", 3, 3, 2)
        assert all(len(replicas) == 3 for _, replicas, _ in prod.partitions("orders").values())

    def test_broker_sigkill_loses_no_acknowledged_message(self, prod: Cluster):
        rows = [_broker_drill(prod, run) for run in range(1, RUNS + 1)]
        median = statistics.median(row["leadership_recovery_s"] for row in rows)
        _table(
            f"Kafka broker SIGKILL drill (Kafka {kafka_version()}, broker.session.timeout.ms=9000): median leadership "
            f"recovery {median:.2f}s",
            rows,
            ["run", "victim", "led", "leadership_recovery_s", "acked", "consumed", "lost", "duplicates", "unacked"],
        )
        for row in rows:
            report.measurement("kafka", drill="broker-sigkill", kafka=kafka_version(), **row)
        report.measurement("kafka", drill="broker-sigkill", kafka=kafka_version(), median_leadership_recovery_s=median)
        assert all(row["lost"] == 0 for row in rows), rows
        assert all(row["duplicates"] == 0 for row in rows), rows

    def test_active_controller_sigkill_elects_a_new_one(self, prod: Cluster):
        rows = [_controller_drill(prod, run) for run in range(1, RUNS + 1)]
        median = statistics.median(row["new_active_s"] for row in rows)
        median_write = statistics.median(row["metadata_write_s"] for row in rows)
        _table(
            f"Kafka active controller SIGKILL drill (Kafka {kafka_version()}): median {median:.2f}s to a new active "
            f"controller, {median_write:.2f}s to the first metadata write",
            rows,
            ["run", "killed", "new_active", "new_active_s", "metadata_write_s"],
        )
        for row in rows:
            report.measurement("kafka", drill="controller-sigkill", kafka=kafka_version(), **row)
        report.measurement(
            "kafka",
            drill="controller-sigkill",
            kafka=kafka_version(),
            median_new_active_s=median,
            median_metadata_write_s=median_write,
        )
        assert all(row["new_active"] != row["killed"] for row in rows)

    def test_grow_to_five_brokers_leaves_controllers_untouched(self, prod: Cluster):
        three = Objects(render_stack("prod").objects)
        five = Objects(render_stack("prod", "kafka.replicaCount=5").objects)
        for kind, name in [
            ("ConfigMap", f"{RELEASE}-kafka-controller-config"),
            ("StatefulSet", f"{RELEASE}-kafka-controller"),
            ("Service", f"{RELEASE}-kafka-controller-headless"),
            ("PodDisruptionBudget", f"{RELEASE}-kafka-controller-pdb"),
            ("Secret", f"{RELEASE}-kafka-kraft"),
        ]:
            assert yaml.safe_dump(three.get(kind, name)) == yaml.safe_dump(five.get(kind, name)), f"{kind} {name} changed"
        role = rendered_role(five, f"{RELEASE}-kafka")
        assert role.replicas == 5
        assert role.properties == rendered_role(three, f"{RELEASE}-kafka").properties
        voter_ports = {i: node.voter_port for i, node in prod.controllers.items()}
        offset = int(role.env["KAFKA_NODE_ID_OFFSET"])
        started = time.monotonic()
        for ordinal in (3, 4):
            node = _make_node(role, f"{RELEASE}-kafka-{ordinal}", offset + ordinal, voter_ports=voter_ports, libs=prod.libs,
                              root=prod.root, cluster_id=rendered_cluster_id(five), broker_port=free_port())  # fmt: skip
            prod.brokers[node.node_id] = node
            node.start()
        for node_id in (103, 104):
            prod.brokers[node_id].wait_port(prod.brokers[node_id].client_port, 180)
        wait_until(lambda: prod.broker_ids() == {100, 101, 102, 103, 104}, 120, "5 brokers registered")
        joined = time.monotonic() - started
        prod.create_topic("grown", 10, 3, 2)
        used = {broker for _, replicas, _ in prod.partitions("grown").values() for broker in replicas}
        assert {103, 104} <= used, f"new brokers got no replicas: {used}"
        assert _produce_and_count(prod, "grown", 200) == 200
        report.line(
            "Kafka", f"grow 3 -> 5 brokers: controllers' objects byte-identical; brokers 103, 104 joined in {joined:.1f}s"
        )
        report.measurement("kafka", drill="grow-brokers", kafka=kafka_version(), joined_s=round(joined, 2))


def _broker_drill(prod: Cluster, run: int) -> dict:
    confluent_kafka, _ = _client()
    topic = f"drill-broker-{run}"
    prod.create_topic(topic, 6, 3, 2)
    acked: set[int] = set()
    unacked = [0]
    stop = threading.Event()

    def delivered(error, message) -> None:
        if error is None:
            acked.add(int(message.value()))
        else:
            unacked[0] += 1

    producer = confluent_kafka.Producer(
        {
            "logger": RDKAFKA_LOG,
            "bootstrap.servers": prod.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 90000,
        }
    )

    def produce() -> None:
        sequence = 0
        while not stop.is_set():
            try:
                producer.produce(topic, key=str(sequence).encode(), value=str(sequence).encode(), on_delivery=delivered)
                sequence += 1
            except BufferError:
                producer.poll(0.1)
            producer.poll(0)
            time.sleep(0.004)

    sender = threading.Thread(target=produce, daemon=True)
    sender.start()
    try:
        time.sleep(2)
        leaders = [leader for leader, _, _ in prod.partitions(topic).values()]
        # A different broker each run where it leads something, else the busiest one.
        preferred = 100 + (run - 1) % 3
        victim_id = preferred if preferred in leaders else max(set(leaders), key=leaders.count)
        victim = prod.brokers[victim_id]
        killed_at = time.monotonic()
        victim.kill()

        def recovered() -> bool:
            return all(leader not in (victim_id, -1) for leader, _, _ in prod.partitions(topic).values())

        wait_until(recovered, 90, f"every partition of {topic} led by a live broker", interval=0.1)
        recovery = time.monotonic() - killed_at
        time.sleep(3)  # keep sending on the reduced cluster
    finally:
        stop.set()
        sender.join(timeout=30)
        remaining = producer.flush(90)
    assert remaining == 0, f"{remaining} messages still undelivered after 90s"
    victim.wait_exit()
    consumed, duplicates = _consume_all(prod, topic)
    row = {
        "run": run,
        "victim": victim_id,
        "led": leaders.count(victim_id),
        "leadership_recovery_s": round(recovery, 2),
        "acked": len(acked),
        "consumed": len(consumed),
        "lost": len(acked - consumed),
        "duplicates": duplicates,
        "unacked": unacked[0],
    }
    # Bring the broker back from its volume (the entrypoint must not format it again)
    # and wait until every replica is in sync before the next run.
    victim.start()
    victim.wait_port(victim.client_port, 120)
    wait_until(lambda: "already formatted" in victim.log_text(), 30, f"{victim.pod} restarted from its volume")
    for name in [f"drill-broker-{r}" for r in range(1, run + 1)]:
        wait_until(partial(_fully_in_sync, prod, name), 120, f"{name} ISR 3")
    return row


def _consume_all(cluster: Cluster, topic: str) -> tuple[set[int], int]:
    confluent_kafka, _ = _client()
    consumer = confluent_kafka.Consumer(
        {
            "logger": RDKAFKA_LOG,
            "bootstrap.servers": cluster.bootstrap,
            "group.id": f"verify-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = cluster.partitions(topic)
        end = 0
        for partition in partitions:
            _, high = consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, partition), timeout=10)
            end += high
        consumer.subscribe([topic])
        seen: set[int] = set()
        total = 0
        deadline = time.monotonic() + 90
        while total < end and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1):
                if message.error() is None:
                    seen.add(int(message.value()))
                    total += 1
        assert total >= end, f"read {total} of {end} messages of {topic}"
        return seen, total - len(seen)
    finally:
        consumer.close()


def _produce_and_count(cluster: Cluster, topic: str, count: int) -> int:
    confluent_kafka, _ = _client()
    producer = confluent_kafka.Producer(
        {"logger": RDKAFKA_LOG, "bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True}
    )
    for sequence in range(count):
        producer.produce(topic, value=str(sequence).encode())
    assert producer.flush(60) == 0
    seen, _ = _consume_all(cluster, topic)
    return len(seen)


def _controller_drill(prod: Cluster, run: int) -> dict:
    _, admin = _client()
    live_ports = [node.voter_port for node in prod.controllers.values() if node.alive()]
    leader_id = int(quorum_status(prod.libs, live_ports)["LeaderId"])
    leader = prod.controllers[leader_id]
    others = [node for node in prod.controllers.values() if node is not leader]
    killed_at_wall = time.time()
    killed_at = time.monotonic()
    leader.kill()

    def new_active():
        for node in others:
            for at, _epoch in node.activations():
                if at >= killed_at_wall - 0.05:
                    return node, at
        return None

    node, activated_at = wait_until(new_active, 60, "a new active controller", interval=0.05)
    new_active_s = activated_at - killed_at_wall
    topic = f"drill-controller-{run}"
    admin_client = prod.admin()

    def metadata_write() -> bool:
        admin_client.create_topics([admin.NewTopic(topic, 1, 3)], request_timeout=5)[topic].result(timeout=10)
        return True

    wait_until(metadata_write, 60, "a topic created through the new controller", interval=0.05)
    write_s = time.monotonic() - killed_at
    leader.wait_exit()
    # The old leader returns from its volume and catches up as a follower.
    leader.start()
    leader.wait_port(leader.voter_port, 120)
    wait_until(lambda: "already formatted" in leader.log_text(), 30, f"{leader.pod} restarted from its volume")
    wait_until(
        lambda: int(quorum_status(prod.libs, prod.controller_ports).get("MaxFollowerLag", "1000000")) < 1000,
        120,
        "the restarted controller caught up",
        interval=1,
    )
    return {
        "run": run,
        "killed": leader_id,
        "new_active": node.node_id,
        "new_active_s": round(max(new_active_s, 0.0), 2),
        "metadata_write_s": round(write_s, 2),
    }


# --- dev: one combined node ---------------------------------------------------------------


def test_dev_single_node_serves_a_consumer_group(tmp_path):
    libs = kafka_libs()
    confluent_kafka, _ = _client()
    objects = Objects(render_stack("dev").objects)
    role = rendered_role(objects, f"{RELEASE}-kafka")
    assert role.replicas == 1
    broker_port, controller_port = free_port(), free_port()
    cluster_id = rendered_cluster_id(objects)
    node = _make_node(role, f"{RELEASE}-kafka-0", 0, voter_ports={0: controller_port}, libs=libs, root=tmp_path,
                      cluster_id=cluster_id, broker_port=broker_port, controller_port=controller_port)  # fmt: skip
    cluster = Cluster(libs, {0: node}, {0: node}, tmp_path, cluster_id)
    try:
        node.start()
        node.wait_port(broker_port, 180)
        wait_until(lambda: cluster.broker_ids() == {0}, 120, "the dev node registered as broker 0")
        producer = confluent_kafka.Producer(
            {"logger": RDKAFKA_LOG, "bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True}
        )
        wait_until(lambda: _auto_create(producer, "dev-events"), 60, "dev-events auto-created")
        for sequence in range(100):
            producer.produce("dev-events", value=str(sequence).encode())
        assert producer.flush(60) == 0
        consumer = confluent_kafka.Consumer(
            {"logger": RDKAFKA_LOG, "bootstrap.servers": cluster.bootstrap, "group.id": "dev-group",
             "auto.offset.reset": "earliest", "enable.auto.commit": False}
        )  # fmt: skip
        try:
            consumer.subscribe(["dev-events"])
            seen: set[int] = set()
            deadline = time.monotonic() + 90
            while not set(range(100)) <= seen and time.monotonic() < deadline:
                for message in consumer.consume(200, timeout=1):
                    if message.error() is None:
                        seen.add(int(message.value()))
            assert set(range(100)) <= seen, f"consumed {len(seen)} of 100"
            committed = consumer.commit(asynchronous=False)
            assert committed and all(tp.error is None for tp in committed)
        finally:
            consumer.close()
        offsets = cluster.partitions("__consumer_offsets")
        assert offsets and all(len(replicas) == 1 for _, replicas, _ in offsets.values())
        assert all(len(replicas) == 1 for _, replicas, _ in cluster.partitions("dev-events").values())
        report.line("Kafka", f"dev single node: 100 messages through consumer group dev-group; __consumer_offsets has "
              f"{len(offsets)} partitions with RF 1")  # fmt: skip
    finally:
        stop_all([node])


def _auto_create(producer, topic: str) -> bool:
    metadata = producer.list_topics(topic, timeout=5)
    found = metadata.topics.get(topic)
    return found is not None and found.error is None and len(found.partitions) > 0


def test_failover_timing_is_kafkas_default():
    """The drills above measure the program's failover settings; they equal Kafka's own
    defaults, so the "with Kafka's defaults" comparison is the same run (ratio 1.0)."""
    for stack in ("dev", "prod"):
        properties = rendered_role(Objects(render_stack(stack).objects), f"{RELEASE}-kafka").properties
        lines = dict(line.split("=", 1) for line in properties.splitlines() if "=" in line and not line.startswith("#"))
        assert lines["broker.session.timeout.ms"] == "9000"
        assert lines["broker.heartbeat.interval.ms"] == "2000"
        assert lines["controller.quorum.fetch.timeout.ms"] == "2000"
        assert lines["controller.quorum.election.timeout.ms"] == "1000"


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    report.table(title, columns, [[row.get(column) for column in columns] for row in rows])


def _fully_in_sync(cluster: Cluster, topic: str) -> bool:
    return all(len(isr) == 3 for _, _, isr in cluster.partitions(topic).values())


def test_readiness_probe_asks_a_real_node_and_fails_on_a_silent_port(tmp_path):
    """The rendered probe-ready.sh (the brokers' and controllers' readiness probe) passes
    against a real Kafka node on its broker and its controller listener, and fails on a
    closed port and on a listener that accepts but never answers (a stalled node: the
    TCP liveness probe would still pass there, which is the point of the pair)."""
    import socket
    import subprocess

    libs = kafka_libs()
    objects = Objects(render_stack("dev").objects)
    role = rendered_role(objects, f"{RELEASE}-kafka")
    command = readiness_command(objects, f"{RELEASE}-kafka")
    assert command[:2] == ["bash", "/etc/kafka/rendered/probe-ready.sh"] and command[2] == "9092"
    script = tmp_path / "probe-ready.sh"
    script.write_text(role.probe_ready)

    def probe(port: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(script), str(port)], capture_output=True, text=True, timeout=20, check=False)

    closed = free_port()
    assert probe(closed).returncode != 0
    with socket.create_server(("127.0.0.1", 0)) as silent:
        started = time.monotonic()
        assert probe(silent.getsockname()[1]).returncode != 0
        assert time.monotonic() - started < 10  # within the probe's timeoutSeconds
    broker_port, controller_port = free_port(), free_port()
    cluster_id = rendered_cluster_id(objects)
    node = _make_node(role, f"{RELEASE}-kafka-0", 0, voter_ports={0: controller_port}, libs=libs, root=tmp_path,
                      cluster_id=cluster_id, broker_port=broker_port, controller_port=controller_port)  # fmt: skip
    try:
        node.start()
        node.wait_port(broker_port, 180)
        wait_until(lambda: probe(broker_port).returncode == 0, 120, "the broker answers ApiVersions")
        wait_until(lambda: probe(controller_port).returncode == 0, 60, "the controller answers ApiVersions")
    finally:
        stop_all([node])
