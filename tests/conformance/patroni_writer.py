"""A continuous writer for the Patroni failover drills. Runs in the Patroni virtualenv
(it needs psycopg). Connects with the multi-host URL in WRITER_DSN (password in
PGPASSWORD), creates table ``drill`` if needed and inserts one row per transaction with
``synchronous_commit = on``, autocommit. Every acknowledged commit is appended to --out
as ``ack <id> <time.monotonic()> <server port>``; a failure as ``err <time> <message>``,
after which it reconnects. Stops on SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import psycopg

running = True


def _stop(*_: object) -> None:
    global running  # noqa: PLW0603
    running = False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    dsn = os.environ["WRITER_DSN"]
    next_id = 1
    connection = None
    with Path(args.out).open("a", buffering=1) as out:
        while running:
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(dsn, autocommit=True)
                    connection.execute("SET synchronous_commit = on")
                    connection.execute("CREATE TABLE IF NOT EXISTS drill (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
                    found = connection.execute("SELECT coalesce(max(id), 0) FROM drill").fetchone()
                    next_id = max(next_id, (found[0] if found else 0) + 1)
                port = connection.info.port
                connection.execute("INSERT INTO drill (id) VALUES (%s)", (next_id,))
                out.write(f"ack {next_id} {time.monotonic():.6f} {port}\n")
                next_id += 1
            except psycopg.Error as error:
                out.write(f"err {time.monotonic():.6f} {str(error).splitlines()[0] if str(error) else type(error).__name__}\n")
                next_id += 1  # the failed id may or may not have committed: never reuse it
                if connection is not None:
                    with contextlib.suppress(psycopg.Error):
                        connection.close()
                connection = None
                time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
