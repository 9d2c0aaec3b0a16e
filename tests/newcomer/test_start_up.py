"""What a command loads before its work: each pays only for what it uses (bench/startup.py measures it).

Each check runs the command in a fresh interpreter, as a user does, and reports at exit which modules were
imported and whether the garbage collector is on.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from batchrun.cli.start_up import StartUp
from batchrun.collector import thaw
from tests.operate.cli import REPO, manifest

_REPORT = """
import atexit, gc, json, runpy, sys
def report():
    modules = sorted(sys.modules)
    print(json.dumps({"modules": modules, "collector": gc.isenabled()}), file=sys.stderr)
atexit.register(report)
sys.argv = ["batchrun", *ARGS]
runpy.run_module("batchrun", run_name="__main__")
"""


def _run(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    code = _REPORT.replace("ARGS", repr(args))
    completed = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    report = json.loads(completed.stderr.strip().splitlines()[-1])
    return completed, report


def _imported(report: dict[str, Any], *prefixes: str) -> list[str]:
    return [name for name in report["modules"] if name.startswith(prefixes)]


def _offline(home: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AZURE_")}
    env["BATCHRUN_HOME"] = str(home)
    return env


def test_the_package_imports_its_api_on_first_use() -> None:
    code = (
        "import sys, batchrun\n"
        "assert 'batchrun.api' not in sys.modules, 'imported with the package'\n"
        "assert isinstance(batchrun.PlanError('x'), batchrun.BatchrunError)\n"
        "import batchrun.plan.actions, batchrun.apply.hooks  # the subpackages named like two verbs\n"
        "from batchrun import apply, destroy, load, load_all, plan, render_plan, Diagnostic, __version__\n"
        "import batchrun.api as api\n"
        "assert plan is api.plan and batchrun.plan is api.plan, batchrun.plan\n"
        "assert apply is api.apply and batchrun.apply is api.apply, batchrun.apply\n"
        "assert batchrun.load is api.load and batchrun.render_plan is api.render_plan\n"
        "assert {'plan', 'apply', 'ManifestError'} <= set(dir(batchrun))\n"
        "try:\n    batchrun.nothing_here\nexcept AttributeError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "has no attribute 'nothing_here'" in result.stdout


def test_validate_imports_neither_the_sdks_nor_jsonschema_nor_the_planner(tmp_path: Path) -> None:
    hello = str(REPO / "workloads" / "hello.yaml")
    completed, report = _run(["validate", hello], _offline(tmp_path))
    assert completed.returncode == 0 and completed.stdout.startswith("ok "), completed.stderr
    assert not _imported(
        report, "azure", "jsonschema", "referencing", "batchrun.api", "batchrun.plan", "batchrun.local"
    )
    assert not _imported(report, "batchrun.emulator", "batchrun.azure")


def test_an_invalid_manifest_is_still_explained_by_jsonschema(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text((REPO / "workloads" / "hello.yaml").read_text().replace("vmSize:", "vmSzie:"))
    completed, report = _run(["validate", str(path)], _offline(tmp_path))
    assert completed.returncode == 1
    assert "unknown key 'vmSzie'" in completed.stderr and "did you mean 'vmSize'?" in completed.stderr
    assert _imported(report, "jsonschema")


def test_plan_loads_no_emulator_code_and_collects_garbage_once_started(
    local_target_env: dict[str, str], tmp_path: Path
) -> None:
    path = manifest(
        tmp_path, "su-plan", "job:\n  id: su-plan-job\n  tasks: [{id: t, commandLine: /bin/true}]\n"
    )
    completed, report = _run(["plan", str(path)], local_target_env)
    assert completed.returncode == 0, completed.stderr
    assert "+ job/su-plan-job will be created" in completed.stdout
    assert not _imported(report, "jsonschema", "batchrun.emulator", "batchrun.saved_plans")
    assert not _imported(report, "batchrun.cli.workload_set", "batchrun.cli.approval")
    # The collector is off while the command starts (batchrun.cli.start_up) and on again for its work.
    assert report["collector"] is True


def test_start_up_turns_the_collector_off_then_back_as_it_was() -> None:
    was_on = gc.isenabled()
    try:
        for on in (True, False):
            gc.enable() if on else gc.disable()
            start_up = StartUp.begin()
            assert not gc.isenabled()
            start_up.end()
            assert gc.isenabled() is on and gc.get_freeze_count() > 0
            start_up.finish()
            assert gc.isenabled() is on
            thaw()
    finally:
        thaw()
        gc.enable() if was_on else gc.disable()
