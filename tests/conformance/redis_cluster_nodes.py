"""Real redis-server nodes on loopback for the Redis Cluster conformance tests.

Every node runs the rendered ``start.sh`` with the rendered ``redis.conf`` (from the
ConfigMap of a ``render_stack`` render), changed only where the issue allows: the bind
address (each node gets its own 127.0.0.x, as each pod has its own IP), the data
directory and the port. The Jobs and the preStop hook are the rendered scripts, run with
bash as in the image. The password reaches every process as REDISCLI_AUTH only.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.conformance import report
from tests.loopback import free_port, wait_until

INSTALL_HINT = "install it with: sudo bash tools/ci/install-redis.sh"
SLOTS = 16384


def require_binaries() -> None:
    for binary in ("redis-server", "redis-cli", "bash", "getent", "timeout"):
        if shutil.which(binary) is None:
            raise AssertionError(f"{binary} is not installed; {INSTALL_HINT}")


def slot_of(key: str) -> int:
    """Redis Cluster's hash slot of ``key`` (CRC16/XMODEM of the hash tag or key)."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    crc = 0
    for byte in key.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % SLOTS


@dataclass
class NodeInfo:
    node_id: str
    address: str  # ip:port
    flags: set[str]
    master_id: str
    link: str
    slots: list[str]

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def slot_count(self) -> int:
        count = 0
        for part in self.slots:
            if part.startswith("["):
                continue
            low, _, high = part.partition("-")
            count += (int(high) - int(low) + 1) if high else 1
        return count


def parse_nodes(text: str) -> dict[str, NodeInfo]:
    nodes = {}
    for line in text.strip().splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        nodes[fields[0]] = NodeInfo(
            node_id=fields[0],
            address=fields[1].split("@")[0],
            flags=set(fields[2].split(",")),
            master_id=fields[3],
            link=fields[7],
            slots=fields[8:],
        )
    return nodes


class Node:
    """One redis-server started through the rendered start.sh."""

    def __init__(self, cluster: LocalCluster, ordinal: int):
        self.cluster = cluster
        self.ordinal = ordinal
        self.data_dir = cluster.workdir / f"node-{ordinal}" / "data"
        self.log_path = cluster.workdir / f"node-{ordinal}" / "start.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.ip = ""

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.cluster.port}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, f"node {self.ordinal} already running"
        self.ip = self.cluster.host(self.ordinal)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.cluster.conf_for(self.ip, self.data_dir)
        conf_path = self.data_dir.parent / "redis.conf"
        conf_path.write_text(conf)
        env = self.cluster.env(POD_IP=self.ip, REDIS_CONF=str(conf_path), REDIS_DATA_DIR=str(self.data_dir))
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                ["bash", str(self.cluster.scripts / "start.sh")],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()

    def wait_up(self, timeout: float = 30) -> None:
        wait_until(lambda: self.client().ping(), timeout, f"node {self.ordinal} at {self.address} to answer PING")

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A plain connection to this node; CLUSTER replies come back as Redis sends them."""
        client = redis.Redis(
            host=self.ip,
            port=self.cluster.port,
            password=self.cluster.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
        )
        for command in ("CLUSTER NODES", "CLUSTER INFO", "CLUSTER SLOTS", "CLUSTER MYID"):
            client.response_callbacks.pop(command, None)
        return client

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Stop the server (and the repair loop it may have left in its process group)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.send(signum)
                self.process.wait(timeout=timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        self._kill_group()

    def _kill_group(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)

    def cmdline(self) -> str:
        assert self.process is not None
        return Path(f"/proc/{self.process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()

    def info(self, section: str) -> dict[str, Any]:
        return self.client().info(section)

    def nodes(self) -> dict[str, NodeInfo]:
        return parse_nodes(self.client().execute_command("CLUSTER NODES"))

    def myid(self) -> str:
        return self.client().execute_command("CLUSTER MYID")


@dataclass
class LocalCluster:
    """``count`` node slots (ordinals) sharing one rendered config; nodes are started as
    the test needs them. ``template`` is the printf template of node addresses, the
    loopback stand-in for the pods' DNS names."""

    files: dict[str, str]  # the ConfigMap's data
    workdir: Path
    password: str
    template: str
    port: int = 0
    # Addresses the nodes move to in the full-restart drill; the port must be free there too.
    alternate_template: str = ""
    nodes: list[Node] = field(default_factory=list)
    job_log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scripts = self.workdir / "scripts"
        self.scripts.mkdir(parents=True, exist_ok=True)
        for name, content in self.files.items():
            (self.scripts / name).write_text(content)
        if not self.port:
            templates = [self.template] + ([self.alternate_template] if self.alternate_template else [])
            self.port = free_port(bus_offset=10000, addresses=[template % i for template in templates for i in range(10)])

    def host(self, ordinal: int) -> str:
        return self.template % ordinal

    def node(self, ordinal: int) -> Node:
        while len(self.nodes) <= ordinal:
            self.nodes.append(Node(self, len(self.nodes)))
        return self.nodes[ordinal]

    def conf_for(self, ip: str, data_dir: Path) -> str:
        """The rendered redis.conf with only the bind address and data directory changed."""
        conf = self.files["redis.conf"]
        assert "bind * -::*\n" in conf and "dir /data\n" in conf
        conf = conf.replace("bind * -::*\n", f"bind {ip}\n")
        return re.sub(r"(?m)(^dir |^cluster-config-file )/data", lambda m: m.group(1) + str(data_dir), conf)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "REDISCLI_AUTH": self.password,
            "REDIS_PORT": str(self.port),
            "REDIS_NODE_HOST_TEMPLATE": self.template,
            "REDIS_HEAL_SECONDS": "180",
            **extra,
        }

    def start(self, ordinals: range | list[int]) -> None:
        for ordinal in ordinals:
            self.node(ordinal).start()
        for ordinal in ordinals:
            self.node(ordinal).wait_up()

    def running(self) -> list[Node]:
        return [node for node in self.nodes if node.running()]

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop(signal.SIGKILL, timeout=5)

    # --- the Jobs and the hook -----------------------------------------------------

    def job(
        self, mode: str, masters: int, replicas: int, *, drain: bool = False, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        env = self.env(
            REDIS_NODE_COUNT=str(masters * (1 + replicas)),
            REDIS_MASTER_COUNT=str(masters),
            REDIS_REPLICAS_PER_MASTER=str(replicas),
            REDIS_DRAIN="yes" if drain else "no",
            REDIS_WAIT_SECONDS="120",
        )
        result = subprocess.run(
            ["bash", str(self.scripts / f"cluster-{mode}.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        self.job_log.append(f"$ cluster-{mode}.sh (M={masters} R={replicas} drain={drain}) -> {result.returncode}")
        self.job_log.append(result.stdout + result.stderr)
        return result

    def prestop(self, node: Node, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.scripts / "prestop.sh")],
            env=self.env(POD_IP=node.ip, REDIS_FAILOVER_TIMEOUT="20"),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def probe(self, node: Node, script: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.scripts / script)],
            env=self.env(POD_IP=node.ip, **extra),
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    # --- views -------------------------------------------------------------------------

    def view(self) -> dict[str, NodeInfo]:
        """CLUSTER NODES as seen by the first running node that answers."""
        for node in self.running():
            try:
                return node.nodes()
            except redis.RedisError:
                continue
        raise AssertionError("no running node answers CLUSTER NODES")

    def snapshot(self) -> dict[str, tuple[str, str, tuple[str, ...]]]:
        """Roles, masters and slot ranges of every node: what a no-op must leave alone."""
        return {
            info.node_id: ("master" if info.is_master else "slave", info.master_id, tuple(info.slots))
            for info in self.view().values()
        }

    def masters(self) -> list[NodeInfo]:
        return [info for info in self.view().values() if info.is_master and info.slot_count > 0]

    def node_at(self, address: str) -> Node:
        return next(node for node in self.running() if node.address == address)

    def owner_of(self, slot: int, exclude: str = "") -> str | None:
        """Address of the master serving ``slot``, asked of any node but ``exclude``."""
        for node in self.running():
            if node.address == exclude:
                continue
            try:
                for low, high, master, *_ in node.client(timeout=0.5).execute_command("CLUSTER SLOTS"):
                    if low <= slot <= high:
                        return f"{master[0]}:{master[1]}"
            except (redis.RedisError, OSError):
                continue
        return None

    def healthy(self, expected_nodes: int) -> bool:
        """Every running node reports cluster_state:ok and knows ``expected_nodes`` healthy
        nodes; all slots are covered; every replica's link is up."""
        running = self.running()
        if len(running) != expected_nodes:
            return False
        for node in running:
            client = node.client()
            info = client.execute_command("CLUSTER INFO")
            if "cluster_state:ok" not in info or f"cluster_slots_ok:{SLOTS}" not in info:
                return False
            view = parse_nodes(client.execute_command("CLUSTER NODES"))
            healthy = [
                n for n in view.values() if not n.flags & {"fail", "fail?", "handshake", "noaddr"} and n.link == "connected"
            ]
            if len(healthy) != expected_nodes:
                return False
            replication = client.info("replication")
            if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                return False
        return True

    def wait_healthy(self, expected_nodes: int, timeout: float = 90) -> float:
        started = time.monotonic()
        wait_until(lambda: self.healthy(expected_nodes), timeout, f"{expected_nodes} healthy nodes", interval=0.5)
        return time.monotonic() - started

    def cluster_client(self) -> redis.RedisCluster:
        node = self.running()[0]
        return redis.RedisCluster(host=node.ip, port=self.port, password=self.password, decode_responses=True)


# --- measurements ------------------------------------------------------------------------


def record(name: str, values: list[float], unit: str, **extra: Any) -> dict[str, Any]:
    entry = {
        "system": "redis",
        "name": name,
        "unit": unit,
        "values": [round(v, 3) for v in values],
        "median": round(statistics.median(values), 3) if values else None,
        **extra,
    }
    report.measurement(**entry)
    return entry
