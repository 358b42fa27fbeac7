"""Small Redis Clusters on 127.0.0.1 for the backup conformance test: nodes run the
program's rendered ``redis.conf`` (only the bind address, port and data directory
changed; the password is piped in on stdin as start.sh does), slots assigned directly.
tools/ci/install-redis.sh installs redis-server and redis-cli."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import cast

import redis

from tests.loopback import wait_until

INSTALL_SCRIPT = "tools/ci/install-redis.sh"
SLOTS = 16384


def missing_software() -> list[str]:
    return [binary for binary in ("redis-server", "redis-cli") if shutil.which(binary) is None]


def free_port() -> int:
    # The cluster bus listens on port + 10000: both must be free.
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise AssertionError("no free port pair for a Redis node")


@dataclass
class Process:
    """A redis-server started by this test, stopped by it."""

    args: list[str]
    home: Path
    stdin: str = ""
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.home / "redis.log").open("ab")
        self.process = subprocess.Popen(
            self.args, cwd=self.home, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        assert self.process.stdin is not None
        self.process.stdin.write(self.stdin.encode())
        self.process.stdin.close()
        log.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@dataclass
class Cluster:
    """``masters`` cluster-mode nodes without replicas, slots split evenly."""

    root: Path
    conf: str  # the rendered redis.conf
    password: str
    masters: int
    nodes: list[tuple[int, Process]] = field(default_factory=list)

    def start(self) -> None:
        assert "bind * -::*\n" in self.conf and "dir /data\n" in self.conf
        for index in range(self.masters):
            port = free_port()
            home = self.root / f"node{index}"
            home.mkdir(parents=True)
            conf = self.conf.replace("bind * -::*\n", "bind 127.0.0.1\n")
            conf = re.sub(r"(?m)^(dir |cluster-config-file )/data", rf"\g<1>{home}", conf)
            (home / "redis.conf").write_text(conf)
            process = Process(
                ["redis-server", str(home / "redis.conf"), "--port", str(port), "-"],
                home,
                stdin=f"requirepass {self.password}\nmasterauth {self.password}\n",
            )
            process.start()
            self.nodes.append((port, process))
        for port, _ in self.nodes:
            wait_until(partial(self.ping, port), 20, f"node :{port}")
        per = SLOTS // self.masters
        for index, (port, _) in enumerate(self.nodes):
            last = SLOTS - 1 if index == self.masters - 1 else (index + 1) * per - 1
            self.client(port).execute_command("CLUSTER", "ADDSLOTSRANGE", index * per, last)
            if index:
                self.client(port).execute_command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0][0])
        wait_until(self.healthy, 30, "cluster_state:ok on every node")

    def healthy(self) -> bool:
        for port, _ in self.nodes:
            info = self.client(port).execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            if "cluster_state:ok" not in text or f"cluster_known_nodes:{self.masters}" not in text:
                return False
        return True

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, password=self.password, socket_timeout=5)

    def ping(self, port: int) -> bool:
        return bool(self.client(port).ping())

    def cluster_client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.nodes[0][0], password=self.password, socket_timeout=5)

    def stop(self) -> None:
        for _, process in self.nodes:
            process.stop()

    def contents(self) -> dict[bytes, tuple[bytes, object, bool]]:
        """key -> (type, value, has a TTL) over every node. Values in a canonical form:
        a set's members sorted, as their order in a hash table is not part of the data."""
        found: dict[bytes, tuple[bytes, object, bool]] = {}
        for port, _ in self.nodes:
            client = self.client(port)
            for key in client.scan_iter(count=1000):
                kind = cast(bytes, client.type(key))  # bytes: the client does not decode
                found[key] = (kind, _value(client, key, kind), client.pttl(key) > 0)
        return found


def _value(client: redis.Redis, key: bytes, kind: bytes) -> object:
    if kind == b"string":
        return client.get(key)
    if kind == b"hash":
        return sorted(client.hgetall(key).items())
    if kind == b"list":
        return client.lrange(key, 0, -1)
    if kind == b"set":
        return sorted(client.smembers(key))
    if kind == b"zset":
        return client.zrange(key, 0, -1, withscores=True)
    raise AssertionError(f"unexpected type {kind!r} of {key!r}")


def load_dataset(cluster: Cluster, keys: int) -> None:
    """Strings, hashes, lists, sets, sorted sets, unicode keys and keys with a TTL."""
    client = cluster.cluster_client()
    try:
        for i in range(keys):
            kind = i % 6
            if kind == 0:
                client.set(f"session:{i}", f"值-{i}-" + "x" * (i % 50))
            elif kind == 1:
                client.hset(f"user:{i}", mapping={"name": f"Ωμέγα {i}", "visits": i, "email": f"u{i}@example.com"})
            elif kind == 2:
                client.rpush(f"queue:{i}", *[f"job-{i}-{n}" for n in range(i % 7 + 1)])
            elif kind == 3:
                client.sadd(f"tags:{i}", *{f"t{n}" for n in range(i % 5 + 1)})
            elif kind == 4:
                client.zadd(f"rank:{i}", {f"m{n}": n * 1.5 for n in range(i % 4 + 1)})
            else:
                client.set(f"缓存:{i}", b"\x00\xffbinary" * (i % 3 + 1), ex=86400)
    finally:
        client.close()


@contextlib.contextmanager
def standalone(root: Path, rdb: Path) -> Iterator[int]:
    """A temporary non-cluster redis-server on 127.0.0.1 that loads ``rdb``: the source
    of ``redis-cli --cluster import`` in the restore procedure. Yields its port."""
    home = root / f"restore-{rdb.stem}"
    home.mkdir(parents=True)
    shutil.copy(rdb, home / "dump.rdb")
    port = free_port()
    process = Process(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(home),
            "--dbfilename",
            "dump.rdb",
            "--appendonly",
            "no",
            "--save",
            "",
        ],
        home,
    )
    process.start()
    try:
        wait_until(lambda: redis.Redis(host="127.0.0.1", port=port).ping(), 30, f"restore server :{port}")
        yield port
    finally:
        process.stop()
