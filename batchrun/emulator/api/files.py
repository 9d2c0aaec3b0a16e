"""Files of tasks and nodes: list, get (ranged with ``ocp-range``, streamed from disk), properties, delete.

Task files are read from the folder of the node the task ran on; node files from the node's root folder (the
paths Batch shows: ``startup/stdout.txt``, ``workitems/<job>/job-1/<task>/stdout.txt``, ...). A file is
sent in chunks as it is read, never loaded whole, and the handlers run off the event loop.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchrun.emulator import odata
from batchrun.emulator.api.base import Api, Call, empty, endpoint, json_response, with_metadata
from batchrun.emulator.api.pools import get_pool
from batchrun.emulator.api.tasks import get_task
from batchrun.emulator.errors import BatchApiError, invalid_query, not_found
from batchrun.emulator.node import node_root, task_directory
from batchrun.emulator.scheduler.nodes import identity
from batchrun.emulator.timefmt import iso

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 256 * 1024
Folder = Callable[[Api, Call], "tuple[Path | None, str]"]


def task_folder(api: Api, call: Call) -> tuple[Path | None, str]:
    """The task's folder on its node (None before it ran) and the URL its files live under."""
    job_id, task_id = call.params["jobId"], call.params["taskId"]
    base = f"{call.base_url}/jobs/{job_id}/tasks/{task_id}/files/"
    with api.model.lock:
        task = get_task(api, job_id, task_id)
        node_info = task.get("nodeInfo")
        if not node_info:
            return None, base
        pool_id, node_id = node_info["poolId"], node_info["nodeId"]
        node = api.model.nodes.get(pool_id, {}).get(node_id, {"id": node_id})
        who = identity(api.config, call.base_url, pool_id, node)
    if not who.root.exists():
        who = type(who)(
            node_root(api.config.nodes_dir, pool_id, node_id),
            who.account_name,
            who.account_url,
            pool_id,
            node_id,
        )
    return task_directory(who, job_id, task_id), base


def node_folder(api: Api, call: Call) -> tuple[Path | None, str]:
    """The node's root folder and the URL its files live under."""
    pool_id, node_id = call.params["poolId"], call.params["nodeId"]
    with api.model.lock:
        get_pool(api, pool_id)
        if node_id not in api.model.nodes.get(pool_id, {}):
            raise not_found("Node", node_id)
    return node_root(
        api.config.nodes_dir, pool_id, node_id
    ), f"{call.base_url}/pools/{pool_id}/nodes/{node_id}/files/"


def _properties(info: os.stat_result) -> dict[str, Any]:
    created = datetime.fromtimestamp(info.st_ctime, timezone.utc)
    modified = datetime.fromtimestamp(info.st_mtime, timezone.utc)
    return {
        "creationTime": iso(created),
        "lastModified": iso(modified),
        "contentLength": str(info.st_size),
        "contentType": "application/octet-stream",
        "fileMode": f"0{stat.S_IMODE(info.st_mode):o}",
    }


def _recursive(call: Call) -> bool:
    text = (call.option("recursive") or "false").lower()
    if text not in ("true", "false"):
        raise invalid_query("recursive", text, "must be true or false")
    return text == "true"


def list_files(folder_of: Folder) -> Callable[[Api, Call], Response]:
    def handler(api: Api, call: Call) -> Response:
        recursive = _recursive(call)
        predicate = odata.parse_filter(call.option("$filter"), ("name", "isDirectory"))
        folder, base = folder_of(api, call)
        entries: list[dict[str, Any]] = []
        if folder is not None and folder.is_dir():
            paths = sorted(folder.rglob("*") if recursive else folder.iterdir())
            for path in paths:
                try:
                    info = path.lstat()
                except OSError:
                    continue
                if stat.S_ISLNK(info.st_mode):
                    continue  # never report (or follow) a link a task planted
                name = path.relative_to(folder).as_posix()
                entry = {
                    "name": name,
                    "url": base + quote(name, safe=""),
                    "isDirectory": stat.S_ISDIR(info.st_mode),
                    "properties": _properties(info),
                }
                if predicate is None or predicate(entry):
                    entries.append(entry)
        return json_response(with_metadata(call.base_url, "files", {"value": entries}))

    return handler


def _resolve(folder_of: Folder, api: Api, call: Call) -> tuple[Path, os.stat_result, str]:
    relative = call.params["filePath"]
    folder, base = folder_of(api, call)
    if folder is None:
        raise not_found("File", relative)
    target = (folder / relative).resolve()
    root = folder.resolve()
    if root == target or root not in target.parents:
        raise not_found("File", relative)
    try:
        return target, target.stat(), base + quote(relative, safe="")
    except OSError:
        raise not_found("File", relative) from None


def _file_headers(path: Path, info: os.stat_result, url: str) -> dict[str, str]:
    return {
        "ocp-creation-time": format_datetime(
            datetime.fromtimestamp(info.st_ctime, timezone.utc), usegmt=True
        ),
        "ocp-batch-file-isdirectory": "true" if path.is_dir() else "false",
        "ocp-batch-file-url": url,
        "ocp-batch-file-mode": f"0{stat.S_IMODE(info.st_mode):o}",
        "Last-Modified": format_datetime(datetime.fromtimestamp(info.st_mtime, timezone.utc), usegmt=True),
        "ETag": f"0x{int(info.st_mtime_ns // 100):015X}",
    }


def file_properties(folder_of: Folder) -> Callable[[Api, Call], Response]:
    def handler(api: Api, call: Call) -> Response:
        path, info, url = _resolve(folder_of, api, call)
        headers = _file_headers(path, info, url)
        headers["Content-Length"] = str(info.st_size if path.is_file() else 0)
        return Response(status_code=200, headers=headers, media_type="application/octet-stream")

    return handler


def byte_range(requested: str | None, size: int) -> tuple[int, int]:
    """``(start, end)`` inclusive for an ``ocp-range`` header (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``)."""
    if not requested:
        return 0, size - 1
    match = _RANGE.match(requested.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        raise BatchApiError(
            400,
            "InvalidHeaderValue",
            "The value for one of the HTTP headers is not in the correct format.",
            {"HeaderName": "ocp-range", "HeaderValue": requested},
        )
    if match.group(1):
        start = int(match.group(1))
        end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    else:  # bytes=-N: the last N bytes
        start, end = max(0, size - int(match.group(2))), size - 1
    return start, end


def _chunks(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            data = handle.read(min(CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data


def get_file(folder_of: Folder) -> Callable[[Api, Call], Response]:
    def handler(api: Api, call: Call) -> Response:
        path, info, url = _resolve(folder_of, api, call)
        if path.is_dir():
            raise BatchApiError(
                400,
                "InvalidOperation",
                "The path names a directory, not a file.",
                {"FilePath": call.params["filePath"]},
            )
        start, end = byte_range(call.headers.get("ocp-range"), info.st_size)
        headers = _file_headers(path, info, url)
        headers["Content-Length"] = str(max(0, end - start + 1))
        # Sync iterators are read in a worker thread by Starlette: the event loop never waits on the disk.
        return StreamingResponse(
            _chunks(path, start, end), status_code=200, headers=headers, media_type="application/octet-stream"
        )

    return handler


def delete_file(folder_of: Folder) -> Callable[[Api, Call], Response]:
    def handler(api: Api, call: Call) -> Response:
        path, _, _ = _resolve(folder_of, api, call)
        if path.is_dir():
            if not _recursive(call) and any(path.iterdir()):
                raise BatchApiError(
                    409,
                    "DirectoryNotEmpty",
                    "The directory is not empty; delete it with recursive=true.",
                    {"FilePath": call.params["filePath"]},
                )
            shutil.rmtree(path)
        else:
            path.unlink()
        return empty(200)

    return handler


def routes(api: Api) -> list[Route]:
    task_files = "/jobs/{jobId}/tasks/{taskId}/files"
    node_files = "/pools/{poolId}/nodes/{nodeId}/files"
    result = []
    for base, folder_of in ((task_files, task_folder), (node_files, node_folder)):
        result += [
            endpoint(api, "GET", base, list_files(folder_of)),
            endpoint(api, "HEAD", base + "/{filePath}", file_properties(folder_of)),
            endpoint(api, "GET", base + "/{filePath}", get_file(folder_of)),
            endpoint(api, "DELETE", base + "/{filePath}", delete_file(folder_of)),
        ]
    return result
