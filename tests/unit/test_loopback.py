"""tests/loopback.py's free_port, which every loopback tier starts its servers on: a port
outside the kernel's ephemeral range (where a client socket could take it before the
server binds: CI's Patroni conformance cluster failed on exactly that), free, and never
handed out twice."""

from __future__ import annotations

import socket

from tests.loopback import _ephemeral_range, free_port


def test_ports_come_from_outside_the_ephemeral_range_and_are_never_repeated() -> None:
    low, high = _ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert not [port for port in ports if low <= port <= high]
    for port in ports[:20]:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))


def test_a_bus_offset_port_is_free_and_outside_the_range_too() -> None:
    low, high = _ephemeral_range()
    port = free_port(bus_offset=10000, addresses=["127.0.0.1", "127.0.0.2"])
    assert not low <= port + 10000 <= high and not low <= port <= high
    for address in ("127.0.0.1", "127.0.0.2"):
        for candidate in (port, port + 10000):
            with socket.socket() as server:
                server.bind((address, candidate))
