"""Task files: list, get (with ``ocp-range``) and HEAD, read from the node folder the task ran on."""

from __future__ import annotations

import os
import re
import stat
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator import odata
from batchrun.emulator.api.base import Api, Call, endpoint, json_response
from batchrun.emulator.api.tasks import get_task
from batchrun.emulator.errors import BatchApiError, invalid_query, not_found
from batchrun.emulator.node import node_root, task_directory
from batchrun.emulator.scheduler.nodes import identity
from batchrun.emulator.timefmt import iso

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _task_folder(api: Api, call: Call) -> Path | None:
    job_id, task_id = call.params["jobId"], call.params["taskId"]
    with api.model.lock:
        task = get_task(api, job_id, task_id)
        node_info = task.get("nodeInfo")
        if not node_info:
            return None
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
    return task_directory(who, job_id, task_id)


def _properties(path: Path, info: os.stat_result) -> dict[str, Any]:
    created = datetime.fromtimestamp(info.st_ctime, timezone.utc)
    modified = datetime.fromtimestamp(info.st_mtime, timezone.utc)
    return {
        "creationTime": iso(created),
        "lastModified": iso(modified),
        "contentLength": str(info.st_size),
        "contentType": "application/octet-stream",
        "fileMode": f"0{stat.S_IMODE(info.st_mode):o}",
    }


def list_task_files(api: Api, call: Call) -> Response:
    recursive_text = (call.option("recursive") or "false").lower()
    if recursive_text not in ("true", "false"):
        raise invalid_query("recursive", recursive_text, "must be true or false")
    predicate = odata.parse_filter(call.option("$filter"), ("name", "isDirectory"))
    folder = _task_folder(api, call)
    entries: list[dict[str, Any]] = []
    if folder is not None and folder.is_dir():
        paths = sorted(folder.rglob("*") if recursive_text == "true" else folder.iterdir())
        base = f"{call.base_url}/jobs/{call.params['jobId']}/tasks/{call.params['taskId']}/files/"
        for path in paths:
            try:
                info = path.stat()
            except OSError:
                continue
            name = path.relative_to(folder).as_posix()
            entry = {
                "name": name,
                "url": base + quote(name, safe=""),
                "isDirectory": path.is_dir(),
                "properties": _properties(path, info),
            }
            if predicate is None or predicate(entry):
                entries.append(entry)
    return json_response({"value": entries})


def _resolve_file(api: Api, call: Call) -> tuple[Path, os.stat_result]:
    relative = call.params["filePath"]
    folder = _task_folder(api, call)
    if folder is None:
        raise not_found("File", relative)
    target = (folder / relative).resolve()
    root = folder.resolve()
    if root != target and root not in target.parents:
        raise not_found("File", relative)
    try:
        return target, target.stat()
    except OSError:
        raise not_found("File", relative) from None


def _file_headers(call: Call, path: Path, info: os.stat_result) -> dict[str, str]:
    url = (
        f"{call.base_url}/jobs/{call.params['jobId']}/tasks/{call.params['taskId']}/files/"
        f"{quote(call.params['filePath'], safe='')}"
    )
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


def get_file_properties(api: Api, call: Call) -> Response:
    path, info = _resolve_file(api, call)
    headers = _file_headers(call, path, info)
    headers["Content-Length"] = str(info.st_size if path.is_file() else 0)
    return Response(status_code=200, headers=headers, media_type="application/octet-stream")


def get_file(api: Api, call: Call) -> Response:
    path, info = _resolve_file(api, call)
    if path.is_dir():
        raise BatchApiError(
            400,
            "InvalidOperation",
            "The path names a directory, not a file.",
            {"FilePath": call.params["filePath"]},
        )
    data = path.read_bytes()
    requested = call.headers.get("ocp-range")
    if requested:
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
            end = int(match.group(2)) if match.group(2) else len(data) - 1
        else:  # bytes=-N: the last N bytes
            start, end = max(0, len(data) - int(match.group(2))), len(data) - 1
        data = data[start : end + 1]
    headers = _file_headers(call, path, info)
    return Response(data, status_code=200, headers=headers, media_type="application/octet-stream")


def routes(api: Api) -> list[Route]:
    return [
        endpoint(api, "GET", "/jobs/{jobId}/tasks/{taskId}/files", list_task_files),
        endpoint(api, "HEAD", "/jobs/{jobId}/tasks/{taskId}/files/{filePath}", get_file_properties),
        endpoint(api, "GET", "/jobs/{jobId}/tasks/{taskId}/files/{filePath}", get_file),
    ]
