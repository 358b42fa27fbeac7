"""The self-check: write and read back through each dependency the env names.

Each check is bounded in time (a few seconds per network step) and reports what it did
or the error it met, never raising: a dependency that is missing or refuses makes the
check fail cleanly, with a reason a test can show.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

TIMEOUT_SECONDS = 5
TOPIC = "ai-infra-selfcheck"
TABLE = "ai_infra_selfcheck"
KEY_PREFIX = "ai-infra-selfcheck"


class NotConfigured(RuntimeError):
    """The env does not name this dependency."""


@dataclass
class Result:
    name: str
    ok: bool
    seconds: float
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def _need(env: Mapping[str, str], *names: str) -> list[str]:
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise NotConfigured(f"not configured: {', '.join(missing)} not set")
    return [env[name] for name in names]


def _token() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:12]}"


def connect_postgres(env: Mapping[str, str], *, timeout: float, application_name: str, autocommit: bool = False) -> Any:
    """A connection to the database the DB_* env names."""
    import psycopg

    host, port, database, user, password = _need(env, "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD")
    return psycopg.connect(
        host=host,
        port=int(port),
        dbname=database,
        user=user,
        password=password,
        sslmode=env.get("DB_SSLMODE", "prefer"),
        connect_timeout=timeout,
        autocommit=autocommit,
        application_name=application_name,
    )


def check_postgres(env: Mapping[str, str]) -> dict[str, Any]:
    """Upsert this pod's row in ai_infra_selfcheck and read it back (one row per pod)."""

    token = _token()
    with connect_postgres(env, timeout=TIMEOUT_SECONDS, application_name="ai-infra-test-app") as connection:
        connection.execute(f"SET statement_timeout = '{TIMEOUT_SECONDS}s'")
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (pod text PRIMARY KEY, token text NOT NULL, written_at timestamptz NOT NULL)"
        )
        connection.execute(
            f"INSERT INTO {TABLE} (pod, token, written_at) VALUES (%s, %s, now()) "
            "ON CONFLICT (pod) DO UPDATE SET token = EXCLUDED.token, written_at = EXCLUDED.written_at",
            (socket.gethostname(), token),
        )
        connection.commit()
        row = connection.execute(f"SELECT token FROM {TABLE} WHERE pod = %s", (socket.gethostname(),)).fetchone()
        server = connection.execute("SELECT current_setting('server_version'), pg_is_in_recovery()").fetchone()
    if row is None or row[0] != token:
        raise RuntimeError(f"read back {row!r}, wrote {token!r}")
    return {
        "table": TABLE,
        "row": socket.gethostname(),
        "serverVersion": server[0] if server else "",
        "inRecovery": server[1] if server else None,
    }


def check_redis(env: Mapping[str, str]) -> dict[str, Any]:
    """One key on every master (shard): SET with a short expiry, GET it back."""
    import redis
    from redis.cluster import RedisCluster

    host, port = _need(env, "REDIS_HOST", "REDIS_PORT")
    password = env.get("REDIS_PASSWORD") or None
    options: dict[str, Any] = {"socket_timeout": TIMEOUT_SECONDS, "socket_connect_timeout": TIMEOUT_SECONDS}
    token = _token()
    if env.get("REDIS_CLUSTER", "true").lower() != "true":
        client = redis.Redis(host=host, port=int(port), password=password, **options)
        key = f"{KEY_PREFIX}:{socket.gethostname()}"
        client.set(key, token, ex=300)
        if client.get(key) != token.encode():
            raise RuntimeError(f"{key} did not read back")
        return {"mode": "standalone", "keys": [key]}
    cluster = RedisCluster(host=host, port=int(port), password=password, **options)
    try:
        shards = []
        for primary in cluster.get_primaries():
            key = _key_on(cluster, primary.name)
            cluster.set(key, token, ex=300)
            value = cluster.get(key)
            if value != token.encode():
                raise RuntimeError(f"{key} on {primary.name} read back {value!r}")
            shards.append({"node": primary.name, "key": key, "slot": cluster.keyslot(key)})
        if not shards:
            raise RuntimeError("the cluster has no master")
        return {"mode": "cluster", "shards": shards}
    finally:
        cluster.close()


def _key_on(cluster: Any, node_name: str) -> str:
    """A key whose slot the node ``node_name`` (host:port) owns."""
    for n in range(100_000):
        key = f"{KEY_PREFIX}:{{{n}}}"
        if cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key)).name == node_name:
            return key
    raise RuntimeError(f"no key found for {node_name}")


def check_kafka(env: Mapping[str, str]) -> dict[str, Any]:
    """Produce one message to ai-infra-selfcheck and consume exactly it back."""
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    (bootstrap,) = _need(env, "KAFKA_BOOTSTRAP_SERVERS")
    common: dict[str, str | int | float | bool] = {
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": TIMEOUT_SECONDS * 1000,
        # librdkafka logs every refused reconnect (every 100 ms) to stderr; the check's
        # own error says what failed, once.
        "log_level": 0,
        "reconnect.backoff.ms": 500,
    }
    admin = AdminClient(common)
    # broker defaults for replication; an existing topic is fine
    for future in admin.create_topics([NewTopic(TOPIC, num_partitions=1)], request_timeout=TIMEOUT_SECONDS).values():
        try:
            future.result(timeout=TIMEOUT_SECONDS * 2)
        except KafkaException as error:
            if error.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    token = _token()
    delivered: list[Any] = []
    producer = Producer({**common, "message.timeout.ms": TIMEOUT_SECONDS * 2000, "acks": "all"})
    producer.produce(TOPIC, value=token.encode(), on_delivery=lambda error, message: delivered.append(error or message))
    producer.flush(TIMEOUT_SECONDS * 3)
    if not delivered:
        raise RuntimeError("the message was not delivered in time")
    if not hasattr(delivered[0], "offset"):
        raise RuntimeError(f"delivery failed: {delivered[0]}")
    partition, offset = delivered[0].partition(), delivered[0].offset()
    consumer = Consumer({**common, "group.id": f"{TOPIC}-{socket.gethostname()}", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(TOPIC, partition, offset)])
        deadline = time.monotonic() + TIMEOUT_SECONDS * 3
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            if message.value() == token.encode():
                return {"topic": TOPIC, "partition": partition, "offset": offset}
        raise RuntimeError(f"produced to {TOPIC}[{partition}]@{offset} but did not read it back in time")
    finally:
        consumer.close()


CHECKS: dict[str, Callable[[Mapping[str, str]], dict[str, Any]]] = {
    "postgres": check_postgres,
    "redis": check_redis,
    "kafka": check_kafka,
}


def selfcheck(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every check's result; ``ok`` only when all of them passed."""
    env = os.environ if env is None else env
    results = []
    for name, check in CHECKS.items():
        start = time.monotonic()
        try:
            detail = check(env)
            results.append(Result(name, True, round(time.monotonic() - start, 3), detail))
        except Exception as error:  # every failure is reported, none raised
            message = f"{type(error).__name__}: {error}".strip()
            results.append(Result(name, False, round(time.monotonic() - start, 3), error=message[:500]))
    return {"ok": all(r.ok for r in results), "checks": {r.name: asdict(r) for r in results}}
