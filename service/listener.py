"""Where several workers listen for HTTP: a socket of their own each, so that connections spread
evenly over them.

uvicorn's supervisor binds one socket and every worker accepts from it. The kernel wakes the
waiters on a shared accept queue in a fixed order, so one worker can take a burst of new
connections, or all of them, while another idles, and with keep-alive a connection stays where
it landed (measured in BENCHMARKS.md, workers). With `SO_REUSEPORT` (Linux) each worker binds a
socket of its own to the same address, and the kernel picks one of the group's listening sockets
per connection by a hash of its addresses, as nginx's `reuseport` does.

`ReusePortListener` stands in uvicorn's socket list: the supervisor hands that list to every worker
it starts or restarts, pickled into the new process, where it arrives as a fresh socket of the
group. The parent keeps a bound socket of the group that never listens (so receives no connection):
the port stays reserved, and port 0 resolves once, for every worker.
"""

from __future__ import annotations

import socket
import sys


def reuse_port_supported() -> bool:
    """Only Linux balances connections over a `SO_REUSEPORT` group; elsewhere the option lets the
    sockets share the address but one of them gets every connection."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_reuse_port(family: int, address: tuple[str, int]) -> socket.socket:
    """A TCP socket bound to `address` in a `SO_REUSEPORT` group, not yet listening."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class ReusePortListener:
    """One worker's socket, made where it is unpickled: in each worker process uvicorn starts."""

    def __init__(self, host: str, port: int) -> None:
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # The parent's member of the group: reserves the port, resolves port 0, never listens.
        self.reserved = bind_reuse_port(self.family, (host, port))
        self.address: tuple[str, int] = self.reserved.getsockname()[:2]

    def __reduce__(self) -> tuple:
        return bind_reuse_port, (self.family, self.address)

    def close(self) -> None:
        self.reserved.close()
