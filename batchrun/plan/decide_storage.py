"""Decisions for storage inputs and application package versions (pure)."""

from __future__ import annotations

from batchrun.plan.actions import Action, Change, FieldChange, Operation, Stage
from batchrun.plan.live import LiveInput, LivePackage, PreparedInput, PreparedPackage


def input_address(name: str) -> str:
    return f"storage.input/{name}"


def package_address(package_id: str, version: str) -> str:
    return f"package/{package_id}@{version}"


def decide_input(desired: PreparedInput, live: LiveInput | None, prune: bool) -> Change:
    """Upload what is missing or differs by Content-MD5; delete extra owned blobs only when pruning."""
    address = input_address(desired.name)
    blobs = live.blobs if live is not None else {}
    uploads = [f for f in desired.files if blobs.get(f.blob, ("", False))[0] != f.md5]
    wanted = {f.blob for f in desired.files}
    extra = sorted(name for name in blobs if name not in wanted)
    extra_owned = [name for name in extra if blobs[name][1]]
    operations: list[Operation] = []
    container_missing = live is None or not live.container_exists
    if container_missing:
        operations.append(
            Operation(Stage.STORAGE, "storage.create_container", {"container": desired.container})
        )
    if uploads:
        upload: dict[str, object] = {
            "container": desired.container,
            "files": [
                {"blob": f.blob, "path": f.path, "md5": f.md5, "size": f.size, "stat": f.stat}
                for f in uploads
            ],
        }
        if desired.hash_cache is not None and any(f.md5 is None for f in uploads):
            upload["hashCache"] = desired.hash_cache  # where the upload remembers the MD5s it computes
        operations.append(Operation(Stage.STORAGE, "storage.upload", upload))
    if prune and extra_owned:
        operations.append(
            Operation(
                Stage.STORAGE, "storage.delete_blobs", {"container": desired.container, "blobs": extra_owned}
            )
        )
    fields: list[FieldChange] = []
    if uploads:
        unchanged = len(desired.files) - len(uploads)
        fields.append(FieldChange("files", f"{unchanged} unchanged", f"{len(uploads)} to upload"))
    if prune and extra_owned:
        fields.append(FieldChange("extra blobs", len(extra_owned), 0))
    if not operations:
        reason = f"{len(desired.files)} files up to date"
        if extra:
            reason += f"; {len(extra)} extra blobs kept (--prune deletes those batchrun uploaded)"
        return Change(address, Action.NOOP, reason=reason)
    action = Action.CREATE if container_missing or not blobs else Action.UPDATE
    return Change(
        address, action, tuple(fields), reason="content differs by MD5", operations=tuple(operations)
    )


def decide_outputs(container: str, exists: bool) -> Change:
    """The outputs container must exist before tasks upload into it (Batch does not create it)."""
    address = f"storage.outputs/{container}"
    if exists:
        return Change(address, Action.NOOP)
    create = Operation(Stage.STORAGE, "storage.create_container", {"container": container})
    return Change(address, Action.CREATE, operations=(create,))


def decide_package(desired: PreparedPackage, live: LivePackage) -> Change:
    """Same content: no-op. Different content: blocked unless the application allows updates."""
    address = package_address(desired.id, desired.version)
    upload = Operation(
        Stage.PACKAGES,
        "package.upload",
        {
            "id": desired.id,
            "version": desired.version,
            "source": desired.source,
            "sha256": desired.sha256,
            "allowUpdates": desired.allow_updates,
            "createApplication": not live.application_exists,
        },
    )
    set_default = Operation(
        Stage.PACKAGES, "package.set_default", {"id": desired.id, "version": desired.version}
    )
    wants_default = desired.set_default and live.default_version != desired.version
    if not live.version_exists:
        operations = (upload, set_default) if desired.set_default else (upload,)
        return Change(
            address, Action.CREATE, (FieldChange("sha256", None, desired.sha256),), operations=operations
        )
    if live.state.lower() != "active":
        # A version left pending by an interrupted apply was never usable: finish it.
        operations = (upload, set_default) if desired.set_default else (upload,)
        return Change(
            address,
            Action.UPDATE,
            (FieldChange("state", live.state, "Active"),),
            reason="version exists but was never activated",
            operations=operations,
        )
    if live.content_sha256 == desired.sha256:
        if wants_default:
            return Change(
                address,
                Action.UPDATE,
                (FieldChange("defaultVersion", live.default_version or None, desired.version),),
                operations=(set_default,),
            )
        return Change(address, Action.NOOP)
    before = live.content_sha256 or "unknown (not uploaded by batchrun)"
    fields = (FieldChange("sha256", before, desired.sha256),)
    if not (live.allow_updates or desired.allow_updates):
        return Change(
            address,
            Action.BLOCKED,
            fields,
            reason="the version exists with different content and the application does not allow updates",
            unblock=f"bump the version of package {desired.id} in the manifest (or set allowUpdates: true)",
        )
    operations = (upload, set_default) if wants_default else (upload,)
    return Change(address, Action.UPDATE, fields, reason="content changed", operations=operations)
