"""The drill writer: a client that writes continuously through the Services, the way the
application does, counts what each system acknowledged and at the end reads everything
back, so a failover drill can tell how long writes stopped and whether an acknowledged
write was lost.

One JSON object per line on stdout:
  {"event": "ack", "t": <unix time>, "n": <write number>}      acknowledged
  {"event": "error", "t": ..., "error": "..."}                   a write that failed
  {"event": "summary", "acked": A, "lost": L, "lost_sample": [...], "errors": E, ...}

What "acknowledged" means is each system's durability promise to a careful client:
- postgres: the INSERT's COMMIT returned (autocommit, synchronous_commit as the server
  sets it), through DB_HOST, the primary Service;
- redis: SET returned OK (the write is served: "ack", with "durable" telling whether WAIT
  confirmed at least --replicas replicas); only durable writes count as acknowledged for
  the loss check; every key carries one hash tag, so the writes go to one master, the
  one a drill stops;
- kafka: the delivery report of an acks=all idempotent producer to a one-partition topic
  (replication factor as many brokers as answer, at most 3).
Each write waits at most a few seconds, so an outage shows as errors, not as one hang.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .checks import _need, connect_postgres

STEP_TIMEOUT = 3  # seconds a single write (or reconnect) may take
WAIT_TIMEOUT_MS = 200  # Redis WAIT: a healthy replica confirms within a millisecond or two
INTERVAL = 0.02  # seconds between writes: ~50 writes a second
VERIFY_DEADLINE = 120  # seconds the read-back keeps retrying while the system settles
TABLE = "ai_infra_drill_writes"
TAG = "drill"  # the Redis hash tag: every key in one slot
TOPIC_PREFIX = "ai-infra-drill"


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": round(time.time(), 3), **fields}), flush=True)


def _until(seconds: float, stop_file: str | None = None) -> Iterator[int]:
    """Write numbers 0, 1, ... paced at INTERVAL until ``seconds`` have passed, or until
    ``stop_file`` exists (a drill whose change takes as long as it takes ends its writers
    with it: `touch` in the writer's pod)."""
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline and not (stop_file and Path(stop_file).exists()):
        yield n
        n += 1
        time.sleep(INTERVAL)


def _retry(action: Callable[[], set[int]], deadline: float) -> set[int]:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return action()
        except Exception as error:  # the system may still be settling after the drill
            last = error
            time.sleep(1)
    raise RuntimeError(f"read-back did not succeed within {VERIFY_DEADLINE}s: {last}")


# --- PostgreSQL ---------------------------------------------------------------------------


def write_postgres(
    env: Mapping[str, str], run: str, seconds: float, stop_file: str | None = None
) -> tuple[set[int], Callable[[], set[int]]]:
    import psycopg

    def connect() -> psycopg.Connection[Any]:
        connection: psycopg.Connection[Any] = connect_postgres(
            env, timeout=STEP_TIMEOUT, application_name="ai-infra-drill-writer", autocommit=True
        )
        # a commit waiting on a lost standby must not hang the writer: it is an error
        connection.execute(f"SET statement_timeout = '{STEP_TIMEOUT}s'")
        return connection

    acked: set[int] = set()
    connection: psycopg.Connection[Any] | None = None
    for n in _until(seconds, stop_file):
        try:
            if connection is None:
                connection = connect()
                connection.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (run text, n integer, PRIMARY KEY (run, n))")
            connection.execute(f"INSERT INTO {TABLE} (run, n) VALUES (%s, %s)", (run, n))
            acked.add(n)
            emit("ack", n=n)
        except Exception as error:
            emit("error", n=n, error=f"{type(error).__name__}: {error}"[:300])
            if connection is not None:
                connection.close()
            connection = None
    if connection is not None:
        connection.close()

    def read_back() -> set[int]:
        with connect() as reader:
            rows = reader.execute(f"SELECT n FROM {TABLE} WHERE run = %s", (run,)).fetchall()
        return {row[0] for row in rows}

    return acked, read_back


# --- Redis Cluster ------------------------------------------------------------------------


class _SlotClient:
    """A connection to the master of one slot, found through CLUSTER SLOTS and found again
    after MOVED or a lost connection. SET and WAIT go over this one connection: WAIT
    counts the replicas that have this connection's writes."""

    def __init__(self, seed: tuple[str, int], password: str | None, slot: int) -> None:
        self.seed, self.password, self.slot = seed, password, slot
        self.known: list[tuple[str, int]] = [seed]
        self.client: Any = None

    def _connect(self, host: str, port: int) -> Any:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(
            host=host,
            port=port,
            password=self.password,
            socket_timeout=STEP_TIMEOUT,
            socket_connect_timeout=STEP_TIMEOUT,
            single_connection_client=True,
            # No retries inside the client: redis-py 8 retries a failed command 10 times
            # with backoff, so after a node loss (packets dropped, not refused) one SET to
            # the lost master took 26 s before this writer could look for the new one, and
            # the drills measured that, not the failover.
            retry=Retry(NoBackoff(), 0),
        )

    def master(self) -> Any:
        if self.client is not None:
            return self.client
        errors = []
        for host, port in dict.fromkeys([self.seed, *self.known]):  # the seed first, each node once
            try:
                probe = self._connect(host, port)
                try:
                    ranges = probe.execute_command("CLUSTER SLOTS")
                finally:
                    probe.close()
            except Exception as error:
                errors.append(f"{host}:{port}: {error}")
                continue
            nodes = [(str(n[0] if isinstance(n[0], str) else n[0].decode()), int(n[1])) for r in ranges for n in r[2:]]
            self.known = list(dict.fromkeys(nodes))
            for start, end, primary, *_ in ranges:
                if start <= self.slot <= end:
                    address = primary[0] if isinstance(primary[0], str) else primary[0].decode()
                    self.client = self._connect(address, int(primary[1]))
                    return self.client
            raise RuntimeError(f"slot {self.slot} has no master")
        raise RuntimeError(f"no node answered CLUSTER SLOTS: {'; '.join(errors)[:200]}")

    def reset(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None


def write_redis(
    env: Mapping[str, str], run: str, seconds: float, replicas: int, stop_file: str | None = None
) -> tuple[set[int], Callable[[], set[int]]]:
    import redis

    host, port = _need(env, "REDIS_HOST", "REDIS_PORT")
    password = env.get("REDIS_PASSWORD") or None

    def key(n: int) -> str:
        return f"{{{TAG}}}:{run}:{n}"

    # CRC16 slot of the tag, as the cluster computes it (redis-py's own implementation)
    from redis.crc import key_slot

    client = _SlotClient((host, int(port)), password, key_slot(TAG.encode()))
    durable: set[int] = set()
    for n in _until(seconds, stop_file):
        try:
            master = client.master()
            master.set(key(n), n)
        except (redis.exceptions.RedisError, OSError, RuntimeError) as error:
            emit("error", n=n, error=f"{type(error).__name__}: {error}"[:300])
            client.reset()
            continue
        # The write is served (the application's view, the write gap); it is durable once
        # WAIT confirms the replicas. While a master has no replica (its pod restarting
        # after a failover), writes are served but not durable: WAIT gives up quickly.
        try:
            confirmed = int(master.execute_command("WAIT", replicas, WAIT_TIMEOUT_MS)) if replicas else 0
        except (redis.exceptions.RedisError, OSError):
            confirmed = 0
        if confirmed >= replicas:
            durable.add(n)
        emit("ack", n=n, durable=confirmed >= replicas)
    acked = durable  # what Redis promised to keep: the WAIT-confirmed writes

    def read_back() -> set[int]:
        client.reset()
        master = client.master()
        found: set[int] = set()
        ordered = sorted(acked)
        for start in range(0, len(ordered), 500):
            batch = ordered[start : start + 500]
            values = master.mget([key(n) for n in batch])
            found |= {n for n, value in zip(batch, values, strict=True) if value is not None}
        return found

    return acked, read_back


# --- Kafka --------------------------------------------------------------------------------


def write_kafka(
    env: Mapping[str, str], run: str, seconds: float, stop_file: str | None = None
) -> tuple[set[int], Callable[[], set[int]]]:
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    (bootstrap,) = _need(env, "KAFKA_BOOTSTRAP_SERVERS")
    common: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap, "log_level": 0}
    topic = f"{TOPIC_PREFIX}-{run}"
    admin = AdminClient(common)
    brokers = len(admin.list_topics(timeout=10).brokers)
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=min(3, brokers))])
    for future in futures.values():
        try:
            future.result(timeout=30)
        except KafkaException as error:
            if error.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    emit("topic", topic=topic, replication_factor=min(3, brokers))
    acked: set[int] = set()

    def delivered(error: Any, message: Any) -> None:
        n = int(message.value())
        if error is None:
            acked.add(n)
            emit("ack", n=n)
        else:
            emit("error", n=n, error=str(error)[:300])

    producer = Producer(
        {
            **common,
            "acks": "all",
            "enable.idempotence": True,
            # a message not acknowledged within this is reported as an error, not retried forever
            "delivery.timeout.ms": 30000,
            "linger.ms": 0,
        }
    )
    for n in _until(seconds, stop_file):
        producer.produce(topic, value=str(n).encode(), on_delivery=delivered)
        producer.poll(0)
    producer.flush(60)

    def read_back() -> set[int]:
        consumer = Consumer({**common, "group.id": f"{topic}-verify-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False})
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
            consumer.assign([TopicPartition(topic, 0, low)])
            found: set[int] = set()
            deadline = time.monotonic() + 60
            position = low
            while position < high and time.monotonic() < deadline:
                message = consumer.poll(1.0)
                if message is None or message.error():
                    continue
                value, offset = message.value(), message.offset()
                if value is not None and offset is not None:
                    found.add(int(value))
                    position = offset + 1
            if position < high:
                raise RuntimeError(f"read {position - low} of {high - low} messages")
            return found
        finally:
            consumer.close()

    return acked, read_back


def main(system: str, seconds: float, replicas: int, env: Mapping[str, str] | None = None, stop_file: str | None = None) -> int:
    """Write for ``seconds`` (or until ``stop_file`` exists), read back, print the summary;
    exit 0 when nothing acknowledged was lost."""
    env = os.environ if env is None else env
    run = f"{socket.gethostname()[-5:]}{uuid.uuid4().hex[:6]}"
    emit("start", system=system, run=run)
    writers: dict[str, Callable[[], tuple[set[int], Callable[[], set[int]]]]] = {
        "postgres": lambda: write_postgres(env, run, seconds, stop_file),
        "redis": lambda: write_redis(env, run, seconds, replicas, stop_file),
        "kafka": lambda: write_kafka(env, run, seconds, stop_file),
    }
    acked, read_back = writers[system]()
    started = time.monotonic()
    found = _retry(read_back, started + VERIFY_DEADLINE)
    lost = sorted(acked - found)
    emit(
        "summary",
        system=system,
        run=run,
        acked=len(acked),
        lost=len(lost),
        lost_sample=lost[:20],
        verify_seconds=round(time.monotonic() - started, 2),
    )
    sys.stdout.flush()
    return 0 if not lost else 3
