"""The emulator's HTTP connections: Nagle's algorithm is off on every accepted connection.

asyncio sets TCP_NODELAY only on sockets whose protocol is TCP, and accepted sockets inherit the listener's
protocol number. A listener made with the default protocol (0) left Nagle on, so every request after the first
on a kept-alive connection waited for the client's delayed ACK (~40 ms each on Linux).
"""

from __future__ import annotations

import socket

from tests.emulator.conftest import Emulator


def test_the_listener_says_tcp_so_accepted_connections_get_tcp_nodelay(emulator: Emulator) -> None:
    listener = emulator.server._socket
    assert listener is not None
    assert listener.proto == socket.IPPROTO_TCP
    # What asyncio checks before setting TCP_NODELAY, on a socket accepted from a listener like this one.
    probe = socket.socket(listener.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    probe.bind(("127.0.0.1", 0))
    probe.listen(1)
    with socket.create_connection(probe.getsockname()[:2]), probe:
        accepted, _ = probe.accept()
        with accepted:
            assert accepted.proto == socket.IPPROTO_TCP
