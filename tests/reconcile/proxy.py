"""A loopback HTTP proxy in front of the emulator that injects faults, for the reconciler's fault tests.

``Fault`` decides per request: ``"pass"`` forwards it, ``"lose"`` forwards it and answers 503 instead of a
2xx response (the create happened, its answer was lost), ``"hang_up"`` closes the connection without
forwarding or answering (the target stopped answering), ``"reset_after"`` forwards it and then closes the
connection without answering (processed, then the connection reset), ``"500"``/``"503"`` answer that
status without forwarding, ``"429"`` answers 429 without Retry-After, ``"429_retry_after"`` with
``Retry-After: 1``.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

Decision = Literal["pass", "lose", "hang_up", "reset_after", "500", "503", "429", "429_retry_after"]
Fault = Callable[[str, str], Decision]  # (method, path without query) -> fault

IMAGE = {
    "imageReference": {
        "publisher": "canonical",
        "offer": "ubuntu-24_04-lts",
        "sku": "server",
        "version": "latest",
    },
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
}


class FaultProxy:
    """Forwards to ``upstream`` except where ``fault`` says otherwise; use as a context manager."""

    def __init__(self, upstream: str, fault: Fault, after: Callable[[], None] | None = None) -> None:
        """``after`` runs when a ``"reset_after"`` request has been processed, before the connection closes
        (e.g. to SIGKILL the client right after the service did what it asked)."""
        parts = urlsplit(upstream)

        class Handler(BaseHTTPRequestHandler):
            def do_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                decision = fault(self.command, self.path.split("?")[0])
                if decision == "hang_up":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if decision in ("500", "503", "429", "429_retry_after"):
                    body_text = b'{"code":"ServerBusy","message":{"lang":"en-US","value":"injected"}}'
                    self.send_response(int(decision[:3]))
                    if decision == "429_retry_after":
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body_text)))
                    self.end_headers()
                    self.wfile.write(body_text)
                    return
                connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
                connection.request(self.command, self.path, body=body, headers=dict(self.headers))
                response = connection.getresponse()
                payload = response.read()
                if decision == "reset_after":
                    if after is not None:
                        after()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if decision == "lose" and 200 <= response.status < 300:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_any

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
