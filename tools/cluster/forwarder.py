"""TCP forwarder from the host's loopback into the cluster's network namespaces.

    python -m tools.cluster.forwarder 127.0.0.1:16443=aim-cp/10.250.0.1:6443 ...

Each rule listens on a 127.0.0.1 port in the host's network namespace (as kind maps the API
port to 127.0.0.1) and connects, for every accepted connection, from inside the named
namespace: the outgoing socket is created after a setns(2) into it, then the thread returns
to the host namespace. So the host gains no route, address or firewall rule.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tools.cluster import ns


@dataclass(frozen=True)
class Rule:
    listen_port: int
    netns: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Rule:
        listen, target = text.split("=", 1)
        netns, address = target.split("/", 1)
        host, port = address.rsplit(":", 1)
        listen_host, listen_port = listen.rsplit(":", 1)
        if listen_host != "127.0.0.1":
            raise SystemExit(f"forwarder: listens on 127.0.0.1 only, not {listen_host}")
        return cls(int(listen_port), netns, host, int(port))


class Forwarder:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.host_netns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.target_netns = {r.netns: ns.netns_fd(r.netns) for r in rules}

    def _socket_in(self, netns: str) -> socket.socket:
        ns.setns_fd(self.target_netns[netns])
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            ns.setns_fd(self.host_netns)
        sock.setblocking(False)
        return sock

    async def serve(self) -> None:
        servers = [await asyncio.start_server(self._handler(rule), "127.0.0.1", rule.listen_port) for rule in self.rules]
        print("forwarder: ready", flush=True)
        await asyncio.gather(*(s.serve_forever() for s in servers))

    def _handler(self, rule: Rule) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._relay(rule, reader, writer)

        return handle

    async def _relay(self, rule: Rule, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        upstream = self._socket_in(rule.netns)
        try:
            await asyncio.wait_for(loop.sock_connect(upstream, (rule.host, rule.port)), timeout=10)
            server_reader, server_writer = await asyncio.open_connection(sock=upstream)
        except (OSError, TimeoutError):
            upstream.close()
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))
        for writer in (client_writer, server_writer):
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction; pass an end-of-stream on as a half-close, as TCP does."""
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


def main(argv: list[str]) -> int:
    rules = [Rule.parse(a) for a in argv]
    if not rules:
        print(__doc__, file=sys.stderr)
        return 2
    asyncio.run(Forwarder(rules).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
