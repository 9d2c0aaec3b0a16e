"""A task's identity: what it runs and everything it reads, so a result is current exactly when they are.

The identity has four parts, each a 16-hex-digit sha256 prefix, joined by ``-`` into the task's digest
(carried by the task as the environment setting ``BATCHRUN_TASK_DIGEST``, and kept in the workload's record
of results):

* ``definition``: the task's properties except its constraints (which change in place), the inputs it names
  and where they live, its outputs, and the job settings every task runs under (common environment settings
  and the job preparation task);
* ``inputs``: the Content-MD5 of each input blob the task receives (a whole input: all of its files; an input
  listed with ``paths``: just those files);
* ``packages``: the content digest of each application package the task can use (the pool's and its own);
* ``upstream``: the digests of the tasks it depends on, so a merge reruns when anything upstream reruns.

Comparing parts says why a task must run again; comparing whole digests says whether it must.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import msgspec

from batchrun.model import JobSpec, MadeTasks, TaskSpec, task_id_at, task_ids, tasks_with_dependencies
from batchrun.model.by_position import ByPosition
from batchrun.plan.actions import InputBinding
from batchrun.plan.bodies import canonical_json

PART_LENGTH = 16
PART_NAMES = ("definition", "inputs", "packages", "upstream")
NOTHING = "0" * PART_LENGTH  # the part of a task that reads no input, or depends on no task


class TaskIdentity(NamedTuple):
    definition: str
    inputs: str
    packages: str
    upstream: str

    @property
    def digest(self) -> str:
        return "-".join(self)

    def differing(self, other: TaskIdentity | None) -> list[str]:
        """Names of the parts that differ from ``other`` (every part when it is unknown)."""
        if other is None:
            return list(PART_NAMES)
        return [name for name, mine, theirs in zip(PART_NAMES, self, other, strict=True) if mine != theirs]


def parse_digest(value: str) -> TaskIdentity | None:
    """The parts of a digest, or None for a digest of another form (e.g. one written before parts existed)."""
    parts = value.split("-")
    if len(parts) != len(PART_NAMES) or any(len(part) != PART_LENGTH for part in parts):
        return None
    return TaskIdentity(*parts)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:PART_LENGTH]


class Contents(msgspec.Struct, frozen=True):
    """The content of what tasks read, as it will be once the plan is applied (from local files)."""

    inputs: Mapping[str, Mapping[str, str]]  # input name -> blob name -> base64 Content-MD5
    packages: Mapping[str, str]  # "<id>@<version>" (lower-cased id) -> content sha256
    default_versions: Mapping[str, str]  # lower-cased application id -> version made default by the manifest
    pool_packages: tuple[tuple[str, str], ...] = ()  # the pool's (applicationId, version) references


def package_refs(properties: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(ref.get("applicationId", "")), str(ref.get("version", "") or ""))
        for ref in properties.get("applicationPackageReferences") or ()
    ]


def _application_name(application_id: str) -> str:
    """``.../applications/tools`` (an ARM id) or ``tools`` -> ``tools``."""
    return application_id.rstrip("/").rsplit("/", 1)[-1].lower()


def package_digest(refs: Iterable[tuple[str, str]], contents: Contents) -> str:
    entries = []
    for application_id, version in refs:
        name = _application_name(application_id)
        resolved = version or contents.default_versions.get(name, "")
        entries.append([name, version, contents.packages.get(f"{name}@{resolved}", "")])
    return _hash(canonical_json(sorted(entries)))


def job_context(job: JobSpec) -> dict[str, Any]:
    """The job settings that change what every task does when it runs."""
    return {
        key: job.properties[key]
        for key in ("commonEnvironmentSettings", "jobPreparationTask")
        if key in job.properties
    }


class _DefinitionText:
    """The canonical JSON that a task's ``definition`` part hashes, for the tasks of one job.

    The document is ``{"inputs", "job", "outputs", "outputsContainer", "properties", "readsOutputs"}`` in
    canonical JSON: its keys sort, so the task's properties come last but for ``readsOutputs``. A task with
    no inputs and no outputs (most of a sweep) shares every other member with the job's other such tasks:
    that text is made once and only the properties are encoded per task (the same text as encoding the
    whole document, for a third of the time)."""

    def __init__(
        self, bindings: Mapping[str, InputBinding], outputs_container: str | None, context: Mapping[str, Any]
    ) -> None:
        self.bindings = bindings
        self.outputs_container = outputs_container
        self.job = canonical_json(context or None)
        self.plain_head = self._head([], [], None)

    def _head(self, inputs: list[Any], outputs: list[Any], container: str | None) -> str:
        return (
            f'{{"inputs":{canonical_json(inputs)},"job":{self.job},"outputs":{canonical_json(outputs)},'
            f'"outputsContainer":{canonical_json(container)},"properties":'
        )

    def of(self, task: TaskSpec) -> str:
        properties = task.properties
        if "constraints" in properties:  # they change in place: not part of what the task is
            properties = dict(properties)  # the same keys less one, in a third of a comprehension's time
            del properties["constraints"]
        if not task.inputs and not task.outputs and not task.output_inputs:
            return f'{self.plain_head}{canonical_json(properties)},"readsOutputs":null}}'
        inputs = [
            [
                name,
                self.bindings[name].container,
                self.bindings[name].prefix,
                list(task.input_paths.get(name, ())),
            ]
            if name in self.bindings
            else [name]
            for name in task.inputs
        ]
        outputs = [[o.pattern, o.path, o.upload_condition] for o in task.outputs]
        container = self.outputs_container if task.outputs or task.output_inputs else None
        reads = canonical_json(list(task.output_inputs) or None)
        head = self._head(inputs, outputs, container)
        return f'{head}{canonical_json(properties)},"readsOutputs":{reads}}}'


class _InputDigests:
    """Per-input digests, computed once per input however many tasks read it whole."""

    def __init__(self, bindings: Mapping[str, InputBinding], contents: Contents) -> None:
        self.bindings = bindings
        self.contents = contents
        self.whole: dict[str, str] = {}

    def files(self, name: str, paths: Sequence[str]) -> list[list[str]]:
        binding = self.bindings.get(name)
        blobs = self.contents.inputs.get(name, {})
        prefix = binding.prefix if binding is not None else ""
        return [[prefix + path, blobs.get(prefix + path, "")] for path in paths]

    def of(self, task: TaskSpec) -> str:
        if not task.inputs:
            return NOTHING
        parts: list[Any] = []
        for name in task.inputs:
            paths = task.input_paths.get(name)
            if paths:
                parts.append([name, self.files(name, paths)])
                continue
            if name not in self.whole:
                blobs = self.contents.inputs.get(name, {})
                self.whole[name] = _hash(canonical_json(sorted(blobs.items())))
            parts.append([name, self.whole[name]])
        return _hash(canonical_json(parts))


def task_key(task_id: str) -> str:
    """The lower-cased id tasks are keyed by: the id itself when it is lower-case already, so a plan of
    100,000 tasks does not hold a second copy of each id."""
    lowered = task_id.lower()
    return task_id if lowered == task_id else lowered


def dependencies(task: TaskSpec, numeric_ids: Mapping[int, str]) -> list[str]:
    """Lower-cased ids of the tasks ``task`` depends on (``taskIds`` and ``taskIdRanges``)."""
    spec = task.properties.get("dependsOn") or {}
    found = [str(item).lower() for item in spec.get("taskIds") or ()]
    for span in spec.get("taskIdRanges") or ():
        start, end = int(span["start"]), int(span["end"])
        if end - start < len(numeric_ids):
            found.extend(numeric_ids[n] for n in range(start, end + 1) if n in numeric_ids)
        else:
            found.extend(task_id for n, task_id in numeric_ids.items() if start <= n <= end)
    return found


def numeric_task_ids(ids: Iterable[str]) -> dict[int, str]:
    """Integer value -> lower-cased id for the task ids that are integers (what ``taskIdRanges`` match)."""
    return {int(task_id): task_id.lower() for task_id in ids if task_id.isdigit()}


def topological_order(tasks: Sequence[TaskSpec], upstream: Mapping[str, Sequence[str]]) -> Iterator[TaskSpec]:
    """Tasks with every dependency before its dependents (the manifest is checked for cycles)."""
    by_id = {task.id.lower(): task for task in tasks}
    done: set[str] = set()
    for root in tasks:
        key = root.id.lower()
        if key in done:
            continue
        stack: list[tuple[str, int]] = [(key, 0)]
        on_path = {key}
        while stack:
            current, position = stack[-1]
            deps = upstream.get(current, ())
            if position < len(deps):
                stack[-1] = (current, position + 1)
                nxt = deps[position]
                if nxt in by_id and nxt not in done and nxt not in on_path:
                    stack.append((nxt, 0))
                    on_path.add(nxt)
                continue
            stack.pop()
            on_path.discard(current)
            if current not in done:
                done.add(current)
                yield by_id[current]


_PACKED = PART_LENGTH * len(PART_NAMES) // 2  # bytes of a digest's hex digits


class TaskKeys(ByPosition[str]):
    """The lower-cased ids of a job's tasks, read from the tasks (which may be made as they are read)."""

    def __init__(self, tasks: Sequence[TaskSpec]) -> None:
        self._tasks = tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[str]:
        return map(task_key, task_ids(self._tasks))

    def _at(self, position: int) -> str:
        return task_key(task_id_at(self._tasks, position))


class TaskDigests(Mapping[str, str]):
    """Each task's digest by lower-cased id, in the manifest's order: read by position (:meth:`at`), as a
    plan decides tasks in that order, or by id through an index made when first asked. ``at`` unpacks a
    digest kept as the 32 bytes its hex digits spell, or makes it from the task (see :class:`TaskGraph`)."""

    def __init__(self, keys: Sequence[str], at: Callable[[int], str]) -> None:
        self._keys = keys
        self._at = at
        self._index: dict[str, int] | None = None

    def at(self, position: int) -> str:
        return self._at(position)

    def _position(self, key: object) -> int | None:
        if self._index is None:
            self._index = {known: position for position, known in enumerate(self._keys)}
        return self._index.get(key) if isinstance(key, str) else None

    def __getitem__(self, key: str) -> str:
        position = self._position(key)
        if position is None:
            raise KeyError(key)
        return self.at(position)

    def __contains__(self, key: object) -> bool:
        return self._position(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _packed(digest: str) -> bytes:
    return bytes.fromhex(digest.replace("-", ""))


def _unpacker(packed: bytearray) -> Callable[[int], str]:
    def at(position: int) -> str:
        start = position * _PACKED
        text = packed[start : start + _PACKED].hex()
        return "-".join(text[start : start + PART_LENGTH] for start in range(0, len(text), PART_LENGTH))

    return at


class _Digests:
    """Makes tasks' digests: what every task of a job shares is worked out once."""

    def __init__(
        self,
        job: JobSpec,
        bindings: Mapping[str, InputBinding],
        outputs_container: str | None,
        contents: Contents,
    ) -> None:
        self._definitions = _DefinitionText(bindings, outputs_container, job_context(job))
        self._inputs = _InputDigests(bindings, contents)
        self._contents = contents
        self._pool_packages = package_digest(contents.pool_packages, contents)

    def of(self, task: TaskSpec, up: str = NOTHING) -> str:
        """``up``: the upstream part (the hash of the digests of the tasks ``task`` waits for)."""
        own_packages = (
            package_refs(task.properties) if "applicationPackageReferences" in task.properties else ()
        )
        packages = (
            package_digest([*self._contents.pool_packages, *own_packages], self._contents)
            if own_packages
            else self._pool_packages
        )
        return f"{_hash(self._definitions.of(task))}-{self._inputs.of(task)}-{packages}-{up}"


class TaskGraph(msgspec.Struct, frozen=True):
    """Each task's digest and its upstream/downstream tasks, by lower-cased id; ``order`` is topological.

    Without dependencies no digest is kept: each is made from its task when the plan decides it
    (:meth:`digest_of`), as the task's page arrives. With, they are made first (a task's upstream part
    reads those it waits for) and kept packed. :meth:`identity` splits one into parts for a reason."""

    digests: TaskDigests
    upstream: Mapping[str, Sequence[str]]
    downstream: Mapping[str, Sequence[str]]
    order: Sequence[str]
    keys: Sequence[str]  # the lower-cased ids in the manifest's order (the job's ``tasks``)

    made_from: _Digests | None = None  # without dependencies: each digest is made from its task
    # With dependencies, the job's tasks as the graph read them, when they are made as they are read: the
    # plan reads each several times, so they are made once.
    made_tasks: Sequence[TaskSpec] | None = None

    def tasks_of(self, job: JobSpec) -> Sequence[TaskSpec]:
        """``job``'s tasks (this graph's job), made once where the graph made them."""
        return job.tasks if self.made_tasks is None else self.made_tasks

    def identity(self, key: str) -> TaskIdentity:
        return TaskIdentity(*self.digests[key].split("-"))

    def digest_of(self, task: TaskSpec, position: int) -> str:
        """The digest of ``task``, at ``position`` in the job's tasks."""
        return self.made_from.of(task) if self.made_from is not None else self.digests.at(position)


def task_graph(
    job: JobSpec,
    bindings: Mapping[str, InputBinding],
    outputs_container: str | None,
    contents: Contents,
) -> TaskGraph:
    # A job's tasks may be made as they are read (a manifest's, a TaskFactory): the ones that wait are found
    # without making the others when their source knows them; the integer ids (what taskIdRanges match)
    # are needed only with some.
    waiting = tasks_with_dependencies(job.tasks)
    numeric = numeric_task_ids(task_ids(job.tasks)) if waiting else {}
    upstream: dict[str, list[str]] = {}
    downstream: dict[str, list[str]] = {}
    for task in waiting:
        deps = dependencies(task, numeric)
        if deps:
            key = task.id.lower()
            upstream[key] = deps
            for dep in deps:
                downstream.setdefault(dep, []).append(key)
    digests = _Digests(job, bindings, outputs_container, contents)
    if not upstream:
        # Nothing kept per task: keys and digests are made from the tasks when read. A digest is made only
        # where a plan compares it (a task live or recorded) and for the body of a task added, by the
        # thread that sends it: a first apply makes none before its pool is created.
        tasks = job.tasks
        keys: Sequence[str] = TaskKeys(tasks)
        found = TaskDigests(keys, lambda position: digests.of(tasks[position]))
        return TaskGraph(found, upstream, downstream, keys, keys, digests)
    # With dependencies every task is read several times below: made once, not once per read.
    every: Sequence[TaskSpec] = tuple(job.tasks) if isinstance(job.tasks, MadeTasks) else job.tasks
    made: dict[str, str] = {}
    order: list[str] = []
    for task in topological_order(every, upstream):
        key = task_key(task.id)
        needs = upstream.get(key)
        made[key] = digests.of(
            task, _hash(",".join(made[d] for d in needs if d in made)) if needs else NOTHING
        )
        order.append(key)
    keys = tuple(task_key(task.id) for task in every)
    packed = bytearray()
    for key in keys:
        packed += _packed(made[key])
    held = every if every is not job.tasks else None
    return TaskGraph(
        TaskDigests(keys, _unpacker(packed)), upstream, downstream, tuple(order), keys, None, held
    )
