"""The CI examples in docs/ci/ (issue 12): checked by each CI system's own checkers and run for real.

* GitHub Actions: GitHub's own workflow parser (@actions/workflow-parser) finds nothing, actionlint finds
  nothing but the one key newer than its release, and SchemaStore's workflow schema accepts the file.
* Azure Pipelines: Microsoft's pipeline schema (service-schema.json, as vendored by check-jsonschema) accepts
  the pipeline as Azure compiles it: every scalar a string, the ``${{ each }}`` loops expanded.
* Each checker rejects a broken copy, so a passing check means something.
* Every ``batchrun`` command line in either file parses with batchrun's own command line.
* The steps that run batchrun run as written (their ``--target azure`` made ``--target local``) against the
  local target: the pull request's plan saves a plan with changes, the merge applies exactly that plan and
  waits for the job, the drift check finds nothing, then finds an edit; a saved plan that went stale is
  refused.

The npm checkers are installed (pinned) into the suite's tools folder on first use, like Azurite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from importlib.resources import files
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from batchrun.cli.main import cli
from tests.operate.ci_support import (
    NPM_CHECKERS,
    batchrun_command_lines,
    expand_azure_pipeline,
    lint_github_workflows,
    load_azure_pipeline,
    shell_scripts_of_azure_pipeline,
    shell_scripts_of_github_workflow,
)
from tests.operate.cli import REPO, batchrun, manifest

GITHUB = REPO / "docs" / "ci" / "github-actions.yml"
AZURE = REPO / "docs" / "ci" / "azure-pipelines.yml"

# check-jsonschema needs Python 3.11; the project supports 3.10, where these checks cannot run.
if sys.version_info < (3, 11):
    pytest.skip("check-jsonschema (the schemas' source) needs Python 3.11", allow_module_level=True)

# actionlint 1.7.7 predates `concurrency.queue` (GitHub, May 2026), which GitHub's own parser accepts.
ACTIONLINT_TOO_OLD_FOR = ('unexpected key "queue" for "concurrency" section',)


def github_workflow(text: str | None = None) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(GITHUB.read_text() if text is None else text)
    if True in loaded:  # YAML 1.1 reads the key `on` as true
        loaded["on"] = loaded.pop(True)
    return loaded


def broken_copy(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text, f"{old!r} is no longer in {source.name}: update this test's broken copy"
    path = tmp_path / source.name
    path.write_text(text.replace(old, new, 1))
    return path


# --- GitHub Actions -------------------------------------------------------------------------------


def unexpected(findings: list[dict[str, Any]], allowed: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{finding['line']}:{finding['column']}: {finding['message']}"
        for finding in findings
        if not any(text in finding["message"] for text in allowed)
    ]


GITHUB_BREAKAGES = {  # a broken copy of the workflow each checker must reject
    "misspelt key": ("runs-on: ubuntu-latest", "run-on: ubuntu-latest"),
    "unknown context": ("CODE: ${{ steps.plan.outputs.code }}", "CODE: ${{ step.plan.outputs.code }}"),
    "broken expression": ("if: steps.drift.outputs.code == '2'", "if: steps.drift.outputs.code == '2"),
    "bad permission": (
        "id-token: write # azure/login\n      issues: write",
        "id-token: writ # azure/login\n      issues: write",
    ),
}


def test_github_workflow_passes_githubs_parser_and_actionlint_which_reject_broken_copies(
    tmp_path: Path,
) -> None:
    broken = {}
    for number, (what, (old, new)) in enumerate(GITHUB_BREAKAGES.items()):
        (tmp_path / str(number)).mkdir()
        broken[what] = broken_copy(tmp_path / str(number), GITHUB, old, new)
    findings = lint_github_workflows([GITHUB, *broken.values()])
    assert unexpected(findings[GITHUB]["workflowParser"]) == []
    assert unexpected(findings[GITHUB]["actionlint"], ACTIONLINT_TOO_OLD_FOR) == []
    missed = {
        what: checker
        for what, path in broken.items()
        for checker, allowed in (("workflowParser", ()), ("actionlint", ACTIONLINT_TOO_OLD_FOR))
        if unexpected(findings[path][checker], allowed) == []
    }
    assert missed == {}


def check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *args], capture_output=True, text=True, check=False
    )


def test_github_workflow_matches_schemastores_workflow_schema(tmp_path: Path) -> None:
    checked = check_jsonschema("--builtin-schema", "vendor.github-workflows", str(GITHUB))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = broken_copy(tmp_path, GITHUB, "      pull-requests: write", "      pull-requests: writ")
    assert check_jsonschema("--builtin-schema", "vendor.github-workflows", str(broken)).returncode == 1


def test_github_workflow_has_the_three_flows() -> None:
    workflow = github_workflow()
    assert set(workflow["on"]) == {"pull_request", "push", "schedule"}
    assert workflow["on"]["push"] == {"branches": ["main"]}
    assert workflow["on"]["schedule"][0]["cron"]
    jobs = workflow["jobs"]
    assert {name: job["if"] for name, job in jobs.items()} == {
        "plan": "github.event_name == 'pull_request'",
        "apply": "github.event_name == 'push'",
        "drift": "github.event_name == 'schedule'",
    }
    # one apply per workload at a time, queued in order, never cancelled half-way
    assert jobs["apply"]["concurrency"] == {"group": "batchrun-apply-${{ matrix.workload }}", "queue": "max"}
    # no stored secret: OIDC for Azure, the job token for GitHub
    text = GITHUB.read_text()
    assert "secrets." not in text
    assert all(job["permissions"]["id-token"] == "write" for job in jobs.values())
    # what the pull request uploads is what the merge downloads
    upload = next(
        step for step in jobs["plan"]["steps"] if step.get("uses", "").startswith("actions/upload-artifact")
    )
    assert upload["with"]["name"] == "plan-${{ matrix.workload }}" and upload["with"]["path"] == "plan/"
    assert (
        '--name "plan-$WORKLOAD" --dir plan'
        in step_named(jobs["apply"], "fetch the plan reviewed in the pull request")["run"]
    )


# --- Azure Pipelines ------------------------------------------------------------------------------


def azure_schema_errors(text: str) -> list[str]:
    schema = json.loads(
        files("check_jsonschema.builtin_schemas.vendor").joinpath("azure-pipelines.json").read_text()
    )
    validator = validator_for(schema)(schema)
    errors = list(validator.iter_errors(expand_azure_pipeline(load_azure_pipeline(text))))
    if not errors:
        return []
    deepest = max(errors, key=lambda error: len(error.absolute_path))
    where = list(deepest.absolute_path)
    return [f"{len(errors)} error(s); best match: {best_match(errors).message[:300]}; deepest at {where}"]


def test_azure_pipeline_matches_microsofts_schema() -> None:
    source = files("check_jsonschema.builtin_schemas.vendor").joinpath("azure-pipelines.json").read_text()
    assert (
        '"$id": "https://github.com/Microsoft/azure-pipelines-vscode/blob/main/service-schema.json"' in source
    )
    assert azure_schema_errors(AZURE.read_text()) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("inlineScript: |", "inlineScrpt: |"),
        ("lockBehavior: sequential", "lockBehavior: sequentially"),
        ("- job: plan_${{ replace(workload, '-', '_') }}", "- job: plan ${{ workload }}"),
        ("task: PublishPipelineArtifact@1", "task: PublishPipelineArtifacts@1"),
    ],
    ids=["misspelt-input", "bad-lock-behavior", "bad-job-id", "unknown-task"],
)
def test_the_azure_schema_rejects_a_broken_pipeline(old: str, new: str) -> None:
    text = AZURE.read_text()
    assert old in text
    assert azure_schema_errors(text.replace(old, new, 1)) != []


def test_azure_pipeline_has_the_three_flows() -> None:
    pipeline = expand_azure_pipeline(load_azure_pipeline(AZURE.read_text()))
    assert pipeline["trigger"] == {"branches": {"include": ["main"]}}
    assert pipeline["schedules"][0]["always"] == "true" and pipeline["schedules"][0]["cron"]
    assert pipeline["lockBehavior"] == "sequential"
    stages = {stage["stage"]: stage for stage in pipeline["stages"]}
    assert list(stages) == ["Plan", "Apply", "Drift"]
    assert all(job["environment"] == "batchrun" for job in stages["Apply"]["jobs"])
    assert stages["Drift"]["dependsOn"] == [] and "'Schedule'" in stages["Drift"]["condition"]


# --- both: the workloads they name, and every batchrun command line -------------------------------


def workload_lists() -> list[list[str]]:
    workflow = github_workflow()
    lists = [job["strategy"]["matrix"]["workload"] for job in workflow["jobs"].values()]
    pipeline = load_azure_pipeline(AZURE.read_text())
    lists += [item["default"] for item in pipeline["parameters"] if item["name"] == "workloads"]
    return lists


def test_both_examples_name_the_same_workloads_and_each_manifest_is_valid() -> None:
    lists = workload_lists()
    assert len(lists) == 4 and all(names == lists[0] for names in lists)
    paths = [f"workloads/{name}.yaml" for name in lists[0]]
    checked = batchrun(["validate", *paths], env=dict(os.environ))
    assert checked.code == 0, checked.stdout + checked.stderr


def parse_with_batchrun_cli(argv: list[str]) -> None:
    """Raise click's error when ``batchrun ARGV`` would be refused for its arguments."""
    assert argv[0] == "batchrun"
    command = cli.get_command(click.Context(cli), argv[1])
    assert command is not None, f"no such command: batchrun {argv[1]}"
    command.make_context(argv[1], argv[2:])


def all_command_lines() -> dict[str, list[list[str]]]:
    return {
        GITHUB.name: [
            argv
            for script in shell_scripts_of_github_workflow(github_workflow())
            for argv in batchrun_command_lines(script)
        ],
        AZURE.name: [
            argv
            for script in shell_scripts_of_azure_pipeline(
                expand_azure_pipeline(load_azure_pipeline(AZURE.read_text()))
            )
            for argv in batchrun_command_lines(script)
        ],
    }


def test_every_batchrun_command_line_parses_with_the_cli() -> None:
    commands = all_command_lines()
    github, azure = commands[GITHUB.name], commands[AZURE.name]
    # plan (pull request), apply and wait (merge), plan (drift); Azure's jobs come once per workload
    assert [argv[1] for argv in github] == ["plan", "apply", "wait", "plan"]
    assert [argv[1] for argv in azure] == ["plan"] * 3 + ["apply", "wait"] * 3 + ["plan"] * 3
    for argv in github + azure:
        parse_with_batchrun_cli(argv)
    plan = github[0]
    assert {"--detailed-exitcode", "-out", "markdown", "--target"} <= set(plan)
    assert github[1][2] == "plan/plan.json"  # apply is given the saved plan, not the manifest
    with pytest.raises(click.UsageError):  # the parse is a real check
        parse_with_batchrun_cli(["batchrun", "plan", "m.yaml", "--detailed-exit-code"])


# --- the batchrun steps, run against the local target ---------------------------------------------

TASKS = """
job:
  id: {prefix}-job
  onAllTasksComplete: terminatejob
  tasks:
{tasks}"""
TASK = '    - id: {id}\n      commandLine: /bin/sh -c "echo {id}"\n'


def write_workload(folder: Path, prefix: str, task_ids: list[str]) -> Path:
    body = TASKS.format(prefix=prefix, tasks="".join(TASK.format(id=task) for task in task_ids))
    return manifest(folder / "workloads", prefix, body)


def run_step(
    script: str, cwd: Path, env: dict[str, str], shell: list[str]
) -> subprocess.CompletedProcess[str]:
    """A step's script as the CI runner runs it, aimed at the local target instead of Azure."""
    assert "--target azure" in script
    script = script.replace("--target azure", "--target local")
    return subprocess.run(
        [*shell, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def step_named(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(step for step in job.get("steps", []) if step.get("name", step.get("displayName")) == name)


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture
def workspace(tmp_path: Path, local_target_env: dict[str, str]) -> tuple[Path, dict[str, str], str]:
    folder = tmp_path / "repo"
    (folder / "workloads").mkdir(parents=True)
    prefix = f"ci-{uuid.uuid4().hex[:6]}"
    env = dict(
        local_target_env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", NO_COLOR="1"
    )
    assert shutil.which("batchrun", path=env["PATH"]), "the suite's environment has the batchrun command"
    return folder, env, prefix


def test_github_steps_plan_apply_and_check_drift_on_the_local_target(
    workspace: tuple[Path, dict[str, str], str],
) -> None:
    folder, base_env, prefix = workspace
    manifest_path = write_workload(folder, prefix, ["t1"])
    jobs = github_workflow()["jobs"]
    bash = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]  # GitHub's `shell: bash`

    def env_of(job: str) -> dict[str, str]:
        env = dict(
            base_env, GITHUB_OUTPUT=str(folder / f"{job}.out"), GITHUB_STEP_SUMMARY=str(folder / "summary")
        )
        for name, value in jobs[job]["env"].items():
            env[name] = value.replace("${{ matrix.workload }}", prefix)
        assert "${{" not in "".join(env.values())
        return env

    # pull request: plan with changes, saved for the merge
    plan = run_step(step_named(jobs["plan"], "plan")["run"], folder, env_of("plan"), bash)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert outputs(folder / "plan.out") == {"code": "2"}
    assert (folder / "plan" / "exitcode").read_text() == "2\n"
    markdown = (folder / "plan" / "plan.md").read_text()
    assert markdown.startswith(f"### batchrun plan: workload `{prefix}`") and len(markdown) < 65_536
    assert markdown in (folder / "summary").read_text()
    assert json.loads((folder / "plan" / "plan.json").read_text())

    # merge: the reviewed plan is applied, then the job is waited for
    apply_env = env_of("apply")
    applied = run_step(step_named(jobs["apply"], "apply the reviewed plan")["run"], folder, apply_env, bash)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: " in applied.stdout + applied.stderr and outputs(folder / "apply.out") == {
        "applied": "true"
    }
    waited = run_step(step_named(jobs["apply"], "wait for the job")["run"], folder, apply_env, bash)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "succeeded" in waited.stdout + waited.stderr

    # schedule: no drift, then an edit on main that was not applied
    drift = step_named(jobs["drift"], "drift check")["run"]
    checked = run_step(drift, folder, env_of("drift"), bash)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert outputs(folder / "drift.out") == {"code": "0"}
    write_workload(folder, prefix, ["t1", "t2"])
    checked = run_step(drift, folder, env_of("drift"), bash)
    assert checked.returncode == 0, checked.stderr  # the issue step takes it from here
    assert outputs(folder / "drift.out") == {"code": "2"} and "`t2`" in (folder / "drift.md").read_text()

    # a reviewed plan that went stale before the merge is refused, naming what moved
    plan = run_step(step_named(jobs["plan"], "plan")["run"], folder, env_of("plan"), bash)
    assert outputs(folder / "plan.out") == {"code": "2"}
    by_hand = batchrun(
        ["apply", str(manifest_path), "--auto-approve", "--target", "local"], env=base_env, cwd=folder
    )
    assert by_hand.code == 0, by_hand.stderr
    refused = run_step(step_named(jobs["apply"], "apply the reviewed plan")["run"], folder, apply_env, bash)
    assert refused.returncode == 1
    assert "changed since the plan was made" in refused.stderr and "nothing was applied" in refused.stderr


def test_azure_steps_plan_apply_and_check_drift_on_the_local_target(
    workspace: tuple[Path, dict[str, str], str],
) -> None:
    folder, base_env, prefix = workspace
    write_workload(folder, prefix, ["t1"])
    pipeline = expand_azure_pipeline(load_azure_pipeline(AZURE.read_text()), {"workloads": [prefix]})
    stages = {stage["stage"]: stage["jobs"][0] for stage in pipeline["stages"]}
    deploy = stages["Apply"]["strategy"]["runOnce"]["deploy"]
    pipeline_workspace = folder.parent / "pipeline"
    bash = ["bash"]  # AzureCLI@2 runs its inline script with bash; the script sets -euo pipefail itself

    def env_of(job: dict[str, Any]) -> dict[str, str]:
        return dict(base_env, **job["variables"], PIPELINE_WORKSPACE=str(pipeline_workspace))

    def inline(steps: list[dict[str, Any]], name: str) -> str:
        script: str = step_named({"steps": steps}, name)["inputs"]["inlineScript"]
        return script

    # main: plan with changes, saved as the artifact the Apply stage downloads
    planned = run_step(inline(stages["Plan"]["steps"], "plan"), folder, env_of(stages["Plan"]), bash)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert f"##vso[task.uploadsummary]{folder}/plan/{prefix}.md" in planned.stdout
    assert (folder / "plan" / "exitcode").read_text() == "2\n"
    assert (
        (folder / "plan" / f"{prefix}.md").read_text().startswith(f"### batchrun plan: workload `{prefix}`")
    )
    gate = step_named(stages["Plan"], "fail on an error or a blocked plan")["script"]
    assert subprocess.run(["bash", "-c", gate], cwd=folder, check=False).returncode == 0
    publish = step_named(stages["Plan"], "keep the saved plan for the Apply stage")["inputs"]
    download = next(step for step in deploy["steps"] if "download" in step)
    assert (
        download
        == {"download": "current", "artifact": publish["artifact"]}
        == {
            "download": "current",
            "artifact": f"plan-{prefix}",
        }
    )
    published = folder / publish["targetPath"].replace("$(Build.SourcesDirectory)/", "")
    shutil.copytree(published, pipeline_workspace / publish["artifact"])  # what Azure does

    # after approval: the saved plan is applied, then the job is waited for
    applied = run_step(
        inline(deploy["steps"], "apply the approved plan"), folder, env_of(stages["Apply"]), bash
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (
        "Apply complete: " in applied.stdout + applied.stderr
        and "succeeded" in applied.stdout + applied.stderr
    )

    # schedule: no drift, then an edit that was not applied fails the run
    drift = inline(stages["Drift"]["steps"], "drift check")
    checked = run_step(drift, folder, env_of(stages["Drift"]), bash)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"Live state matches workloads/{prefix}.yaml." in checked.stdout
    write_workload(folder, prefix, ["t1", "t2"])
    checked = run_step(drift, folder, env_of(stages["Drift"]), bash)
    assert checked.returncode == 1
    assert f"##vso[task.logissue type=error]{prefix}: live state differs" in checked.stdout
    assert "`t2`" in (folder / f"drift-{prefix}.md").read_text()
    assert re.search(r"Plan: \d+ to create, \d+ to update", (folder / f"drift-{prefix}.md").read_text())


def test_the_gitops_guide_names_the_files_and_the_checkers_as_pinned() -> None:
    guide = (REPO / "docs" / "gitops.md").read_text()
    section = guide[guide.index("## CI workflows") :]
    assert "(ci/github-actions.yml)" in section and "(ci/azure-pipelines.yml)" in section
    for package, version in NPM_CHECKERS.items():
        assert f"`{package}` {version}" in section
    pin = re.search(r'"check-jsonschema==([\d.]+);', (REPO / "pyproject.toml").read_text())
    assert pin and f"`check-jsonschema` {pin[1]}" in section
    assert "--detailed-exitcode -o markdown -out plan/plan.json" in section
    assert "--detailed-exitcode -o markdown -out plan/plan.json" in GITHUB.read_text()


def test_the_azure_pull_request_comment_script_is_python() -> None:
    pipeline = expand_azure_pipeline(load_azure_pipeline(AZURE.read_text()))
    plan_job = pipeline["stages"][0]["jobs"][0]
    script = step_named(plan_job, "comment on the pull request")["script"]
    heredoc = re.fullmatch(r"python3 - <<'EOF'\n(.*)\nEOF\n?", script, flags=re.DOTALL)
    assert heredoc is not None
    compile(heredoc[1], "comment.py", "exec")  # a syntax error here would only show on a pull request
    for variable in ("SYSTEM_ACCESSTOKEN", "SYSTEM_PULLREQUEST_PULLREQUESTID", "BUILD_REPOSITORY_ID"):
        assert f"os.environ['{variable}']" in heredoc[1] or f'os.environ["{variable}"]' in heredoc[1]
    assert step_named(plan_job, "comment on the pull request")["env"] == {
        "SYSTEM_ACCESSTOKEN": "$(System.AccessToken)"
    }
