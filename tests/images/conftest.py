"""Fixtures of the image tests: the dev stack's Redis, Kafka and PostgreSQL, each started
once per session from the project's built images (never built here) with the rendered
pod's command, env and ConfigMaps, on 127.0.0.1 only.

Tests marked ``images`` run where buildah and root are available and skip, naming the
command, when an image is not in the store yet (`python3 -m tools.cluster images`).
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.images import pods
from tests.images.sandbox import Sandbox, buildah_available, describe, image_config
from tests.loopback import free_port

BUILD_HINT = "build it with `python3 -m tools.cluster images` (or `make images`)"
NAMESPACE_HOSTS = {
    "patroni": "ai-infra-patroni.ai-infra.svc.cluster.local",
    "redis": "ai-infra-redis-cluster.ai-infra.svc.cluster.local",
    "kafka": "ai-infra-kafka.ai-infra.svc.cluster.local",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "images: runs the project's built images (buildah, root); skips an image not built")


def built(title: str) -> str:
    """The reference of the built image titled ``title``; skips the test when there is none."""
    if not buildah_available():
        pytest.skip("needs buildah and root")
    ref = pods.image_ref(title)
    if image_config(ref) is None:
        pytest.skip(f"{ref} is not built; {BUILD_HINT}")
    return ref


def wait_for(what: str, check: object, timeout: float, process: object = None) -> float:
    """Poll ``check()`` until true; fail naming ``what`` (and a process that died)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():  # type: ignore[operator]
            return time.monotonic() - start
        if process is not None and process.poll() is not None:  # type: ignore[attr-defined]
            pytest.fail(f"{what}: the process exited with {process.returncode}")  # type: ignore[attr-defined]
        time.sleep(0.5)
    pytest.fail(f"gave up after {timeout:.0f} s waiting for {what}")


def pod_user(pod: dict[str, object]) -> str:
    context = pod["securityContext"]
    return f"{context['runAsUser']}:{context['runAsGroup']}"  # type: ignore[index]


@dataclass
class Service:
    sandbox: Sandbox
    process: subprocess.Popen[str]
    port: int
    password: str
    log: Path
    env: dict[str, str]  # the pod's env as run (Secrets stood in for)
    started_seconds: float = 0.0


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images")
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def hosts(workdir: Path) -> Path:
    """/etc/hosts for every sandbox: the Services' and pods' DNS names on 127.0.0.1."""
    names = [
        *NAMESPACE_HOSTS.values(),
        "ai-infra-redis-cluster-0.ai-infra-redis-cluster-headless.ai-infra.svc.cluster.local",
        "ai-infra-kafka-0.ai-infra-kafka-headless.ai-infra.svc.cluster.local",
    ]
    return pods.hosts_file(workdir, names)


@pytest.fixture(scope="session")
def redis_node(workdir: Path, hosts: Path) -> Iterator[Service]:
    """The dev Redis Cluster's only node: start.sh, then the reconcile Job, as the pods
    run them. Changed for loopback: the bind address (127.0.0.1) and the port."""
    ref = built("ai-infra-redis")
    pod = pods.pod_spec("StatefulSet", "ai-infra-redis-cluster")
    spec = pods.container(pod, "redis")
    port = free_port(bus_offset=10000)
    password = secrets.token_urlsafe(16)
    files = pods.config_files(
        pod, spec, workdir / "redis", {"/etc/redis/redis.conf": lambda text: text.replace("bind * -::*", "bind 127.0.0.1")}
    )
    env = pods.env(
        spec, pod_name="ai-infra-redis-cluster-0", secrets={"REDISCLI_AUTH": password}, values={"REDIS_PORT": str(port)}
    )
    log = workdir / "redis.log"
    binds = {**files, "/etc/hosts": hosts}
    with Sandbox(ref, writable=pods.writable_paths(pod, spec), binds=binds, user=pod_user(pod)) as sandbox:
        start = time.monotonic()
        process = sandbox.start(spec["command"], env=env, log=log)
        liveness = spec["livenessProbe"]["exec"]["command"]
        wait_for("redis PING", lambda: sandbox.run(liveness, env=env).returncode == 0, 60, process)
        job = pods.pod_spec("Job", next(name for name in pods.objects().names("Job") if "-reconcile-" in name))
        job_spec = job["containers"][0]
        job_env = pods.env(job_spec, pod_name="job", secrets={"REDISCLI_AUTH": password}, values={"REDIS_PORT": str(port)})
        reconcile = sandbox.run(job_spec["command"], env=job_env, timeout=300)
        assert reconcile.returncode == 0, describe(reconcile)
        yield Service(sandbox, process, port, password, log, env, time.monotonic() - start)


@pytest.fixture(scope="session")
def kafka_node(workdir: Path, hosts: Path) -> Iterator[Service]:
    """The dev combined Kafka node: entrypoint.sh (format, then kafka-server-start.sh) as
    the pod runs it. Changed for loopback: listeners on 127.0.0.1, free ports, and a
    smaller heap than the pod's (two busy cores)."""
    ref = built("ai-infra-kafka")
    pod = pods.pod_spec("StatefulSet", "ai-infra-kafka")
    spec = pods.container(pod, "kafka")
    broker, controller = free_port(), free_port()

    def loopback(text: str) -> str:
        text = text.replace(
            "listeners=BROKER://:9092,CONTROLLER://:9093", "listeners=BROKER://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
        )
        assert "127.0.0.1:9092" in text, "the rendered listeners changed; update this fixture"
        return text.replace(":9092", f":{broker}").replace(":9093", f":{controller}")

    files = pods.config_files(pod, spec, workdir / "kafka", {"/etc/kafka/rendered/server.properties": loopback})
    cluster_id = "MkU3OEVBNTcwNTJENDM2Qg"
    env = pods.env(
        spec,
        pod_name="ai-infra-kafka-0",
        secrets={"CLUSTER_ID": cluster_id},
        values={"KAFKA_SERVER_HEAP_OPTS": "-Xms256m -Xmx256m"},
    )
    log = workdir / "kafka.log"
    binds = {**files, "/etc/hosts": hosts}
    with Sandbox(ref, writable=pods.writable_paths(pod, spec), binds=binds, user=pod_user(pod)) as sandbox:
        process = sandbox.start(spec["command"], env=env, log=log)
        seconds = wait_for("Kafka to start", lambda: "Kafka Server started" in log.read_text(), 180, process)
        yield Service(sandbox, process, broker, "", log, env, seconds)


@pytest.fixture(scope="session")
def postgres_server(workdir: Path, hosts: Path) -> Iterator[Service]:
    """PostgreSQL 15 from the Patroni image, run as the pod's user on a read-only root
    (initdb + postgres: Patroni itself needs the Kubernetes API), with the application
    user and database made by the rendered post-bootstrap.sh."""
    ref = built("ai-infra-patroni")
    pod = pods.pod_spec("StatefulSet", "ai-infra-patroni")
    spec = pods.container(pod, "patroni")
    port = free_port()
    password = secrets.token_urlsafe(16)
    app_password = secrets.token_urlsafe(16)
    files = pods.config_files(pod, spec, workdir / "patroni")
    binds = {**files, "/etc/hosts": hosts}
    data = "/var/lib/postgresql/data/pgdata"
    log = workdir / "postgres.log"
    with Sandbox(ref, writable=pods.writable_paths(pod, spec), binds=binds, user=pod_user(pod)) as sandbox:
        setup = sandbox.run(
            ["sh", "-c", f'printf %s "$PW" > /tmp/pw && initdb -D {data} -U postgres --auth=scram-sha-256 --pwfile=/tmp/pw'],
            env={"PW": password},
            timeout=180,
        )
        assert setup.returncode == 0, describe(setup)
        process = sandbox.start(
            ["postgres", "-D", data, "-c", "listen_addresses=127.0.0.1", "-p", str(port), "-c", "unix_socket_directories=/tmp"],
            log=log,
        )
        env = {"PGPASSWORD": password, "AI_INFRA_APP_PASSWORD": app_password}
        ready = ["pg_isready", "-h", "127.0.0.1", "-p", str(port)]
        seconds = wait_for("PostgreSQL", lambda: sandbox.run(ready).returncode == 0, 60, process)
        hook = sandbox.run(
            ["sh", "/etc/patroni/post-bootstrap.sh", f"host=127.0.0.1 port={port} user=postgres dbname=postgres"], env=env
        )
        assert hook.returncode == 0, describe(hook)
        yield Service(sandbox, process, port, password, log, env, seconds)


def psql(server: Service, sql: str, database: str = "ai_infra_db") -> subprocess.CompletedProcess[str]:
    """One SQL command as the superuser, with psql of the server's image (tuples only)."""
    argv = ["psql", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1"]
    return server.sandbox.run([*argv, "-tA", "-c", sql], env=server.env)
