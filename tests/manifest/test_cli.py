"""`batchrun validate` and `batchrun render` as users run them: a subprocess, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "workloads").glob("*.yaml"))


def batchrun(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchrun", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_validate_all_workloads() -> None:
    assert len(WORKLOADS) >= 4
    result = batchrun("validate", *WORKLOADS)
    assert result.returncode == 0, result.stderr
    for workload in WORKLOADS:
        assert f"ok       {workload}" in result.stdout


def test_validate_reports_every_file_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: batchrun/v1\nkind: Workload\nmetadata: {name: x}\npool: {id: p, vmsize: a}\n")
    broken = tmp_path / "broken.yaml"
    broken.write_bytes(b"\xff\xfe not yaml")
    result = batchrun("validate", "workloads/hello.yaml", str(bad), str(broken), str(tmp_path))
    assert result.returncode == 1
    assert "ok       workloads/hello.yaml" in result.stdout
    assert f"{bad}:4:15: unknown key 'vmsize' (at pool.vmsize); did you mean 'vmSize'?" in result.stderr
    assert f"{broken}:1:1: not valid UTF-8" in result.stderr
    assert f"{tmp_path}: is a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_json_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: batchrun/v1\nkind: Workload\nmetadata: {name: x}\njob: {id: j}\n")
    result = batchrun("validate", "-o", "json", "workloads/hello.yaml", str(bad))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report[0]["valid"] is True and report[0]["tasks"] == 4 and len(report[0]["digest"]) == 64
    assert report[1]["valid"] is False
    assert report[1]["diagnostics"][0]["message"] == "the job has no pool"
    assert report[1]["diagnostics"][0]["line"] == 4


def test_render_yaml_and_json_agree_and_are_stable() -> None:
    as_yaml = batchrun("render", "workloads/sweep.yaml")
    as_json = batchrun("render", "workloads/sweep.yaml", "-o", "json")
    assert as_yaml.returncode == 0 and as_json.returncode == 0, as_yaml.stderr + as_json.stderr
    assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)
    assert "&id" not in as_yaml.stdout  # no YAML anchors for shared values
    assert batchrun("render", "workloads/sweep.yaml").stdout == as_yaml.stdout


def test_render_with_vars_and_var_file(tmp_path: Path) -> None:
    var_file = tmp_path / "vars.yaml"
    var_file.write_text("seeds: 2\n")
    rendered = json.loads(
        batchrun("render", "workloads/sweep.yaml", "-o", "json", "--var-file", str(var_file)).stdout
    )
    assert len(rendered["job"]["tasks"]) == 3 * 2 + 1
    rendered = json.loads(batchrun("render", "workloads/sweep.yaml", "-o", "json", "--var", "seeds=5").stdout)
    assert len(rendered["job"]["tasks"]) == 3 * 5 + 1


def test_bad_flags_exit_1_without_traceback() -> None:
    result = batchrun("render", "workloads/sweep.yaml", "--var", "seeds")
    assert result.returncode == 1
    assert "'seeds' is not an assignment" in result.stderr and "Traceback" not in result.stderr
    result = batchrun("render", "workloads/sweep.yaml", "--max-tasks", "10")
    assert result.returncode == 1
    assert "expands to 13 tasks, more than the limit of 10" in result.stderr
    result = batchrun("render", "nope.yaml")
    assert result.returncode == 1 and "nope.yaml: no such file" in result.stderr
