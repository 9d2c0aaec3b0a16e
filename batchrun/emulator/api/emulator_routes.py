"""Emulator-only routes under ``/_emulator``: request accounting and scheduler status (not Batch API)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator.api.base import Api, Call, empty, endpoint, json_response


def get_requests(api: Api, call: Call) -> Response:
    return json_response(api.accounting.snapshot())


def reset_requests(api: Api, call: Call) -> Response:
    api.accounting.reset()
    return empty(204)


def get_status(api: Api, call: Call) -> Response:
    return json_response(api.scheduler.status())


def routes(api: Api) -> list[Route]:
    return [
        endpoint(api, "GET", "/_emulator/requests", get_requests, "emulator"),
        endpoint(api, "POST", "/_emulator/requests/reset", reset_requests, "emulator"),
        endpoint(api, "GET", "/_emulator/status", get_status, "emulator"),
    ]
