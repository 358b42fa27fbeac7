"""Helpers every tier that runs real servers on loopback shares: ports and bounded waits."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


_LOWEST = 10000  # below it: the ports well-known services and developers' own servers use
_handed_out: set[int] = set()


def free_port(*, bus_offset: int = 0, addresses: Sequence[str] = ("127.0.0.1",)) -> int:
    """A TCP port nothing listens on, on every one of ``addresses``, never handed out before in
    this process; with ``bus_offset``, port + offset is free too (a Redis Cluster node also
    listens on its port + 10000).

    It comes from outside the kernel's ephemeral range. Asking the kernel for port 0 hands out
    a port of that range, which every outgoing connection on the machine also draws its local
    port from: between the pick and the server's bind (or while a killed member is down before
    it restarts on its port) a client socket can take it. CI saw exactly that: a Patroni
    member's REST API failed with EADDRINUSE and the whole conformance cluster never formed."""
    ephemeral_low, ephemeral_high = _ephemeral_range()
    spans = [(_LOWEST, ephemeral_low - bus_offset), (ephemeral_high + 1, 65536 - bus_offset)]
    candidates = [range(low, high) for low, high in spans if high > low]
    if not candidates:
        raise AssertionError(f"no port range outside the ephemeral {ephemeral_low}-{ephemeral_high} for this test")
    for _ in range(1000):
        span = random.choice(candidates)
        port = random.randrange(span.start, span.stop)
        wanted = {port, port + bus_offset}
        if wanted & _handed_out:
            continue
        try:
            for address in addresses:
                for candidate in wanted:
                    with socket.socket() as probe:
                        probe.bind((address, candidate))
        except OSError:
            continue
        _handed_out.update(wanted)
        return port
    raise AssertionError(f"no free port found on {', '.join(addresses)} outside the ephemeral range")


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """``check()``'s first truthy result, polled every ``interval`` seconds. A check that
    raises counts as not yet (the server may still be starting); after ``timeout`` an
    AssertionError names ``what`` and the last error seen."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:
            last_error = error
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_error})" if last_error else "")
    )
