"""Data-plane application routes: the applications (and active versions) a pool or task can reference."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator import odata
from batchrun.emulator.api.base import Api, Call, endpoint, json_response
from batchrun.emulator.errors import BatchApiError
from batchrun.emulator.model import Body


def render(api: Api, application: Body) -> Body:
    versions = api.model.packages.get(application["name"].lower(), {})
    return {
        "id": application["name"],
        "displayName": application["properties"].get("displayName") or application["name"],
        "versions": sorted(
            name for name, package in versions.items() if package["properties"].get("state") == "Active"
        ),
    }


def list_applications(api: Api, call: Call) -> Response:
    limit = odata.parse_max_results(call.option("maxresults"))
    marker = call.option("$skiptoken")
    with api.model.lock:
        ordered = sorted(
            (key, render(api, app))
            for key, app in api.model.applications.items()
            if marker is None or key > marker
        )
    page = odata.paginate(iter(ordered), None, limit)
    result: dict[str, Any] = {"value": page.items}
    if page.next_marker is not None:
        result["odata.nextLink"] = odata.next_link(
            call.base_url, "/applications", call.query, page.next_marker
        )
    return json_response(result)


def get_application(api: Api, call: Call) -> Response:
    with api.model.lock:
        application = api.model.applications.get(call.params["applicationId"].lower())
        if application is None:
            raise BatchApiError(
                404,
                "ApplicationNotFound",
                "The specified application does not exist.",
                {"ApplicationId": call.params["applicationId"]},
            )
        return json_response(render(api, application))


def routes(api: Api) -> list[Route]:
    return [
        endpoint(api, "GET", "/applications", list_applications),
        endpoint(api, "GET", "/applications/{applicationId}", get_application),
    ]
