"""The emulator process: Starlette app + uvicorn on loopback, the scheduler, the store.

``EmulatorServer(config).start()`` serves in a background thread (tests, in-process use); ``python -m
batchrun.emulator --config FILE`` runs it as a daemon (see ``__main__``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from batchrun.emulator.api import (
    applications,
    emulator_routes,
    files,
    jobs,
    management,
    nodes,
    pools,
    schedules,
    sizing,
    tasks,
)
from batchrun.emulator.api.base import Api, RequestAccounting
from batchrun.emulator.config import EmulatorConfig
from batchrun.emulator.errors import BatchApiError
from batchrun.emulator.model import Model
from batchrun.emulator.scheduler.core import Scheduler
from batchrun.emulator.store import Store, StoreUnreadable
from batchrun.errors import LocalTargetError

_LOG = logging.getLogger("batchrun.emulator")


def build_app(api: Api) -> Starlette:
    routes = []
    modules = (pools, sizing, nodes, jobs, schedules, tasks, files, applications, management, emulator_routes)
    for module in modules:
        routes.extend(module.routes(api))

    async def unknown(request: Request, error: Exception) -> Response:
        status = error.status_code if isinstance(error, HTTPException) else 500
        if status == 405:
            failure = BatchApiError(
                405,
                "UnsupportedHttpVerb",
                f"The resource doesn't support the specified HTTP verb {request.method}.",
                {"HttpVerb": request.method},
            )
        elif status == 404:
            failure = BatchApiError(
                404,
                "InvalidUri",
                "The requested URI does not represent any resource on the "
                "server (or is not supported by the local Batch emulator).",
                {"UriPath": request.url.path},
            )
        else:
            failure = BatchApiError(status, "InternalError", "The server encountered an internal error.")
        return failure.response(head=request.method == "HEAD")

    async def crashed(request: Request, error: Exception) -> Response:
        _LOG.exception("unhandled error serving %s %s", request.method, request.url.path)
        return BatchApiError(
            500, "InternalError", "The local Batch emulator hit an internal error; see its log."
        ).response()

    return Starlette(routes=routes, exception_handlers={HTTPException: unknown, Exception: crashed})


class EmulatorServer:
    """The whole emulator in this process: ``start()`` binds and serves, ``stop()`` shuts down gracefully."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.store: Store | None = None
        self.model: Model | None = None
        self.scheduler: Scheduler | None = None
        self.url = ""

    def start(self) -> str:
        config = self.config
        config.state_dir.mkdir(parents=True, exist_ok=True)
        config.nodes_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.store = Store(config.db_path)
            self.model = Model(self.store)
            self.model.load()
        except StoreUnreadable as error:
            if self.store is not None:
                self.store.close()
            self.store = None
            raise LocalTargetError(
                f"the local Batch emulator cannot read its database {config.db_path} ({error.args[0]}); "
                "it is damaged or not an emulator database. Run `batchrun local reset` to start from an "
                "empty local target (this deletes the local pools, jobs, tasks and blobs)"
            ) from None
        self.scheduler = Scheduler(config, self.model)
        self.scheduler.recover()
        api = Api(config, self.model, self.scheduler, RequestAccounting())
        app = build_app(api)
        try:
            # IPPROTO_TCP named explicitly: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
            # whose protocol says TCP, and accepted sockets inherit the listener's 0. With Nagle on, every
            # request after the first on a kept-alive connection waited ~40 ms for the client's delayed ACK.
            listener = socket.socket(
                socket.AF_INET6 if ":" in config.host else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
            )
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((config.host, config.port))
        except OSError as error:
            self.store.close()
            raise LocalTargetError(
                f"the local Batch emulator cannot listen on {config.host}:{config.port}: "
                f"{error.strerror}; choose another port (or 0 for any free port)"
            ) from None
        listener.listen(512)
        self._socket = listener
        port = listener.getsockname()[1]
        host = f"[{config.host}]" if ":" in config.host else config.host
        self.url = f"http://{host}:{port}"
        # Idle connections are kept 2 minutes (uvicorn's default is 5 s): a client reusing a pooled
        # connection the moment the server closes it gets a reset, which SDK clients do not retry on a POST.
        server_config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=5,
            timeout_keep_alive=120,
        )
        self._server = uvicorn.Server(server_config)
        started = threading.Event()
        server = self._server

        def serve() -> None:
            server.run(sockets=[listener])

        self._thread = threading.Thread(target=serve, name="batch-emulator-http", daemon=True)
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                raise LocalTargetError(
                    "the local Batch emulator's HTTP server stopped while starting; see its log"
                )
            started.wait(0.01)
        self.scheduler.start(self.url)
        _LOG.info("local Batch emulator for account %s listening on %s", config.account_name, self.url)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self.scheduler is not None:
            self.scheduler.stop()
        if self._socket is not None:
            self._socket.close()
        if self.store is not None:
            self.store.close()
        self._server = self._thread = self._socket = None
        self.store = self.model = self.scheduler = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def write_discovery(path: Path, url: str) -> None:
    """Write ``{"url", "pid"}`` atomically (temp file + rename) so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".emulator.", suffix=".json")
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"url": url, "pid": os.getpid()}, handle)
    os.replace(temporary, path)
