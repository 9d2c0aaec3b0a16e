"""The job manager task of a scheduled workload: it adds the manifest's tasks to each job of the schedule.

A Batch job schedule makes a new job for every run from its job specification, which cannot hold tasks. The
specification's job manager task does it: a short standard-library Python program (``python3`` is on Batch's
Linux images) that reads the task bodies from its environment and adds them to its own job with the
job-scoped token Batch gives it (``authenticationTokenSettings: {access: [job]}``, so no account key ever
reaches a node). Requests hold at most 100 tasks and stay under Batch's 1 MB (a 413 halves the group); an add
answered ``TaskExists`` is a success (a job manager restarted part-way adds only what is missing); a task
still refused after the retries fails the job manager, naming it. The task bodies (with their storage SAS
URLs) travel gzipped and base64-encoded in ``BATCHRUN_TASKS``, which Linux limits to 128 KiB.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping, Sequence
from typing import Any

from batchrun.errors import ApplyError

MANAGER_ID = "batchrun-add-tasks"
TASKS_VARIABLE = "BATCHRUN_TASKS"
# Linux refuses an environment string over 128 KiB (MAX_ARG_STRLEN) when it starts the job manager.
MAX_ENCODED_BYTES = 120 * 1024

PROGRAM = """
import base64, gzip, json, os, sys, time, urllib.error, urllib.request
url = os.environ["AZ_BATCH_ACCOUNT_URL"].rstrip("/")
job, token = os.environ["AZ_BATCH_JOB_ID"], os.environ["AZ_BATCH_AUTHENTICATION_TOKEN"]
tasks = json.loads(gzip.decompress(base64.b64decode(os.environ["BATCHRUN_TASKS"])))
path = url + "/jobs/" + urllib.request.quote(job, safe="") + "/addtaskcollection?api-version=2024-07-01.20.0"
failed = []
def chunks(items, limit=900000):
    # At most 100 tasks and well under Batch's 1 MB a request.
    chunk, size = [], 0
    for item in items:
        length = len(json.dumps(item)) + 1
        if chunk and (len(chunk) == 100 or size + length > limit):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += length
    if chunk:
        yield chunk
def add(chunk):
    for attempt in range(6):
        request = urllib.request.Request(path, data=json.dumps({"value": chunk}).encode(), method="POST")
        request.add_header("Authorization", "Bearer " + token)
        request.add_header("Content-Type", "application/json; odata=minimalmetadata")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                results = json.load(answer)["value"]
        except urllib.error.HTTPError as error:
            if error.code == 413 and len(chunk) > 1:  # too large after all: halves
                half = len(chunk) // 2
                add(chunk[:half])
                add(chunk[half:])
                return
            if error.code < 500 and error.code != 429 or attempt == 5:
                sys.exit("adding tasks failed: HTTP %d %s" % (error.code, error.read()[:300]))
            time.sleep(2 ** attempt)
            continue
        except (urllib.error.URLError, OSError, ValueError) as error:
            if attempt == 5:
                sys.exit("adding tasks failed: %s" % error)
            time.sleep(2 ** attempt)
            continue
        again = {r["taskId"] for r in results if r.get("status") == "servererror"}
        for r in results:
            code = (r.get("error") or {}).get("code", "")
            if r.get("status") not in ("success", "servererror") and code != "TaskExists":
                failed.append("%s: %s" % (r.get("taskId"), code))
        chunk = [t for t in chunk if t["id"] in again]
        if not chunk:
            return
        time.sleep(2 ** attempt)
    failed.extend("%s: server error after retries" % t["id"] for t in chunk)
for chunk in chunks(tasks):
    add(chunk)
print("added %d task(s) to job %s" % (len(tasks) - len(failed), job))
if failed:
    sys.exit("tasks not added: " + "; ".join(failed[:20]))
"""


def encode_tasks(bodies: Sequence[Mapping[str, Any]], schedule_id: str) -> str:
    """The task bodies as the job manager reads them; an ApplyError when they are too large for Batch."""
    encoded = base64.b64encode(gzip.compress(json.dumps(list(bodies)).encode("utf-8"), mtime=0)).decode()
    if len(encoded) > MAX_ENCODED_BYTES:
        raise ApplyError(
            f"jobschedule/{schedule_id}: its {len(bodies)} task(s) take {len(encoded):,} bytes compressed, "
            f"more than a Batch request can carry ({MAX_ENCODED_BYTES:,}); schedule fewer or smaller tasks."
        )
    return encoded


def manager_task(bodies: Sequence[Mapping[str, Any]], schedule_id: str) -> dict[str, Any]:
    """The job manager task that adds ``bodies`` to each job of the schedule."""
    program = base64.b64encode(PROGRAM.encode()).decode()
    return {
        "id": MANAGER_ID,
        "displayName": "batchrun: adds the workload's tasks",
        "commandLine": f"python3 -c \"exec(__import__('base64').b64decode('{program}'))\"",
        "environmentSettings": [{"name": TASKS_VARIABLE, "value": encode_tasks(bodies, schedule_id)}],
        "authenticationTokenSettings": {"access": ["job"]},
        "killJobOnCompletion": False,
        "runExclusive": False,
    }
