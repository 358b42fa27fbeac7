"""The Kafka image runs the KafkaKRaft pod as rendered: entrypoint.sh formats the volume
and starts a combined node through the image's kafka-server-start.sh, on a read-only
root; the guide's commands work from the image (see conftest.kafka_node)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.images.conftest import Service
from tests.images.sandbox import describe

pytestmark = pytest.mark.images


def tool(node: Service, *argv: str, extra: dict[str, str] | None = None, stdin: str | None = None) -> str:
    result = node.sandbox.run(list(argv), env={**node.env, **(extra or {})}, timeout=120, stdin=stdin)
    assert result.returncode == 0, describe(result)
    return result.stdout


def test_the_entrypoint_formats_then_starts_the_node(kafka_node: Service):
    log = kafka_node.log.read_text()
    assert "formatting /var/lib/kafka/data/kraft-logs for cluster" in log
    assert "starting broker,controller" in log
    assert (kafka_node.sandbox.volumes["/var/lib/kafka/data"] / "kraft-logs" / "meta.properties").is_file()
    # the GC log goes to LOG_DIR, the logs emptyDir; nothing else is written there
    assert (kafka_node.sandbox.volumes["/opt/kafka/logs"] / "kafkaServer-gc.log").is_file()


def test_the_guides_commands(kafka_node: Service):
    bootstrap = f"127.0.0.1:{kafka_node.port}"
    versions = tool(kafka_node, "kafka-broker-api-versions.sh", "--bootstrap-server", bootstrap)
    assert "(id: 0 rack: null" in versions and "Produce(0)" in versions
    tool(kafka_node, "kafka-topics.sh", "--bootstrap-server", bootstrap, "--create", "--topic", "image-test", "--partitions", "1")
    assert "image-test" in tool(kafka_node, "kafka-topics.sh", "--bootstrap-server", bootstrap, "--list").split()
    quorum = tool(kafka_node, "kafka-metadata-quorum.sh", "--bootstrap-server", bootstrap, "describe", "--status")
    assert re.search(r"^LeaderId:\s+0$", quorum, re.MULTILINE), quorum
    tool(
        kafka_node,
        "kafka-console-producer.sh",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        "image-test",
        stdin="from-the-image\n",
    )
    consumed = tool(
        kafka_node,
        *("kafka-console-consumer.sh", "--bootstrap-server", bootstrap, "--topic", "image-test"),
        *("--from-beginning", "--max-messages", "1", "--timeout-ms", "60000"),
    )
    assert consumed.strip() == "from-the-image"


def _max_heap(output: str) -> int:
    match = re.search(r"-XX:MaxHeapSize=(\d+)", output)
    assert match, output
    return int(match.group(1))


def test_the_server_heap_comes_from_kafka_server_heap_opts(kafka_node: Service):
    cmdline = Path(f"/proc/{kafka_node.process.pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0].endswith(b"java") and b"kafka.Kafka" in cmdline
    assert [arg for arg in cmdline if arg.startswith((b"-Xms", b"-Xmx"))] == [b"-Xms256m", b"-Xmx256m"]


def test_tools_keep_their_own_heap_and_honour_kafka_heap_opts(kafka_node: Service):
    flags = {"KAFKA_OPTS": "-XX:+PrintCommandLineFlags"}
    # KAFKA_SERVER_HEAP_OPTS is set in the pod (here 256m): a tool run with kubectl exec ignores it
    server_heap = {"KAFKA_SERVER_HEAP_OPTS": "-Xms1g -Xmx1g"}
    assert _max_heap(tool(kafka_node, "kafka-topics.sh", "--version", extra={**flags, **server_heap})) == 256 << 20
    assert (
        _max_heap(tool(kafka_node, "kafka-topics.sh", "--version", extra={**flags, "KAFKA_HEAP_OPTS": "-Xmx128m"})) == 128 << 20
    )


def test_every_listed_tool_starts(kafka_node: Service):
    names = [line.split()[0] for line in tool(kafka_node, "kafka-tool.sh", "--list").splitlines()]
    assert len(names) >= 20
    # --version needs no cluster and loads the class: a missing class or jar fails here
    for name in ("kafka-configs.sh", "kafka-consumer-groups.sh", "kafka-reassign-partitions.sh", "kafka-acls.sh"):
        assert "4.1.1" in tool(kafka_node, name, "--version"), name
    assert "4.1" in tool(kafka_node, "kafka-storage.sh", "version-mapping")
