"""Variables, substitution and task factories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from batchrun.manifest import load_workload
from batchrun.model import TaskOutput, Workload
from tests.manifest.conftest import HEADER, POOL, find, problems_of


def job_of(workload: Workload) -> dict[str, dict[str, object]]:
    assert workload.job is not None
    return {task.id: dict(task.properties) for task in workload.job.tasks}


def test_variables_formats_literal_dollars_and_types(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + "variables: {n: 3, name: world, slots: 2, flag: true}\n"
        + POOL
        + "job:\n  id: j\n  priority: ${n}\n  tasks:\n"
        + "    - id: t\n"
        + "      commandLine: echo ${name} ${n:04d} $$HOME $${HOME} ${flag} $PATH\n"
        + "      requiredSlots: ${slots}\n"
        + "      environmentSettings: [{name: N, value: '${n}'}]\n"
    )
    workload = load_workload(path)
    assert workload.job is not None
    assert workload.job.properties["priority"] == 3  # a lone ${n} keeps the number
    task = job_of(workload)["t"]
    assert task["commandLine"] == "echo world 0003 $HOME ${HOME} true $PATH"
    assert task["requiredSlots"] == 2
    assert task["environmentSettings"] == [{"name": "N", "value": "3"}]  # text field: written as text


def test_unknown_name_suggests_dollar_dollar(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + "variables: {count: 1}\n"
        + POOL
        + "job:\n  id: j\n  tasks:\n    - {id: t, commandLine: 'echo ${HOME} ${cuont}'}\n"
    )
    diagnostic = find(problems_of(path), "unknown name 'HOME'")
    assert diagnostic.line == 12 and "$${HOME}" in diagnostic.hint
    assert "did you mean 'count'?" in find(problems_of(path), "unknown name 'cuont'").hint


def test_bad_reference_and_bad_format(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + "variables: {word: abc}\n"
        + POOL
        + "job:\n  id: j\n  tasks:\n    - {id: t, commandLine: 'echo ${word:03d} ${a b} ${open'}\n"
    )
    diagnostics = problems_of(path)
    assert find(diagnostics, "cannot format 'abc' with ':03d'").line == 12
    find(diagnostics, "'${a b}' is not a valid reference")


def test_var_overrides_take_the_declared_type(write: Callable[[str], Path], tmp_path: Path) -> None:
    path = write(
        HEADER
        + "variables: {n: 2, who: a}\n"
        + POOL
        + "job:\n  id: j\n  tasks:\n"
        + "    - {id: 't-${i}', foreach: {i: {range: [1, '${n}']}}, commandLine: 'echo ${who}'}\n"
    )
    var_file = tmp_path / "vars.yaml"
    var_file.write_text("n: 4\nwho: file\n")
    workload = load_workload(path, {"who": "cli"}, [var_file])
    tasks = job_of(workload)
    assert sorted(tasks) == ["t-1", "t-2", "t-3", "t-4"]
    assert tasks["t-1"]["commandLine"] == "echo cli"
    assert sorted(job_of(load_workload(path, {"n": "3"}))) == ["t-1", "t-2", "t-3"]
    assert "expected an integer" in find(problems_of(path, variables={"n": "many"}), "n='many'").message
    assert "did you mean 'who'?" in find(problems_of(path, variables={"whom": "x"}), "'whom'").hint
    var_file.write_text("nn: 4\n")
    diagnostic = find(problems_of(path, var_files=[var_file]), "'nn' is not a variable")
    assert diagnostic.file == str(var_file) and diagnostic.line == 1


def test_product_zip_and_step(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + "job:\n  id: j\n  tasks:\n"
        + "    - {id: 'p-${a}-${b}', foreach: {a: [x, y], b: {range: [10, 6, -2]}}, commandLine: x}\n"
        + "    - {id: 'z-${a}-${b}', foreach: {a: [x, y], b: [1, 2]}, zip: true, commandLine: x}\n"
    )
    ids = list(job_of(load_workload(path)))
    assert ids == ["p-x-10", "p-x-8", "p-x-6", "p-y-10", "p-y-8", "p-y-6", "z-x-1", "z-y-2"]


def test_zip_needs_equal_lengths_and_ranges_must_not_be_empty(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + "job:\n  id: j\n  tasks:\n"
        + "    - {id: 'z-${a}', foreach: {a: [x, y], b: [1]}, zip: true, commandLine: x}\n"
        + "    - {id: 'r-${a}', foreach: {a: {range: [5, 1]}}, commandLine: x}\n"
    )
    diagnostics = problems_of(path)
    assert find(diagnostics, "zipped axes have different lengths (a: 2, b: 1)").line == 11
    assert "negative step" in find(diagnostics, "range [5, 1] with step 1 is empty").hint


def test_files_axis_gives_paths_and_derived_names(write: Callable[[str], Path], tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "b.csv").write_text("b")
    (tmp_path / "in" / "sub" / "a.tar.gz").write_text("a")
    path = write(
        HEADER
        + "storage:\n  inputs: [{name: raw, source: in, container: raw-in, prefix: up}]\n"
        + "  outputs: {container: o-ut}\n"
        + POOL
        + "job:\n  id: j\n  tasks:\n"
        + "    - id: 'f-${f.index}'\n      foreach: {f: {files: raw}}\n      inputs: [raw]\n"
        + "      commandLine: 'x ${f} ${f.name} ${f.stem} ${f.suffix} ${f.parent} ${f.blob}'\n"
        + "      outputs: [{pattern: '${f.stem}.out'}, {pattern: '*.log', uploadCondition: taskfailure}]\n"
    )
    workload = load_workload(path)
    assert workload.job is not None
    first, second = workload.job.tasks
    assert first.properties["commandLine"] == "x b.csv b.csv b .csv  up/b.csv"
    assert second.properties["commandLine"] == "x sub/a.tar.gz a.tar.gz a.tar .gz sub up/sub/a.tar.gz"
    assert first.inputs == ("raw",)
    assert first.outputs == (
        TaskOutput("b.out", "j/f-0/b.out", "taskcompletion"),
        TaskOutput("*.log", "j/f-0/", "taskfailure"),
    )
    assert workload.inputs[0].prefix == "up/"


def test_files_axis_errors(write: Callable[[str], Path], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    path = write(
        HEADER
        + "storage:\n  inputs: [{name: e, source: empty, container: e-in}]\n"
        + POOL
        + "job:\n  id: j\n  tasks:\n"
        + "    - {id: 'a-${f.index}', foreach: {f: {files: e}}, commandLine: x}\n"
        + "    - {id: 'b-${f.index}', foreach: {f: {files: nope}}, commandLine: x}\n"
        + "    - {id: 'c-${i.size}', foreach: {i: [1]}, commandLine: x}\n"
    )
    diagnostics = problems_of(path)
    assert find(diagnostics, "storage input 'e' has no files").line == 13
    assert find(diagnostics, "no storage input named 'nope'").line == 14
    find(diagnostics, "'i' has no attribute 'size'")


def test_package_short_form_merges_into_references(write: Callable[[str], Path], tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    path = write(
        HEADER
        + "packages:\n  - {id: tools, version: '2.0', source: tools}\n"
        + POOL
        + "  packages: [tools]\n  applicationPackageReferences: [{applicationId: other}]\n"
        + "job:\n  id: j\n  tasks:\n    - {id: t, commandLine: x, packages: [tools]}\n"
    )
    workload = load_workload(path)
    assert workload.pool is not None and workload.job is not None
    assert workload.pool.properties["applicationPackageReferences"] == [
        {"applicationId": "other"},
        {"applicationId": "tools", "version": "2.0"},
    ]
    assert "packages" not in workload.pool.properties
    assert workload.job.properties["poolInfo"] == {"poolId": "p1"}
    assert workload.job.tasks[0].properties["applicationPackageReferences"] == [
        {"applicationId": "tools", "version": "2.0"}
    ]
    assert "id" not in workload.job.tasks[0].properties


def test_digest_is_stable_and_tracks_content(write: Callable[[str], Path]) -> None:
    text = HEADER + POOL + "job:\n  id: j\n  tasks:\n    - {id: t, commandLine: x}\n"
    first = load_workload(write(text))
    again = load_workload(
        write(text.replace("id: t,", "commandLine: x, id: t,").replace(", commandLine: x}", "}"))
    )
    changed = load_workload(write(text.replace("commandLine: x", "commandLine: y")))
    assert first.digest == again.digest
    assert first.digest != changed.digest
    assert len(first.digest) == 64
