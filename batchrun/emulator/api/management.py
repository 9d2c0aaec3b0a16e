"""The ARM management-plane operations azure-mgmt-batch calls for an account and its application packages.

Served on the same port as the data plane under ``/subscriptions/{s}/resourceGroups/{rg}/providers/
Microsoft.Batch/batchAccounts/{a}``; authenticated with the local bearer token (or SharedKey). Package zips
live in the linked storage account (Azurite) in the ``app-packages`` container; ``storageUrl`` is a write SAS.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas
from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator.api.base import Api, Call, check_keys, empty, endpoint, json_response, require_object
from batchrun.emulator.errors import BatchApiError
from batchrun.emulator.model import Body
from batchrun.emulator.packages import PACKAGE_CONTAINER, package_blob_name
from batchrun.emulator.store import Table
from batchrun.emulator.timefmt import iso, new_etag, now, now_iso
from batchrun.redact import redact

ACCOUNT = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Batch/"
    "batchAccounts/{accountName}"
)
APPLICATIONS = ACCOUNT + "/applications"
APPLICATION = APPLICATIONS + "/{applicationName}"
VERSIONS = APPLICATION + "/versions"
VERSION = VERSIONS + "/{versionName}"
SAS_LIFETIME = timedelta(hours=4)
# Azurite 3.35 knows storage service versions up to this one; newer SDK defaults would be refused.
STORAGE_API_VERSION = "2025-11-05"


def arm_error(status: int, code: str, message: str) -> BatchApiError:
    return BatchApiError(status, code, message)


def account_id(api: Api) -> str:
    config = api.config
    return (
        f"/subscriptions/{config.subscription_id}/resourceGroups/{config.resource_group}/providers/"
        f"Microsoft.Batch/batchAccounts/{config.account_name}"
    )


def check_account(api: Api, call: Call) -> None:
    config = api.config
    given = (
        call.params["subscriptionId"],
        call.params["resourceGroupName"].lower(),
        call.params["accountName"].lower(),
    )
    if given != (config.subscription_id, config.resource_group.lower(), config.account_name.lower()):
        raise arm_error(
            404,
            "ResourceNotFound",
            f"The Batch account '{call.params['accountName']}' in resource "
            f"group '{call.params['resourceGroupName']}' was not found.",
        )


def get_account(api: Api, call: Call) -> Response:
    check_account(api, call)
    config = api.config
    storage_id = (
        f"/subscriptions/{config.subscription_id}/resourceGroups/{config.resource_group}/providers/"
        f"Microsoft.Storage/storageAccounts/{config.storage.account_name}"
    )
    host = call.base_url.split("://", 1)[-1]
    return json_response(
        {
            "id": account_id(api),
            "name": config.account_name,
            "type": "Microsoft.Batch/batchAccounts",
            "location": "local",
            "properties": {
                "accountEndpoint": host,
                "provisioningState": "Succeeded",
                "poolAllocationMode": "BatchService",
                "autoStorage": {
                    "storageAccountId": storage_id,
                    "authenticationMode": "StorageKeys",
                    "lastKeySync": now_iso(),
                },
                "publicNetworkAccess": "Enabled",
                "dedicatedCoreQuota": 10000,
                "lowPriorityCoreQuota": 10000,
                "poolQuota": 1000,
                "activeJobAndJobScheduleQuota": 10000,
                "allowedAuthenticationModes": ["SharedKey", "AAD"],
            },
        }
    )


# ---- applications
def render_application(api: Api, application: Body) -> Body:
    return {key: value for key, value in application.items() if key != "_x"}


def find_application(api: Api, call: Call) -> Body:
    check_account(api, call)
    application = api.model.applications.get(call.params["applicationName"].lower())
    if application is None:
        raise arm_error(
            404,
            "ApplicationNotFound",
            f"The application '{call.params['applicationName']}' does not exist in this account.",
        )
    return application


def _properties(call: Call) -> dict[str, Any]:
    body = require_object(call.body or {}, "parameters")
    check_keys(body, ("id", "name", "type", "systemData", "properties", "etag", "tags"))
    properties = require_object(body.get("properties") or {}, "properties")
    check_keys(properties, ("displayName", "allowUpdates", "defaultVersion"), "properties.")
    return properties


def create_application(api: Api, call: Call) -> Response:
    check_account(api, call)
    properties = _properties(call)
    name = call.params["applicationName"]
    with api.model.lock:
        existing = api.model.applications.get(name.lower())
        merged = {"allowUpdates": True, **(existing or {}).get("properties", {}), **properties}
        if merged.get("defaultVersion") and merged["defaultVersion"] not in api.model.packages.get(
            name.lower(), {}
        ):
            raise arm_error(
                400,
                "InvalidDefaultVersion",
                f"The default version '{merged['defaultVersion']}' does "
                f"not exist; create the version before making it the default.",
            )
        application = {
            "id": f"{account_id(api)}/applications/{name}",
            "name": name,
            "type": "Microsoft.Batch/batchAccounts/applications",
            "etag": f'W/"{new_etag()}"',
            "properties": merged,
        }
        api.model.applications[name.lower()] = application
        api.model.save_application(application)
        return json_response(render_application(api, application))


def get_application(api: Api, call: Call) -> Response:
    with api.model.lock:
        return json_response(render_application(api, find_application(api, call)))


def list_applications(api: Api, call: Call) -> Response:
    check_account(api, call)
    with api.model.lock:
        values = [render_application(api, app) for _, app in sorted(api.model.applications.items())]
    return json_response({"value": values})


def update_application(api: Api, call: Call) -> Response:
    properties = _properties(call)
    with api.model.lock:
        application = find_application(api, call)
        default = properties.get("defaultVersion")
        if default and default not in api.model.packages.get(application["name"].lower(), {}):
            raise arm_error(
                400,
                "InvalidDefaultVersion",
                f"The default version '{default}' does not exist; create "
                "the version before making it the default.",
            )
        application["properties"].update(properties)
        application["etag"] = f'W/"{new_etag()}"'
        api.model.save_application(application)
        return json_response(render_application(api, application))


def delete_application(api: Api, call: Call) -> Response:
    check_account(api, call)
    name = call.params["applicationName"].lower()
    with api.model.lock:
        application = api.model.applications.get(name)
        if application is None:
            return empty(204)
        if api.model.packages.get(name):
            raise arm_error(
                409,
                "ApplicationPackagesExist",
                "The application still has package versions; delete them first.",
            )
        del api.model.applications[name]
        api.model.packages.pop(name, None)
        api.model.store.delete(Table.APPLICATIONS, "", name)
        return empty(200)


# ---- package versions
def _service(api: Api) -> BlobServiceClient:
    storage = api.config.storage
    return BlobServiceClient(
        storage.blob_endpoint,
        credential={"account_name": storage.account_name, "account_key": storage.account_key},
        api_version=STORAGE_API_VERSION,
    )


def _write_url(api: Api, application: str, version: str) -> tuple[str, str]:
    storage = api.config.storage
    blob_name = package_blob_name(application, version)
    expiry = now() + SAS_LIFETIME
    try:
        with _service(api) as service:
            container = service.get_container_client(PACKAGE_CONTAINER)
            if not container.exists():
                container.create_container()
    except AzureError as error:
        raise arm_error(
            503,
            "StorageUnavailable",
            f"The linked storage account at {storage.blob_endpoint} could "
            f"not be reached: {redact(str(error).splitlines()[0])}",
        ) from None
    token = generate_blob_sas(
        storage.account_name,
        PACKAGE_CONTAINER,
        blob_name,
        account_key=storage.account_key,
        permission=BlobSasPermissions(read=True, add=True, create=True, write=True),
        expiry=expiry,
    )
    return f"{storage.blob_endpoint.rstrip('/')}/{PACKAGE_CONTAINER}/{blob_name}?{token}", iso(expiry)


def render_package(api: Api, application: str, package: Body) -> Body:
    body = {key: value for key, value in package.items() if key != "_x"}
    url, expiry = _write_url(api, application, package["name"])
    body["properties"] = {**package["properties"], "storageUrl": url, "storageUrlExpiry": expiry}
    return body


def find_package(api: Api, call: Call) -> tuple[Body, Body]:
    application = find_application(api, call)
    package = api.model.packages.get(application["name"].lower(), {}).get(call.params["versionName"])
    if package is None:
        raise arm_error(
            404,
            "ApplicationPackageNotFound",
            f"Version '{call.params['versionName']}' of application '{application['name']}' does not exist.",
        )
    return application, package


def create_package(api: Api, call: Call) -> Response:
    version = call.params["versionName"]
    body = require_object(call.body or {}, "parameters")
    check_keys(body, ("id", "name", "type", "systemData", "properties", "etag", "tags"))
    with api.model.lock:
        application = find_application(api, call)
        versions = api.model.packages.setdefault(application["name"].lower(), {})
        existing = versions.get(version)
        if existing is not None and not application["properties"].get("allowUpdates", True):
            raise arm_error(
                409,
                "ApplicationPackageUpdatesNotAllowed",
                f"Application '{application['name']}' does "
                f"not allow updates; version '{version}' already exists.",
            )
        package = existing or {
            "id": f"{application['id']}/versions/{version}",
            "name": version,
            "type": "Microsoft.Batch/batchAccounts/applications/versions",
            "properties": {"state": "Pending"},
        }
        package["etag"] = f'W/"{new_etag()}"'
        versions[version] = package
        rendered = render_package(api, application["name"], package)
        api.model.save_package(application["name"].lower(), package)
        return json_response(rendered)


def get_package(api: Api, call: Call) -> Response:
    with api.model.lock:
        application, package = find_package(api, call)
        return json_response(render_package(api, application["name"], package))


def list_packages(api: Api, call: Call) -> Response:
    with api.model.lock:
        application = find_application(api, call)
        versions = api.model.packages.get(application["name"].lower(), {})
        return json_response(
            {
                "value": [
                    render_package(api, application["name"], package)
                    for _, package in sorted(versions.items())
                ]
            }
        )


def activate_package(api: Api, call: Call) -> Response:
    body = require_object(call.body or {}, "parameters")
    check_keys(body, ("format",))
    if str(body.get("format", "")).lower() != "zip":
        raise arm_error(400, "InvalidApplicationPackageFormat", "The package format must be 'zip'.")
    with api.model.lock:
        application, package = find_package(api, call)
        blob_name = package_blob_name(application["name"], package["name"])
        try:
            with _service(api) as service:
                found = service.get_blob_client(PACKAGE_CONTAINER, blob_name).exists()
        except AzureError as error:
            raise arm_error(
                503,
                "StorageUnavailable",
                f"The linked storage account could not be reached: {redact(str(error).splitlines()[0])}",
            ) from None
        if not found:
            raise arm_error(
                409,
                "ApplicationPackageBlobNotFound",
                f"No package was uploaded for version "
                f"'{package['name']}' of '{application['name']}'; upload the zip to storageUrl first.",
            )
        package["properties"].update({"state": "Active", "format": "zip", "lastActivationTime": now_iso()})
        package["etag"] = f'W/"{new_etag()}"'
        api.model.save_package(application["name"].lower(), package)
        return json_response(render_package(api, application["name"], package))


def delete_package(api: Api, call: Call) -> Response:
    with api.model.lock:
        application = find_application(api, call)
        versions = api.model.packages.get(application["name"].lower(), {})
        package = versions.get(call.params["versionName"])
        if package is None:
            return empty(204)
        if not application["properties"].get("allowUpdates", True):
            raise arm_error(
                409,
                "ApplicationPackageUpdatesNotAllowed",
                f"Application '{application['name']}' does not allow updates or deletes of its versions.",
            )
        if application["properties"].get("defaultVersion") == package["name"]:
            application["properties"].pop("defaultVersion")
            api.model.save_application(application)
        del versions[package["name"]]
        api.model.store.delete(Table.PACKAGES, application["name"].lower(), package["name"])
    return empty(200)


def routes(api: Api) -> list[Route]:
    plane = "management"
    return [
        endpoint(api, "GET", ACCOUNT, get_account, plane),
        endpoint(api, "GET", APPLICATIONS, list_applications, plane),
        endpoint(api, "PUT", APPLICATION, create_application, plane),
        endpoint(api, "GET", APPLICATION, get_application, plane),
        endpoint(api, "PATCH", APPLICATION, update_application, plane),
        endpoint(api, "DELETE", APPLICATION, delete_application, plane),
        endpoint(api, "GET", VERSIONS, list_packages, plane),
        endpoint(api, "PUT", VERSION, create_package, plane),
        endpoint(api, "GET", VERSION, get_package, plane),
        endpoint(api, "DELETE", VERSION, delete_package, plane),
        endpoint(api, "POST", VERSION + "/activate", activate_package, plane),
    ]
