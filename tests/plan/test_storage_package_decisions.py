"""Storage input and package decisions as data cases; reproducible zips; field diff normalisation."""

from __future__ import annotations

import os
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from batchrun.azure.packages import reproducible_zip
from batchrun.plan.actions import Action
from batchrun.plan.decide_storage import decide_input, decide_outputs, decide_package
from batchrun.plan.diff import diff_subset
from batchrun.plan.live import LiveInput, LivePackage, LocalFile, PreparedInput, PreparedPackage

FILES = (LocalFile("in/a.txt", "/x/a.txt", "md5a", 1), LocalFile("in/b.txt", "/x/b.txt", "md5b", 1))
PREPARED = PreparedInput("data", "demo-in", "in/", FILES)


@pytest.mark.parametrize(
    ("name", "live", "prune", "action", "operations", "uploads"),
    [
        ("no container", None, False, Action.CREATE, ["storage.create_container", "storage.upload"], 2),
        ("empty container", LiveInput("data", True), False, Action.CREATE, ["storage.upload"], 2),
        (
            "same MD5s",
            LiveInput("data", True, {"in/a.txt": ("md5a", True), "in/b.txt": ("md5b", True)}),
            False,
            Action.NOOP,
            [],
            0,
        ),
        (
            "one changed",
            LiveInput("data", True, {"in/a.txt": ("old", True), "in/b.txt": ("md5b", True)}),
            False,
            Action.UPDATE,
            ["storage.upload"],
            1,
        ),
        (
            "extra blob kept",
            LiveInput(
                "data",
                True,
                {"in/a.txt": ("md5a", True), "in/b.txt": ("md5b", True), "in/c.txt": ("md5c", True)},
            ),
            False,
            Action.NOOP,
            [],
            0,
        ),
        (
            "extra blob pruned",
            LiveInput(
                "data",
                True,
                {"in/a.txt": ("md5a", True), "in/b.txt": ("md5b", True), "in/c.txt": ("md5c", True)},
            ),
            True,
            Action.UPDATE,
            ["storage.delete_blobs"],
            0,
        ),
        (
            "someone else's extra blob is never pruned",
            LiveInput(
                "data",
                True,
                {"in/a.txt": ("md5a", True), "in/b.txt": ("md5b", True), "in/c.txt": ("x", False)},
            ),
            True,
            Action.NOOP,
            [],
            0,
        ),
    ],
)
def test_input_decision(
    name: str, live: LiveInput | None, prune: bool, action: Action, operations: list[str], uploads: int
) -> None:
    change = decide_input(PREPARED, live, prune)
    assert change.action is action
    assert [op.name for op in change.operations] == operations
    uploaded = [f for op in change.operations if op.name == "storage.upload" for f in op.args["files"]]
    assert len(uploaded) == uploads


@pytest.mark.parametrize(
    ("live", "remembered"),
    [
        (None, "/cache/hashes.json"),
        (LiveInput("data", True, {"in/a.txt": ("", True)}), "/cache/hashes.json"),  # no MD5 to compare
        (LiveInput("data", True, {"in/b.txt": ("md5b", True)}), "/cache/hashes.json"),
        (LiveInput("data", True, {"in/a.txt": ("", True)}), None),  # the hash cache is off
    ],
)
def test_a_file_the_plan_did_not_hash_is_uploaded_and_remembered_by_the_upload(
    live: LiveInput | None, remembered: str | None
) -> None:
    files = (LocalFile("in/a.txt", "/x/a.txt", None, 1, (1, 2, 3, 4)), FILES[1])
    change = decide_input(PreparedInput("data", "demo-in", "in/", files, remembered), live, False)
    upload = next(op for op in change.operations if op.name == "storage.upload")
    assert upload.args["files"][0] == {
        "blob": "in/a.txt",
        "path": "/x/a.txt",
        "md5": None,
        "size": 1,
        "stat": (1, 2, 3, 4),
    }
    assert upload.args.get("hashCache") == remembered
    hashed_only = decide_input(
        PreparedInput("data", "demo-in", "in/", FILES, "/cache/hashes.json"), None, False
    )
    assert "hashCache" not in next(op for op in hashed_only.operations if op.name == "storage.upload").args


def test_outputs_container_is_created_once() -> None:
    assert decide_outputs("out", False).action is Action.CREATE
    assert decide_outputs("out", True).action is Action.NOOP


PACKAGE = PreparedPackage("tools", "1.0", "/x/tools", "sha-new", set_default=True)


@pytest.mark.parametrize(
    ("name", "live", "action", "operations"),
    [
        (
            "absent",
            LivePackage("tools", "1.0", False, False),
            Action.CREATE,
            ["package.upload", "package.set_default"],
        ),
        (
            "same content",
            LivePackage("tools", "1.0", True, True, "Active", "sha-new", False, "1.0"),
            Action.NOOP,
            [],
        ),
        (
            "same content, not default",
            LivePackage("tools", "1.0", True, True, "Active", "sha-new", False, "0.9"),
            Action.UPDATE,
            ["package.set_default"],
        ),
        (
            "different content",
            LivePackage("tools", "1.0", True, True, "Active", "sha-old", False, "1.0"),
            Action.BLOCKED,
            [],
        ),
        (
            "different content, updates allowed",
            LivePackage("tools", "1.0", True, True, "Active", "sha-old", True, "1.0"),
            Action.UPDATE,
            ["package.upload"],
        ),
        (
            "left pending by an interrupted apply",
            LivePackage("tools", "1.0", True, True, "Pending", "", False, ""),
            Action.UPDATE,
            ["package.upload", "package.set_default"],
        ),
    ],
)
def test_package_decision(name: str, live: LivePackage, action: Action, operations: list[str]) -> None:
    change = decide_package(PACKAGE, live)
    assert change.action is action, change
    assert [op.name for op in change.operations] == operations
    if action is Action.BLOCKED:
        assert "bump the version" in change.unblock


def test_reproducible_zip_ignores_mtimes_and_orders_entries(tmp_path: Path) -> None:
    source = tmp_path / "tools"
    (source / "bin").mkdir(parents=True)
    (source / "run.sh").write_text("echo hi\n")
    (source / "bin" / "tool").write_text("#!/bin/sh\n")
    (source / "bin" / "tool").chmod(0o755)
    first = reproducible_zip(source)
    os.utime(source / "run.sh", (1_000_000_000, 1_000_000_000))
    assert reproducible_zip(source) == first
    names = zipfile.ZipFile(BytesIO(first)).namelist()
    assert names == sorted(names)
    (source / "run.sh").write_text("echo changed\n")
    assert reproducible_zip(source) != first


@pytest.mark.parametrize(
    ("desired", "live", "drift"),
    [
        ({"vmSize": "standard_d2s_v3"}, {"vmSize": "STANDARD_D2S_V3"}, False),
        ({"resizeTimeout": "PT15M"}, {"resizeTimeout": "PT15M00S"}, False),
        ({"constraints": {"maxTaskRetryCount": 0}}, {"constraints": {}}, False),
        ({"startTask": {"waitForSuccess": True}}, {"startTask": {}}, False),
        ({"commandLine": "Echo"}, {"commandLine": "echo"}, True),
        ({"taskSlotsPerNode": 2}, {"taskSlotsPerNode": 1}, True),
        ({"metadata": []}, {}, False),
    ],
)
def test_diff_normalises_live_defaults(
    desired: dict[str, object], live: dict[str, object], drift: bool
) -> None:
    assert bool(diff_subset(desired, live)) is drift
