"""Two applies of one workload at once: the apply lock (a blob lease in the target's storage) lets one run
and makes the other fail at once naming the holder; a holder killed with SIGKILL is broken with
``--break-lock``; a pool that appears between plan and create with another digest is a conflict, not a
success."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from azure.core.exceptions import ResourceExistsError

import batchrun
from batchrun.errors import ApplyError
from tests.faults.test_interruptions import APPLY_SCRIPT
from tests.reconcile.proxy import Decision, FaultProxy

if TYPE_CHECKING:
    from azure.batch import BatchClient
    from azure.storage.blob import BlobServiceClient

    from batchrun.local.target import LocalTarget
    from batchrun.target import Target


def manifest(folder: Path, name: str, vm_size: str, file_name: str) -> Path:
    path = folder / file_name
    path.write_text(
        f"""apiVersion: batchrun/v1
kind: Workload
metadata: {{name: {name}}}
pool:
  id: {name}-pool
  vmSize: {vm_size}
  virtualMachineConfiguration:
    imageReference: {{publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 0
job:
  id: {name}-job
  tasks:
    - {{id: t1, commandLine: /bin/true}}
"""
    )
    return path


@pytest.fixture(scope="module")
def target(local_target: LocalTarget) -> Target:
    from batchrun.target import target_from_local

    return target_from_local(local_target)


class Holding:
    """An apply in a subprocess, held (inside its lock) at its job create until ``release``."""

    def __init__(self, local_target: LocalTarget, target: Target, path: Path) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.proxy = FaultProxy(target.batch_url, self._hold)
        self.local_target = local_target
        self.target = target
        self.path = path
        self.process: subprocess.Popen[str] | None = None

    def _hold(self, method: str, path: str) -> Decision:
        if method == "POST" and path.endswith("/jobs"):
            self.arrived.set()
            self.released.wait(120)
        return "pass"

    def __enter__(self) -> Holding:
        self.proxy.__enter__()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                APPLY_SCRIPT,
                str(self.local_target.home),
                str(self.path),
                self.proxy.url,
                self.target.blob_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.arrived.wait(120), "the held apply never reached its job create"
        return self

    def finish(self) -> tuple[int, str]:
        assert self.process is not None
        self.released.set()
        out, err = self.process.communicate(timeout=120)
        return self.process.returncode, out + err

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.proxy.__exit__()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchrun", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def cleanup(target: Target) -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for path in made:
        batchrun.destroy(path, target=target, confirm_replace=True)


def test_a_second_apply_fails_at_once_naming_the_holder(
    tmp_path: Path,
    local_target: LocalTarget,
    target: Target,
    local_target_env: dict[str, str],
    batch_client: BatchClient,
    cleanup: list[Path],
) -> None:
    first = manifest(tmp_path, "lock-two", "standard_d2s_v3", "first.yaml")
    second = manifest(tmp_path, "lock-two", "standard_d4s_v3", "second.yaml")  # same workload name
    cleanup.append(first)
    with Holding(local_target, target, first) as holding:
        assert holding.process is not None
        result = cli(local_target_env, "apply", str(second), "--auto-approve")
        output = result.stdout + result.stderr
        assert result.returncode == 1 and "Traceback" not in output, output
        assert "workload lock-two is being applied by " in output
        assert f"(pid {holding.process.pid}), since 20" in output
        assert "--break-lock" in output
        code, held_output = holding.finish()
    assert code == 0, held_output
    assert batch_client.get_pool("lock-two-pool").vm_size == "standard_d2s_v3"  # the winner's, untouched


def test_a_rerun_after_a_killed_holder_on_this_machine_goes_on(
    tmp_path: Path,
    local_target: LocalTarget,
    target: Target,
    local_target_env: dict[str, str],
    batch_client: BatchClient,
    cleanup: list[Path],
) -> None:
    path = manifest(tmp_path, "lock-stale", "standard_d2s_v3", "m.yaml")
    cleanup.append(path)
    with Holding(local_target, target, path) as holding:
        assert holding.process is not None
        os.kill(holding.process.pid, signal.SIGKILL)  # dies holding the lock
        holding.process.wait()
    # Same machine, its process gone: the re-run waits for the lease to lapse instead of failing.
    rerun = cli(local_target_env, "apply", str(path), "--auto-approve")
    assert rerun.returncode == 0 and "Traceback" not in rerun.stderr, rerun.stderr
    assert not batchrun.plan(path, target=target).has_changes
    assert sum(1 for _ in batch_client.list_tasks("lock-stale-job", select=["id"])) == 1


def test_a_holder_on_another_machine_is_named_and_broken_only_with_break_lock(
    tmp_path: Path,
    target: Target,
    local_target_env: dict[str, str],
    blob_service: BlobServiceClient,
    cleanup: list[Path],
) -> None:
    from batchrun.azure.lock import LEASE_SECONDS, lock_blob_name

    path = manifest(tmp_path, "lock-remote", "standard_d2s_v3", "m.yaml")
    cleanup.append(path)
    container = blob_service.get_container_client("batchrun-state")
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    blob = container.get_blob_client(lock_blob_name("lock-remote"))
    blob.upload_blob(b"", overwrite=True)
    lease = blob.acquire_lease(lease_duration=-1)  # a CI runner that vanished without releasing it
    holder = {
        "host": "ci-runner-7",
        "user": "runner",
        "pid": "4242",
        "started_at": "2026-01-01T00:00:00+00:00",
    }
    blob.set_blob_metadata(holder, lease=lease)
    refused = cli(local_target_env, "apply", str(path), "--auto-approve")
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1 and "Traceback" not in output, output
    assert "is being applied by runner@ci-runner-7 (pid 4242), since 2026-01-01T00:00:00+00:00" in output
    assert f"lapses within {LEASE_SECONDS} s" in output and "--break-lock" in output
    broken = cli(local_target_env, "apply", str(path), "--auto-approve", "--break-lock")
    assert broken.returncode == 0 and "Traceback" not in broken.stderr, broken.stderr
    assert blob.get_blob_properties().lease.state == "available"  # released after the apply


def test_a_pool_created_meanwhile_with_another_digest_is_a_conflict(
    tmp_path: Path, target: Target, batch_client: BatchClient, cleanup: list[Path]
) -> None:
    from azure.batch import models as batch_models

    path = manifest(tmp_path, "lock-digest", "standard_d2s_v3", "m.yaml")
    cleanup.append(path)
    plan = batchrun.plan(path, target=target)
    batch_client.create_pool(  # another apply of the same workload name, with another manifest, won the race
        batch_models.BatchPoolCreateOptions(
            {
                "id": "lock-digest-pool",
                "vmSize": "standard_d4s_v3",
                "virtualMachineConfiguration": {
                    "imageReference": {
                        "publisher": "canonical",
                        "offer": "ubuntu-24_04-lts",
                        "sku": "server",
                        "version": "latest",
                    },
                    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
                },
                "metadata": [
                    {"name": "batchrun.workload", "value": "lock-digest"},
                    {"name": "batchrun.digest", "value": "another-manifest"},
                ],
            }
        )
    )
    with pytest.raises(
        ApplyError, match="pool/lock-digest-pool: a pool with this id appeared that this apply"
    ):
        batchrun.apply(plan, target=target)
    assert batch_client.get_pool("lock-digest-pool").vm_size == "standard_d4s_v3"


def test_a_lease_that_lapses_before_the_holder_is_written_is_taken_again(
    local_target: LocalTarget, blob_service: BlobServiceClient
) -> None:
    """The lease ends between its acquire and the write of the holder (here broken; in the field it lapses
    while a lost answer is retried): the lock takes the lease again with its id and writes the holder."""
    from azure.core.pipeline import PipelineRequest
    from azure.core.pipeline.policies import SansIOHTTPPolicy
    from azure.storage.blob import BlobLeaseClient, BlobServiceClient

    from batchrun.azure.lock import apply_lock, lock_blob_name

    workload = "lapsing-lock"
    lock = blob_service.get_blob_client("batchrun-state", lock_blob_name(workload))
    with contextlib.suppress(ResourceExistsError):
        blob_service.create_container("batchrun-state")
    lock.upload_blob(
        b"", overwrite=True
    )  # as an earlier apply left it: the holder is written after the lease
    ended: list[str] = []

    class EndTheLeaseOnce(SansIOHTTPPolicy[Any, Any]):
        """Just before the first write of the holder's metadata, the lease ends."""

        def on_request(self, request: PipelineRequest[Any]) -> None:
            sent = request.http_request
            if sent.method == "PUT" and "comp=metadata" in sent.url and not ended:
                BlobLeaseClient(lock).break_lease(lease_break_period=0)
                ended.append(sent.url)

    with (
        BlobServiceClient.from_connection_string(
            local_target.connection_string, _additional_pipeline_policies=[EndTheLeaseOnce()]
        ) as service,
        apply_lock(service, workload),
    ):
        properties = lock.get_blob_properties()
        assert properties.lease.state == "leased"
        assert properties.metadata.get("pid") == str(os.getpid())
    assert ended, "the lease was never ended: the test did not exercise the lapse"
    assert lock.get_blob_properties().lease.state == "available"


def test_the_first_apply_makes_the_lock_naming_itself_and_takes_it_unless_touched_since(
    local_target: LocalTarget, blob_service: BlobServiceClient
) -> None:
    """A workload's first apply makes the lock blob with its own name in it and takes the lease on that very
    blob (its ETag), so it writes no name after. A blob touched in between is taken as any other: the name is
    written under the lease."""
    from azure.core.pipeline import PipelineRequest
    from azure.core.pipeline.policies import SansIOHTTPPolicy
    from azure.storage.blob import BlobServiceClient

    from batchrun.azure.lock import apply_lock, lock_blob_name
    from batchrun.azure.storage import create_container

    # Counted on a storage account that keeps state already, whichever test of this module runs first.
    create_container(blob_service, "batchrun-state")
    sent: list[str] = []
    touch: list[str] = []

    class Watch(SansIOHTTPPolicy[Any, Any]):
        """Notes each lock request; before a conditional acquire of a blob in ``touch``, another writer
        changes that blob."""

        def on_request(self, request: PipelineRequest[Any]) -> None:
            http = request.http_request
            sent.append(f"{http.method} {http.url.split('?')[1] if '?' in http.url else ''}")
            if "comp=lease" in http.url and "If-Match" in http.headers and touch:
                blob_service.get_blob_client("batchrun-state", touch.pop()).set_blob_metadata({"by": "other"})

    with BlobServiceClient.from_connection_string(
        local_target.connection_string, _additional_pipeline_policies=[Watch()]
    ) as service:
        first = blob_service.get_blob_client("batchrun-state", lock_blob_name("first-lock"))
        with apply_lock(service, "first-lock"):
            assert first.get_blob_properties().lease.state == "leased"
            assert first.get_blob_properties().metadata.get("pid") == str(os.getpid())
        assert not any("comp=metadata" in line for line in sent), sent
        assert len(sent) == 4, sent  # acquire (404), make, acquire, release

        sent.clear()
        touch.append(lock_blob_name("touched-lock"))
        touched = blob_service.get_blob_client("batchrun-state", lock_blob_name("touched-lock"))
        with apply_lock(service, "touched-lock"):
            assert not touch, "the blob was never touched: the test did not exercise the fallback"
            assert touched.get_blob_properties().metadata.get("pid") == str(os.getpid())
        assert any("comp=metadata" in line for line in sent), sent


def test_only_this_very_process_is_taken_for_itself_as_the_holder() -> None:
    """A holder with this host and pid but another start time (a process before this one, in a container with
    a fixed hostname) is another apply: its lease is waited for as any other's."""
    from batchrun.azure.lock import _holder, _names_me

    me = _holder()
    assert _names_me(me)
    assert not _names_me({**me, "pid_start": str(int(me["pid_start"] or "0") + 1)})
    assert not _names_me({**me, "boot_id": "another-boot"})
    assert not _names_me(None) and not _names_me({})


def test_a_forked_child_names_itself_not_the_parent_whose_identity_was_read_before() -> None:
    """Who this process is is read once per process (five reads of files and of the system, each a wait
    for Python's lock while the plan is decided): a child of a fork reads its own."""
    from batchrun.azure.lock import _holder, _names_me
    from batchrun.local.processes import start_time

    parent = _holder()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report whom it names, then leave at once
        os.close(read)
        named = _holder()
        own = f"{os.getpid()} {start_time(os.getpid())}"
        os.write(write, f"{named['pid']} {named['pid_start']} {own} {_names_me(named)}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        pid, started, own_pid, own_start, names_itself = answer.read().split()
    os.waitpid(child, 0)
    assert (pid, started) == (own_pid, own_start) and pid == str(child) != parent["pid"]
    assert names_itself == "True"
    assert _holder()["pid"] == parent["pid"] and _names_me(parent)


def _watched(local_target: LocalTarget, sent: list[str]) -> Any:
    from azure.core.pipeline import PipelineRequest
    from azure.core.pipeline.policies import SansIOHTTPPolicy
    from azure.storage.blob import BlobServiceClient

    class Watch(SansIOHTTPPolicy[Any, Any]):
        def on_request(self, request: PipelineRequest[Any]) -> None:
            http = request.http_request
            query = http.url.split("?")[1] if "?" in http.url else ""
            sent.append(f"{http.method} {query} {'If-None-Match' in http.headers}")

    return BlobServiceClient.from_connection_string(
        local_target.connection_string, _additional_pipeline_policies=[Watch()]
    )


def test_a_lock_likely_missing_is_made_first_and_a_destroy_removes_its_lock(
    local_target: LocalTarget, blob_service: BlobServiceClient
) -> None:
    """Nothing of the workload live: its lock blob is made (naming the apply) before the lease is asked for,
    with no lease asked for on a blob that is not there. A blob there after all is taken as always. A lock
    held with ``remove_after`` (a destroy) leaves no blob."""
    from batchrun.azure.lock import apply_lock, lock_blob_name
    from batchrun.azure.storage import create_container

    create_container(blob_service, "batchrun-state")
    sent: list[str] = []
    with _watched(local_target, sent) as service:
        lock = blob_service.get_blob_client("batchrun-state", lock_blob_name("likely-missing"))
        with apply_lock(service, "likely-missing", likely_missing=True):
            assert lock.get_blob_properties().metadata.get("pid") == str(os.getpid())
        assert len(sent) == 3 and sent[0].startswith("PUT") and sent[0].endswith("True"), sent  # make
        assert "comp=lease" in sent[1] and "comp=lease" in sent[2], sent  # acquire, release

        sent.clear()
        with apply_lock(service, "likely-missing", likely_missing=True, remove_after=True):
            assert lock.get_blob_properties().lease.state == "leased"
        # make (409: there already), acquire, write the holder, delete (with the lease)
        assert len(sent) == 4 and "comp=metadata" in sent[2] and sent[3].startswith("DELETE"), sent
        assert not lock.exists()


def test_an_apply_sure_to_write_takes_its_lock_while_it_decides_and_a_blocked_one_lets_it_go(
    tmp_path: Path,
    target: Target,
    local_target_env: dict[str, str],
    batch_client: BatchClient,
    blob_service: BlobServiceClient,
    cleanup: list[Path],
) -> None:
    from batchrun.api import lock_ahead, open_session, plan_with
    from batchrun.azure.lock import lock_blob_name
    from batchrun.azure.storage import create_container
    from batchrun.plan.decide_common import PlanOptions

    path = manifest(tmp_path, "lock-ahead", "standard_d2s_v3", "m.yaml")
    cleanup.append(path)
    workload = batchrun.load(path)
    # A lock is taken beside the reads only on a storage account that keeps state already (else the plan
    # waits until it is sure to write), whichever test of this module runs first.
    create_container(blob_service, "batchrun-state")
    lock = blob_service.get_blob_client("batchrun-state", lock_blob_name("lock-ahead"))
    with open_session(target) as session, lock_ahead(session, workload) as ahead:
        plan_with(session, workload, PlanOptions(), ahead=ahead)
        assert ahead.started  # its lock blob was missing: made and leased beside the plan's reads
        assert lock.get_blob_properties().lease.state == "leased"
    assert not lock.exists()  # nothing applied: the blob made for it is removed again

    batchrun.apply(path, target=target)
    before = lock.get_blob_properties()
    with open_session(target) as session, lock_ahead(session, workload) as ahead:
        assert not plan_with(session, workload, PlanOptions(), ahead=ahead).has_changes
        assert not ahead.started  # nothing to do: no lock, no write
    after = lock.get_blob_properties()
    assert (after.etag, after.lease.state) == (before.etag, "available")

    # A new workload on a pool it does not own: the plan is blocked (--adopt), and the lock taken while it
    # was decided, its job being missing, is let go.
    foreign = tmp_path / "foreign.yaml"
    foreign.write_text(
        path.read_text()
        .replace("name: lock-ahead}", "name: lock-foreign}")
        .replace("id: lock-ahead-job", "id: lock-foreign-job")
    )
    result = cli(local_target_env, "apply", str(foreign), "--auto-approve")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "blocked" in output and "Traceback" not in output, output
    held = blob_service.get_blob_client("batchrun-state", lock_blob_name("lock-foreign"))
    assert not held.exists()  # made at once for its first apply, removed as nothing was applied


def test_a_missing_lock_is_taken_at_once_and_one_there_is_left_alone_until_the_plan_is_sure(
    local_target: LocalTarget, blob_service: BlobServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At once (beside a plan's reads) the lock is taken only by making its missing blob: a blob there is
    not written (its ETag, no lease) and is taken once the plan is sure to write; a storage account without
    the state container gets none (it is made with the lock, when the apply writes). Taken at once and
    applied, the lock is released and its blob kept, as a first apply's is."""
    from batchrun.azure.lock import lock_blob_name
    from batchrun.azure.lock_ahead import LockAhead

    with contextlib.suppress(ResourceExistsError):
        blob_service.create_container("batchrun-state")
    sent: list[str] = []
    with _watched(local_target, sent) as service:
        missing = blob_service.get_blob_client("batchrun-state", lock_blob_name("at-once"))
        with LockAhead(service, "at-once") as ahead, ThreadPoolExecutor(1) as reads:
            ahead.begin(reads)
            assert ahead.started and missing.get_blob_properties().lease.state == "leased"
            assert missing.get_blob_properties().metadata.get("pid") == str(os.getpid())
            with ahead.held():
                pass
        assert missing.get_blob_properties().lease.state == "available"
        assert len(sent) == 3 and sent[0].endswith("True"), sent  # make, lease (its ETag), release

        sent.clear()
        before = missing.get_blob_properties()
        with LockAhead(service, "at-once") as ahead, ThreadPoolExecutor(1) as reads:
            ahead.begin(reads)
            assert not ahead.started
            assert missing.get_blob_properties().etag == before.etag
            ahead.start()  # the plan is sure to write
            assert ahead.started
            with ahead.held():
                assert missing.get_blob_properties().lease.state == "leased"
        # make (409: there), then as any lock blob there: acquire, write the holder; release
        assert len(sent) == 4 and "comp=metadata" in sent[2], sent

        sent.clear()
        gate = threading.Event()
        with LockAhead(service, "at-once") as ahead, ThreadPoolExecutor(1) as reads:
            reads.submit(gate.wait, 10)  # the reads' one thread is busy: the take beside them waits its turn
            ahead.begin(reads)
            asked = time.monotonic()
            ahead.start()  # sure to write before the take beside the reads is over: not waited for
            assert time.monotonic() - asked < 1 and not sent
            gate.set()
            with ahead.held():  # the take beside the reads found the blob there and went on to take it
                assert missing.get_blob_properties().lease.state == "leased"
        assert len(sent) == 4 and "comp=metadata" in sent[2], sent

    other = blob_service.get_container_client("batchrun-state-elsewhere")
    # The same account, the lock's container named otherwise: one that does not exist.
    monkeypatch.setattr("batchrun.azure.lock.LOCK_CONTAINER", "batchrun-state-elsewhere")
    with _watched(local_target, sent) as service:
        with LockAhead(service, "no-container") as ahead, ThreadPoolExecutor(1) as reads:
            ahead.begin(reads)
            assert not ahead.started
        assert not other.exists()


def test_a_destroy_leaves_no_lock_and_breaking_a_lock_waits_until_the_plan_is_applied(
    tmp_path: Path, target: Target, blob_service: BlobServiceClient
) -> None:
    from batchrun.azure.lock import lock_blob_name
    from batchrun.azure.lock_ahead import LockAhead

    path = manifest(tmp_path, "lock-gone", "standard_d2s_v3", "m.yaml")
    batchrun.apply(path, target=target)
    lock = blob_service.get_blob_client("batchrun-state", lock_blob_name("lock-gone"))
    assert lock.exists()
    batchrun.destroy(path, target=target, confirm_replace=True)
    assert not lock.exists()  # the next first apply makes it, with no lease asked for first

    with LockAhead(blob_service, "lock-gone", force=True) as ahead:
        ahead.start()
        assert not ahead.started  # --break-lock breaks another's lease only once its plan is applied


def test_a_renewal_that_fails_in_any_way_leaves_the_lock_held_and_raises_nothing_in_its_thread(
    local_target: LocalTarget, blob_service: BlobServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewal still retrying through flaky storage when the apply ends meets a closed client (a
    ValueError, not a storage error): the renewing thread swallows it, as it does a storage error."""
    import batchrun.azure.blob_requests as blob_requests
    import batchrun.azure.lock as lock_module

    escaped: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_value))
    monkeypatch.setattr(lock_module, "RENEW_SECONDS", 0.01)
    renewals: list[str] = []
    lease = blob_requests.lease

    def closed_client(
        service: BlobServiceClient,
        container: str,
        name: str,
        action: str,
        lease_id: str | None = None,
        **options: Any,
    ) -> None:
        if action != "renew":
            return lease(service, container, name, action, lease_id, **options)
        renewals.append(str(lease_id))
        raise ValueError("HTTP transport has already been closed.")

    monkeypatch.setattr(blob_requests, "lease", closed_client)
    lock = blob_service.get_blob_client("batchrun-state", lock_module.lock_blob_name("renewal-fails"))
    with lock_module.apply_lock(blob_service, "renewal-fails", likely_missing=True, remove_after=True):
        deadline = time.monotonic() + 10
        while len(renewals) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lock.get_blob_properties().lease.state == "leased"
    assert len(renewals) >= 3, "the renewals were not exercised"
    assert escaped == []
    assert not lock.exists()
