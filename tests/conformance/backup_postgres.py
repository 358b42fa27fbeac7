"""Throwaway PostgreSQL 15 servers on 127.0.0.1 for the backup conformance test, and the
dataset and fingerprints it compares.

Each server is a fresh ``initdb`` in a temporary directory, run as the ``postgres`` user
the Debian package creates (PostgreSQL refuses to run as root), with scram-sha-256 auth
over TCP only, as in the cluster's pg_hba. tools/ci/install-postgres.sh installs it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.loopback import free_port

INSTALL_SCRIPT = "tools/ci/install-postgres.sh"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
RUN_AS = "postgres"
SUPERUSER = "postgres"


def missing_software() -> list[str]:
    missing = [
        str(PG_BIN / tool)
        for tool in ("initdb", "pg_ctl", "postgres", "pg_dump", "pg_restore", "psql")
        if not (PG_BIN / tool).exists()
    ]
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        missing.append(f"user {RUN_AS}")
    return missing


def owned_directory(path: Path, mode: int = 0o700) -> Path:
    """``path`` created and owned by the ``postgres`` user."""
    user = pwd.getpwnam(RUN_AS)
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(mode)
    return path


def run_as_postgres(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    user = pwd.getpwnam(RUN_AS)
    return subprocess.run(
        args,
        env=env,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Server:
    """One PostgreSQL 15 server: ``initdb``, started with ``pg_ctl`` on a free port."""

    home: Path
    password: str
    port: int = 0

    def __post_init__(self) -> None:
        owned_directory(self.home)
        self.data = self.home / "data"
        self.socket_dir = owned_directory(self.home / "socket", 0o755)
        self.log = self.home / "server.log"
        self.port = self.port or free_port()

    def client_env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": f"{PG_BIN}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": SUPERUSER,
            "PGPASSWORD": self.password,
            "PGCONNECT_TIMEOUT": "5",
            **extra,
        }

    def start(self) -> None:
        pwfile = self.home / "pwfile"
        pwfile.write_text(self.password + "\n")
        user = pwd.getpwnam(RUN_AS)
        os.chown(pwfile, user.pw_uid, user.pw_gid)
        pwfile.chmod(0o600)
        env = {"PATH": f"{PG_BIN}:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        result = run_as_postgres(
            [
                str(PG_BIN / "initdb"),
                f"--pgdata={self.data}",
                f"--username={SUPERUSER}",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            env=env,
        )
        pwfile.unlink()
        assert result.returncode == 0, f"initdb failed:\n{result.stdout}\n{result.stderr}"
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=20 -c shared_buffers=32MB"
        )
        result = run_as_postgres(
            [str(PG_BIN / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options],
            env=env,
            timeout=90,
        )
        assert result.returncode == 0, f"pg_ctl start failed:\n{result.stdout}\n{result.stderr}\n{self.log_tail()}"

    def stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        env = {"PATH": f"{PG_BIN}:/usr/bin:/bin"}
        result = run_as_postgres(
            [str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30"], env=env
        )
        if result.returncode != 0 and (self.data / "postmaster.pid").exists():
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        result = subprocess.run(
            [str(PG_BIN / "psql"), "--no-psqlrc", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", "-"],
            input=sql,
            env=self.client_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"psql failed on :{self.port}:\n{result.stderr}\n{sql[:500]}"
        return result.stdout


@contextlib.contextmanager
def servers(root: Path, password: str, count: int) -> Iterator[list[Server]]:
    """``count`` running servers under ``root``, stopped and removed afterwards."""
    started: list[Server] = []
    try:
        for index in range(count):
            server = Server(root / f"pg{index}", password)
            started.append(server)
            server.start()
        yield started
    finally:
        for server in started:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- the dataset ---------------------------------------------------------------------

# What Patroni's post-bootstrap.sh creates on a new cluster: the application role and
# its database. Roles are cluster-wide, so a pg_dump of one database never holds them.
BOOTSTRAP_SQL = """
CREATE ROLE {app} LOGIN PASSWORD '{password}';
CREATE DATABASE {database} OWNER {app};
REVOKE ALL ON DATABASE {database} FROM PUBLIC;
GRANT ALL ON DATABASE {database} TO {app};
"""

# A few thousand rows an application might hold, created by the application role:
# unicode and awkward text, NULLs, numerics, jsonb, arrays, bytea, a foreign key, a
# standalone sequence advanced past its start, identity and serial columns, a partial
# and an expression index, a view.
DATASET_SQL = """
SET ROLE {app};
CREATE SEQUENCE invoice_number_seq START 100000 INCREMENT 7;
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text,
    bio text,
    created_at timestamptz NOT NULL
);
INSERT INTO users (name, email, bio, created_at)
SELECT (ARRAY['张伟', 'Ωμέγα', 'Привет мир', '🚀 rocket', 'O''Brien',
              E'tab\\there', E'two\\nlines', 'naïve café'])[1 + i % 8] || ' #' || i,
       CASE WHEN i % 5 = 0 THEN NULL ELSE 'user' || i || '@example.com' END,
       CASE WHEN i % 3 = 0 THEN NULL ELSE repeat('数据', i % 17) END,
       timestamptz '2026-01-01 00:00:00+00' + i * interval '17 minutes'
FROM generate_series(1, 3000) AS i;
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE orders (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    invoice bigint NOT NULL DEFAULT nextval('invoice_number_seq'),
    amount numeric(12, 2),
    status text NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'cancelled')),
    note text
);
INSERT INTO orders (user_id, amount, status, note)
SELECT 1 + (i * 7) % 3000,
       CASE WHEN i % 11 = 0 THEN NULL ELSE round((i * 3.17)::numeric % 1000, 2) END,
       (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + i % 4],
       CASE WHEN i % 4 = 0 THEN NULL ELSE '订单 ' || i END
FROM generate_series(1, 5000) AS i;
CREATE INDEX orders_user_id_idx ON orders (user_id);

CREATE TABLE events (
    id uuid PRIMARY KEY,
    payload jsonb NOT NULL,
    tags text[],
    blob bytea
);
INSERT INTO events
SELECT md5('event' || i)::uuid,
       jsonb_build_object('n', i, 'label', 'événement ' || i, 'nested', jsonb_build_object('ok', i % 2 = 0, 'none', NULL)),
       CASE WHEN i % 6 = 0 THEN NULL ELSE ARRAY['a' || i % 3, 'ß', NULL] END,
       CASE WHEN i % 9 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') END
FROM generate_series(1, 2000) AS i;
CREATE INDEX events_payload_idx ON events USING gin (payload);

CREATE VIEW paid_orders AS SELECT * FROM orders WHERE status = 'paid';
SELECT nextval('invoice_number_seq') FROM generate_series(1, 13);
"""

# Table -> primary key column, the order of the checksum.
TABLES = {"users": "id", "orders": "id", "events": "id"}


@dataclass(frozen=True)
class Fingerprint:
    tables: dict[str, tuple[int, str]]  # table -> (rows, md5 of every row in key order)
    sequences: dict[str, tuple[int | None, bool]]  # sequence -> (last_value, is_called)
    owners: dict[str, str]  # relation -> owner
    indexes: frozenset[str]

    @property
    def rows(self) -> int:
        return sum(rows for rows, _ in self.tables.values())


def fingerprint(server: Server, database: str) -> Fingerprint:
    tables: dict[str, tuple[int, str]] = {}
    for table, key in TABLES.items():
        line = server.psql(
            f"SELECT count(*) || '|' || md5(coalesce(string_agg(t::text, ',' ORDER BY t.{key}), '')) FROM {table} AS t",
            database=database,
        ).strip()
        count, digest = line.split("|")
        tables[table] = (int(count), digest)
    sequences: dict[str, tuple[int | None, bool]] = {}
    names = server.psql("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1", database=database)
    for name in names.split():
        value, called = server.psql(f"SELECT last_value || '|' || is_called FROM {name}", database=database).strip().split("|")
        sequences[name] = (int(value), called == "t")
    owners = dict(
        line.split("|")
        for line in server.psql(
            "SELECT c.relname || '|' || pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1",
            database=database,
        ).splitlines()
    )
    indexes = frozenset(server.psql("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'", database=database).split())
    return Fingerprint(tables=tables, sequences=sequences, owners=owners, indexes=indexes)


def timed(function, *args, **kwargs):
    started = time.monotonic()
    result = function(*args, **kwargs)
    return result, time.monotonic() - started
