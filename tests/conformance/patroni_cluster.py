"""Real Patroni + PostgreSQL members on 127.0.0.1 for the PostgresHA conformance tests.

The members run the program's rendered ``patroni.yml`` and the StatefulSet's rendered
env, changed only where the issue allows: the DCS section (a local etcd stands in for the
Kubernetes API) and per-member addresses, ports and directories. PostgreSQL refuses to
run as root, so every member runs as the ``postgres`` user the Debian package creates,
from the virtualenv tools/ci/install-postgres.sh builds under /opt.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.loopback import free_port, wait_until

INSTALL_SCRIPT = "tools/ci/install-postgres.sh"
VENV = Path(os.environ.get("AI_INFRA_PATRONI_VENV", "/opt/ai-infra-matrix/patroni-4.1.5"))
PG_BIN = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "postgres"
WRITER = Path(__file__).with_name("patroni_writer.py")


def missing_software() -> list[str]:
    """What tools/ci/install-postgres.sh installs and is not there."""
    missing = [str(path) for path in (VENV / "bin/patroni", VENV / "bin/patronictl", PG_BIN / "postgres") if not path.exists()]
    if shutil.which("etcd") is None:
        missing.append("etcd")
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        missing.append(f"user {RUN_AS}")
    return missing


def get_json(port: int, path: str, timeout: float = 2.0) -> Any:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:  # /readiness etc. answer 503 with a body
        return json.loads(error.read())


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        for child in children.get(pid, []):
            found.append(child)
            queue.append(child)
    return found


def _kill(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@dataclass
class Workspace:
    """A directory the ``postgres`` user can use (pytest's tmp dirs are root-only)."""

    path: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ai-infra-patroni-", dir="/tmp")))

    def __post_init__(self) -> None:
        user = pwd.getpwnam(RUN_AS)
        self.path.chmod(0o755)
        os.chown(self.path, user.pw_uid, user.pw_gid)

    def directory(self, name: str, mode: int = 0o755) -> Path:
        user = pwd.getpwnam(RUN_AS)
        path = self.path / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        os.chown(path, user.pw_uid, user.pw_gid)
        return path

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class Etcd:
    """One etcd member on loopback: the stand-in DCS."""

    def __init__(self, workspace: Workspace):
        self.client_port, self.peer_port = free_port(), free_port()
        self.data_dir = workspace.directory("etcd", 0o700)
        self.log = workspace.path / "etcd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def start(self) -> None:
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "etcd",
                    "--name=dcs",
                    f"--data-dir={self.data_dir}",
                    f"--listen-client-urls={client}",
                    f"--advertise-client-urls={client}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=dcs={peer}",
                    "--log-level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(lambda: get_json(self.client_port, "/health").get("health") == "true", 30, "etcd to answer")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def resolve_env(
    container_env: list[dict[str, Any]], *, pod_name: str, namespace: str, secret_data: dict[str, str]
) -> dict[str, str]:
    """The env a pod gets from the rendered StatefulSet: fieldRefs, secretKeyRefs and
    ``$(VAR)`` references resolved as the kubelet would, the pod IP being 127.0.0.1."""
    fields = {"metadata.name": pod_name, "metadata.namespace": namespace, "status.podIP": "127.0.0.1"}
    env: dict[str, str] = {}
    for entry in container_env:
        if "value" in entry:
            value = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda match: env.get(match[1], match[0]), entry["value"])
        elif "fieldRef" in entry.get("valueFrom", {}):
            value = fields[entry["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            value = secret_data[entry["valueFrom"]["secretKeyRef"]["key"]]
        env[entry["name"]] = value
    return env


@dataclass
class MemberSpec:
    name: str
    pg_port: int
    api_port: int


class Member:
    """One Patroni member, started as the ``postgres`` user."""

    def __init__(self, spec: MemberSpec, config: dict[str, Any], env: dict[str, str], workspace: Workspace):
        self.spec = spec
        self.name = spec.name
        self.home = workspace.directory(spec.name)
        self.config_path = self.home / "patroni.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.data_dir = Path(config["postgresql"]["data_dir"])
        self.log = self.home / "patroni.log"
        self.env = env | {"PATRONICTL_CONFIG_FILE": str(self.config_path)}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        user = pwd.getpwnam(RUN_AS)
        base = {
            "PATH": f"{VENV}/bin:{PG_BIN}:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(VENV / "bin/patroni"), str(self.config_path)],
                env=base | self.env,
                cwd=self.home,
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def status(self) -> dict[str, Any]:
        return get_json(self.spec.api_port, "/patroni")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill_node(self) -> None:
        """Node loss: SIGKILL Patroni and its PostgreSQL (postmaster and every backend)
        at once, as when the pod's container dies."""
        assert self.process is not None
        pids = [self.process.pid, *_descendants(self.process.pid)]
        postmaster = self.postmaster_pid()
        if postmaster:
            pids += [postmaster, *_descendants(postmaster)]
        _kill(pids, signal.SIGKILL)
        self.process.wait(10)
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), 15, f"{self.name}'s PostgreSQL to die")

    def terminate(self, timeout: float = 90) -> None:
        """Graceful stop: SIGTERM to the Patroni process itself, as the kubelet does."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)

    def stop(self) -> None:
        """Best-effort teardown: graceful first, then everything killed."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.terminate(30)
        pids = [self.process.pid, *_descendants(self.process.pid)]
        postmaster = self.postmaster_pid()
        if postmaster and Path(f"/proc/{postmaster}").exists():
            pids += [postmaster, *_descendants(postmaster)]
        _kill(pids, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def member_config(rendered: dict[str, Any], spec: MemberSpec, *, etcd_url: str, home: Path, config_dir: Path) -> dict[str, Any]:
    """The rendered patroni.yml with only the DCS section and this member's addresses,
    ports and directories changed."""
    config = json.loads(json.dumps(rendered))  # deep copy
    del config["kubernetes"]
    config["etcd3"] = {"hosts": [etcd_url]}
    config["restapi"]["listen"] = f"127.0.0.1:{spec.api_port}"
    postgresql = config["postgresql"]
    postgresql["listen"] = f"127.0.0.1:{spec.pg_port}"
    postgresql["data_dir"] = str(home / "pgroot" / "data")
    postgresql["pgpass"] = str(home / "pgpass")
    postgresql["parameters"]["unix_socket_directories"] = str(home)
    bootstrap = config["bootstrap"]
    bootstrap["post_bootstrap"] = str(config_dir / Path(bootstrap["post_bootstrap"]).name)
    callbacks = postgresql.get("callbacks", {})
    for event, command in callbacks.items():  # `python3 <config dir>/script`
        interpreter, script = command.split()
        callbacks[event] = f"{interpreter} {config_dir / Path(script).name}"
    return config


class Cluster:
    """Members of one Patroni cluster plus its etcd, all on 127.0.0.1."""

    def __init__(
        self,
        rendered_files: dict[str, str],
        container_env: list[dict[str, Any]],
        secret_data: dict[str, str],
        *,
        members: int,
        namespace: str,
        dcs_overrides: dict[str, Any] | None = None,
    ):
        self.workspace = Workspace()
        self.etcd = Etcd(self.workspace)
        config_dir = self.workspace.directory("files")
        for name, text in rendered_files.items():
            (config_dir / name).write_text(text)
            (config_dir / name).chmod(0o755 if name.endswith(".sh") else 0o644)
        rendered = yaml.safe_load(rendered_files["patroni.yml"])
        if dcs_overrides:
            rendered["bootstrap"]["dcs"].update(dcs_overrides)
        self.scope = rendered["scope"]
        self.dcs = rendered["bootstrap"]["dcs"]
        self.secret_data = secret_data
        self.superuser = rendered["postgresql"]["authentication"]["superuser"]["username"]
        self.members: list[Member] = []
        for index in range(members):
            spec = MemberSpec(f"{self.scope}-{index}", free_port(), free_port())
            home = self.workspace.path / spec.name
            config = member_config(rendered, spec, etcd_url=self.etcd.url, home=home, config_dir=config_dir)
            env = resolve_env(container_env, pod_name=spec.name, namespace=namespace, secret_data=secret_data)
            # The DCS section is etcd here: no Kubernetes settings from env either.
            env = {key: value for key, value in env.items() if not key.startswith("PATRONI_KUBERNETES_")}
            env["PATRONI_POSTGRESQL_CONNECT_ADDRESS"] = f"127.0.0.1:{spec.pg_port}"
            env["PATRONI_RESTAPI_CONNECT_ADDRESS"] = f"127.0.0.1:{spec.api_port}"
            self.members.append(Member(spec, config, env, self.workspace))

    @property
    def synchronous(self) -> bool:
        return self.dcs.get("synchronous_mode") not in (False, "off", None)

    def start(self) -> None:
        self.etcd.start()
        for member in self.members:
            member.start()

    def stop(self) -> None:
        for member in self.members:  # all at once: replicas need not outlive the leader
            if member.alive and member.process is not None:
                member.process.send_signal(signal.SIGTERM)
        for member in self.members:
            member.stop()
        self.etcd.stop()

    def member(self, name: str) -> Member:
        return next(member for member in self.members if member.name == name)

    def cluster_view(self) -> dict[str, Any]:
        for member in self.members:
            if member.alive:
                with contextlib.suppress(OSError, ValueError):
                    return get_json(member.spec.api_port, "/cluster")
        raise AssertionError("no member answers /cluster")

    def healthy_leader(self) -> Member | None:
        """The leader once every member runs, every replica streams from it and (sync
        mode) the leader has a synchronous standby; else None."""
        view = self.cluster_view()
        members = view.get("members", [])
        leaders = [m for m in members if m["role"] == "leader" and m["state"] == "running"]
        if len(leaders) != 1 or len(members) != len(self.members):
            return None
        others = [m for m in members if m["role"] != "leader"]
        if any(m["state"] != "streaming" for m in others):
            return None
        if self.synchronous and len(self.members) > 1 and not any(m["role"] == "sync_standby" for m in others):
            return None
        leader = self.member(leaders[0]["name"])
        # Writable for the application: the leader's PostgreSQL answers as a primary.
        return leader if leader.status().get("role") == "primary" else None

    def wait_healthy(self, timeout: float = 120) -> Member:
        try:
            leader = wait_until(self.healthy_leader, timeout, f"{self.scope}: one leader and streaming replicas", 0.5)
            assert leader is not None  # wait_until returns only a truthy result
            return leader
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.diagnostics()}") from None

    def diagnostics(self) -> str:
        parts = []
        with contextlib.suppress(AssertionError):
            parts.append(json.dumps(self.cluster_view(), indent=1))
        for member in self.members:
            parts.append(f"--- {member.name} (alive={member.alive}) ---\n{member.log_tail()}")
        return "\n".join(parts)

    def app_dsn(self, *, database: str, user: str) -> str:
        hosts = ",".join(f"127.0.0.1:{m.spec.pg_port}" for m in self.members)
        return f"postgresql://{user}@{hosts}/{database}?target_session_attrs=read-write&connect_timeout=2"

    def psql(
        self,
        member: Member,
        sql: str,
        *,
        database: str = "postgres",
        user: str | None = None,
        password_key: str = "superuser-password",
    ) -> str:
        """Run ``sql`` on ``member`` over TCP; the password goes through the environment."""
        result = subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(member.spec.pg_port),
             "-U", user or self.superuser, "-d", database, "-c", sql],
            env={"PATH": "/usr/bin:/bin", "PGPASSWORD": self.secret_data[password_key], "PGCONNECT_TIMEOUT": "5"},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(f"psql on {member.name} failed: {result.stderr.strip()}")
        return result.stdout


@contextlib.contextmanager
def running_cluster(*args: Any, **kwargs: Any) -> Iterator[Cluster]:
    cluster = Cluster(*args, **kwargs)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        cluster.workspace.remove()


class Writer:
    """tests/conformance/patroni_writer.py in the Patroni virtualenv: inserts rows one
    commit at a time through a multi-host libpq URL (target_session_attrs=read-write)
    and records every acknowledged id with the time and the server that took it."""

    def __init__(self, dsn: str, password: str, out: Path):
        self.out = out
        self.process = subprocess.Popen(
            [str(VENV / "bin/python"), str(WRITER), "--out", str(out)],
            env={"PATH": "/usr/bin:/bin", "WRITER_DSN": dsn, "PGPASSWORD": password},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def acks(self) -> list[tuple[int, float, int]]:
        """(id, monotonic time of the acknowledgement, server port)"""
        found = []
        for line in self.out.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "ack":
                found.append((int(parts[1]), float(parts[2]), int(parts[3])))
        return found

    def wait_for_acks(self, count: int, timeout: float = 30) -> None:
        def enough() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"writer exited: {self.process.stderr.read().decode() if self.process.stderr else ''}")
            return self.out.exists() and len(self.acks()) >= count

        wait_until(enough, timeout, f"{count} acknowledged writes", 0.1)
