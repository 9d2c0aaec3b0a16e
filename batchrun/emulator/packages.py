"""Application package references: resolving ``{applicationId, version}`` to a stored, active package."""

from __future__ import annotations

from typing import Any

from batchrun.emulator.model import Body, Model
from batchrun.emulator.node import PackageBlob

PACKAGE_CONTAINER = "app-packages"


def application_name(application_id: str) -> str:
    """Pools may carry the full ARM id (``.../applications/<name>``); tasks the plain name."""
    marker = "/applications/"
    lowered = application_id.lower()
    if marker in lowered:
        return application_id[lowered.rindex(marker) + len(marker) :].strip("/")
    return application_id


def package_blob_name(application: str, version: str) -> str:
    return f"{application.lower()}/{version}/{application.lower()}-{version}.zip"


class UnresolvedPackage(Exception):
    """A reference that names no existing, active package version."""


def resolve(model: Model, reference: dict[str, Any]) -> tuple[str, str, Body]:
    """(application name, version, package body) for a reference; call with the model lock held."""
    raw_id = str(reference.get("applicationId", ""))
    name = application_name(raw_id)
    application = model.applications.get(name.lower())
    if application is None:
        raise UnresolvedPackage(f"application '{name}' does not exist in this account")
    version = reference.get("version") or application["properties"].get("defaultVersion")
    if not version:
        raise UnresolvedPackage(f"application '{name}' has no default version and the reference names none")
    package = model.packages.get(name.lower(), {}).get(str(version))
    if package is None:
        raise UnresolvedPackage(f"application '{name}' has no version '{version}'")
    if package["properties"].get("state") != "Active":
        raise UnresolvedPackage(f"version '{version}' of application '{name}' is not activated yet")
    return application["name"], str(version), package


def resolve_packages(model: Model, references: list[dict[str, Any]]) -> list[PackageBlob] | str:
    """The package blobs for ``references`` (lock held), or why one of them cannot be resolved."""
    blobs: list[PackageBlob] = []
    for reference in references:
        try:
            name, version, _ = resolve(model, reference)
        except UnresolvedPackage as error:
            return str(error)
        blobs.append(
            PackageBlob(
                name,
                version,
                PACKAGE_CONTAINER,
                package_blob_name(name, version),
                referenced_without_version=not reference.get("version"),
            )
        )
    return blobs


def snapshot_packages(model: Model, references: list[dict[str, Any]]) -> list[dict[str, Any]] | str:
    """The pool's package references resolved to versions, as a node installs them when it boots (lock held).

    A node keeps these versions until it is rebooted or reimaged, as on Azure: a new default version or a
    changed pool reference reaches only nodes that boot after the change.
    """
    resolved: list[dict[str, Any]] = []
    for reference in references:
        try:
            name, version, _ = resolve(model, reference)
        except UnresolvedPackage as error:
            return str(error)
        resolved.append(
            {"applicationId": name, "version": version, "withoutVersion": not reference.get("version")}
        )
    return resolved


def blobs_of_snapshot(snapshot: list[dict[str, Any]] | str) -> list[PackageBlob] | str:
    if isinstance(snapshot, str):
        return snapshot
    return [
        PackageBlob(
            item["applicationId"],
            item["version"],
            PACKAGE_CONTAINER,
            package_blob_name(item["applicationId"], item["version"]),
            referenced_without_version=bool(item.get("withoutVersion")),
        )
        for item in snapshot
    ]
