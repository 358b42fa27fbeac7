"""Runs Kafka nodes on 127.0.0.1 from the files the program renders: the ConfigMap's
server.properties (only hosts, ports and log.dirs changed, see ``localize``) and its
entrypoint.sh (launched with the env of the rendered StatefulSet; only the launcher of the
server and of the storage tool points at the Maven jars instead of the image's bin/)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "tools" / "ci" / "kafka-pom.xml"
HEAP = "-Xms128m -Xmx256m"
# C1 only and the serial GC: six JVMs start on two busy cores in reasonable time.
JVM_FLAGS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -Djava.awt.headless=true"
ACTIVE_CONTROLLER = re.compile(r"^\[(\d+)\] INFO \[QuorumController id=(\d+)\] Becoming the active controller at epoch (\d+)")

LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d{UNIX_MILLIS}] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    assert match, f"no kafka.version in {POM}"
    return match.group(1)


def kafka_libs() -> Path:
    """The jars tools/ci/install-kafka.sh copied from Maven Central; fails (not skips)
    when they or Java are missing."""
    libs = Path(os.environ.get("KAFKA_LIBS") or Path.home() / ".cache" / "ai-infra-matrix" / "kafka" / kafka_version() / "libs")
    if not (libs / f"kafka_2.13-{kafka_version()}.jar").is_file():
        pytest.fail(f"Kafka {kafka_version()} jars not found in {libs}: run tools/ci/install-kafka.sh")
    try:
        subprocess.run(["java", "-version"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.fail(f"java is not runnable ({error}): run tools/ci/install-kafka.sh")
    return libs


# --- the rendered objects --------------------------------------------------------------


@dataclass(frozen=True)
class RenderedRole:
    """What one StatefulSet's pods read: its ConfigMap files and its container env."""

    statefulset: str
    properties: str
    entrypoint: str
    env: dict[str, str]  # literal env values of the kafka container
    replicas: int
    probe_ready: str = ""  # the readiness probe's script


def readiness_command(objects: Any, statefulset: str) -> list[str]:
    """The kafka container's readiness exec command, as rendered."""
    pod = objects.get("StatefulSet", statefulset)["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "kafka")["readinessProbe"]["exec"]["command"]


def rendered_role(objects: Any, statefulset: str) -> RenderedRole:
    sts = objects.get("StatefulSet", statefulset)
    pod = sts["spec"]["template"]["spec"]
    config_map = next(v["configMap"]["name"] for v in pod["volumes"] if v["name"] == "config")
    data = objects.get("ConfigMap", config_map)["data"]
    container = next(c for c in pod["containers"] if c["name"] == "kafka")
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return RenderedRole(
        statefulset, data["server.properties"], data["entrypoint.sh"], env, sts["spec"]["replicas"], data["probe-ready.sh"]
    )


def rendered_cluster_id(objects: Any, release: str = "ai-infra") -> str:
    return objects.get("Secret", f"{release}-kafka-kraft")["stringData"]["cluster-id"]


# --- hosts, ports and directories ------------------------------------------------------


def localize(properties: str, *, voter_ports: dict[int, int], ports: dict[str, int], data_dir: Path) -> str:
    """``properties`` with every host made 127.0.0.1, every port taken from ``voter_ports``
    (controller.quorum.voters, by node id) or ``ports`` (listener name -> port), and
    log.dirs moved under ``data_dir`` (keeping its subdirectory). Nothing else changes."""
    out = []
    for line in properties.splitlines():
        key, sep, value = line.partition("=")
        if line.startswith("#") or not sep:
            out.append(line)
        elif key == "controller.quorum.voters":
            ids = [int(voter.split("@")[0]) for voter in value.split(",")]
            assert sorted(ids) == sorted(voter_ports), f"voters {ids} != {sorted(voter_ports)}"
            out.append(f"{key}=" + ",".join(f"{i}@127.0.0.1:{voter_ports[i]}" for i in ids))
        elif key in ("listeners", "advertised.listeners"):
            endpoints = []
            for endpoint in value.split(","):
                name, _, address = endpoint.partition("://")
                host = address.rpartition(":")[0]
                host = "127.0.0.1" if key == "listeners" else host  # advertised: @ADVERTISED_HOST@ stays
                endpoints.append(f"{name}://{host}:{ports[name]}")
            out.append(f"{key}=" + ",".join(endpoints))
        elif key == "log.dirs":
            subdir = Path(value).name
            out.append(f"{key}={data_dir / subdir}")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


# --- one node ----------------------------------------------------------------------------


@dataclass
class Node:
    pod: str  # the pod name the entrypoint takes the ordinal from
    node_id: int
    role: RenderedRole
    properties: str  # localized
    workdir: Path
    cluster_id: str
    libs: Path
    broker_port: int | None = None
    controller_port: int | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / "node.log"

    @property
    def client_port(self) -> int:
        """The broker listener's port (brokers and the combined node only)."""
        assert self.broker_port is not None, f"{self.pod} is not a broker"
        return self.broker_port

    @property
    def voter_port(self) -> int:
        """The controller listener's port (voters only)."""
        assert self.controller_port is not None, f"{self.pod} is not a voter"
        return self.controller_port

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        template = self.workdir / "server.properties.rendered"
        template.write_text(self.properties)
        entrypoint = self.workdir / "entrypoint.sh"
        entrypoint.write_text(self.role.entrypoint)
        log4j = self.workdir / "log4j2.properties"
        log4j.write_text(LOG4J2)
        launcher = self.workdir / "kafka-server-start.sh"
        launcher.write_text(
            "#!/bin/bash\n"
            f'exec java $KAFKA_HEAP_OPTS {JVM_FLAGS} -Dlog4j2.configurationFile={log4j} -cp "{self.libs}/*" kafka.Kafka "$@"\n'
        )
        storage = self.workdir / "kafka-storage.sh"
        storage.write_text(
            f'#!/bin/bash\nexec java -Xmx128m {JVM_FLAGS} -Dlog4j2.configurationFile={log4j} -cp "{self.libs}/*" '
            'kafka.tools.StorageTool "$@"\n'
        )
        for script in (launcher, storage):
            script.chmod(0o755)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            **{k: v for k, v in self.role.env.items() if k not in ("PATH", "LOG_DIR")},
            "CLUSTER_ID": self.cluster_id,
            "POD_NAME": self.pod,
            "KAFKA_CONFIG_TEMPLATE": str(template),
            "KAFKA_CONFIG": str(self.workdir / "run" / "server.properties"),
            "KAFKA_SERVER_START": str(launcher),
            "KAFKA_STORAGE_TOOL": str(storage),
            "KAFKA_SERVER_HEAP_OPTS": HEAP,
        }
        if "KAFKA_ADVERTISED_HOST" in env:
            env["KAFKA_ADVERTISED_HOST"] = "127.0.0.1"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ["bash", str(entrypoint)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signals the process group (entrypoint.sh execs java, so that is the JVM)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 30) -> None:
        if self.process is None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def wait_exit(self, timeout: float = 10) -> None:
        if self.process is not None:
            self.process.wait(timeout=timeout)
            self.process = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_port(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"{self.pod} exited ({self.process and self.process.returncode}):\n{self.tail()}")
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{self.pod} did not listen on {port} within {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def activations(self) -> list[tuple[float, int]]:
        """(epoch seconds, epoch) of each 'Becoming the active controller' in the log."""
        found = []
        for line in self.log_text().splitlines():
            match = ACTIVE_CONTROLLER.match(line)
            if match:
                found.append((int(match.group(1)) / 1000, int(match.group(3))))
        return found


def stop_all(nodes: Iterable[Node]) -> None:
    for node in nodes:
        node.kill(signal.SIGKILL)
    for node in nodes:
        if node.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=20)
            node.process = None


def quorum_status(libs: Path, controller_ports: Iterable[int]) -> dict[str, str]:
    """``kafka-metadata-quorum describe --status`` against the controllers."""
    bootstrap = ",".join(f"127.0.0.1:{port}" for port in controller_ports)
    result = subprocess.run(
        ["java", "-Xmx128m", *JVM_FLAGS.split(), "-cp", f"{libs}/*", "org.apache.kafka.tools.MetadataQuorumCommand",
         "--bootstrap-controller", bootstrap, "describe", "--status"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"kafka-metadata-quorum failed: {result.stderr[-2000:]}")
    status = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            status[key.strip()] = value.strip()
    return status
