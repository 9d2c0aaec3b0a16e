"""``plan -out FILE`` and ``apply FILE``: the plan reviewed is the plan applied, or nothing is.

:func:`save_plan` makes the plan as ``plan`` does and writes it with what it was made from
(:mod:`batchrun.plan.saved`). :func:`check_saved_plan` re-reads live state and makes the plan again from the
manifest (loaded again by :func:`load_planned_manifest`) with the saved ownership marks; it returns that plan
only when nothing moved and its operations equal the saved ones, else raises
:class:`~batchrun.errors.PlanError` naming what moved. The plan returned is the saved plan with its secrets
(masked in the file) as the manifest gives them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from batchrun.api import Session, load, plan_with
from batchrun.errors import PlanError
from batchrun.model import Workload
from batchrun.plan.actions import Plan
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.fingerprints import Fingerprints, fingerprints, what_moved
from batchrun.plan.live import LiveState, PreparedInput, PreparedPackage
from batchrun.plan.saved import (
    ManifestRef,
    SavedPlan,
    dumps,
    dumps_set,
    is_saved_plan,
    loads_all,
    plan_differences,
    sanitised_plan,
)


class _Observer:
    """Keeps the fingerprints of what ``plan_with`` read."""

    def __init__(self, workload: Workload) -> None:
        self.digest = workload.digest
        self.prints: Fingerprints | None = None

    def __call__(
        self, live: LiveState, inputs: Sequence[PreparedInput], packages: Sequence[PreparedPackage]
    ) -> None:
        self.prints = fingerprints(self.digest, live, inputs, packages)


def saved_plan(
    session: Session, workload: Workload, options: PlanOptions, manifest: ManifestRef
) -> tuple[Plan, SavedPlan]:
    """Make the plan as ``plan`` does, with what it was made from; returns the plan and what to save."""
    from batchrun.azure.ownership import ownership_of

    ownership = ownership_of(workload)
    observed = _Observer(workload)
    # Every file hashed: a saved plan is checked by content, from any checkout (stat data moves with one).
    plan = plan_with(session, workload, options, ownership, observed, hash_every_file=True)
    assert observed.prints is not None
    saved = SavedPlan(
        manifest=manifest,
        options=options,
        ownership=ownership,
        fingerprints=observed.prints,
        plan=sanitised_plan(plan, workload.manifest_path.resolve().parent),
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return plan, saved


def write_saved_plans(saved: Sequence[SavedPlan], out: Path) -> None:
    """One plan as a saved plan, several as a set (applied in the order given)."""
    text = dumps(saved[0]) if len(saved) == 1 else dumps_set(saved)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise PlanError(
            f"cannot write the plan to {out}: {error.strerror or error}; choose another path"
        ) from error


def save_plan(
    session: Session,
    workload: Workload,
    options: PlanOptions,
    manifest: ManifestRef,
    out: Path,
) -> Plan:
    """Make the plan and write it to ``out`` with what it was made from; returns the plan."""
    plan, saved = saved_plan(session, workload, options, manifest)
    write_saved_plans([saved], out)
    return plan


def manifest_ref(
    path: Path, variables: Mapping[str, str], var_files: Sequence[Path], max_tasks: int
) -> ManifestRef:
    """How the manifest was loaded, without the variables' values (they may be secret)."""
    return ManifestRef(str(path), tuple(str(p) for p in var_files), tuple(sorted(variables)), max_tasks)


def read_saved_plans(path: Path) -> tuple[SavedPlan, ...] | None:
    """The saved plans in ``path`` (one, or a set), or None when ``path`` is not a saved plan (a manifest)."""
    try:
        with path.open("r", encoding="utf-8") as handle:
            start = handle.read(400)
    except (OSError, UnicodeDecodeError):
        return None  # the manifest loader reports it
    if not is_saved_plan(start):
        return None
    return loads_all(path.read_text(encoding="utf-8"), str(path))


def read_saved_plan(path: Path) -> SavedPlan | None:
    """The saved plan in ``path``, or None when ``path`` is not one (a manifest); a set is refused."""
    saved = read_saved_plans(path)
    if saved is not None and len(saved) != 1:
        raise PlanError(f"{path} holds the plans of {len(saved)} workloads; apply it with `batchrun apply`")
    return saved[0] if saved else None


def load_planned_manifest(
    saved: SavedPlan, variables: Mapping[str, str], var_files: Sequence[Path]
) -> Workload:
    """The manifest the plan was made from, with the same variable flags (their values given again)."""
    missing = sorted(set(saved.manifest.var_names) - set(variables))
    if missing:
        flags = " ".join(f"--var {name}=..." for name in missing)
        raise PlanError(
            f"the plan was made with {flags}; pass the same --var flags to apply (the plan file keeps their "
            "names, not their values)."
        )
    files = tuple(var_files) or tuple(Path(p) for p in saved.manifest.var_files)
    return load(Path(saved.manifest.path), variables, files, saved.manifest.max_tasks)


def check_saved_plan(
    session: Session, saved: SavedPlan, workload: Workload, options: PlanOptions | None = None
) -> Plan:
    """The plan to carry out: the saved one, after checking that nothing it was made from moved.

    ``options`` (the flags given to apply) must be the defaults or the saved plan's own."""
    if options is not None and options not in (PlanOptions(), saved.options):
        raise PlanError(
            "a saved plan is applied with the options it was made with; leave out --prune, --adopt, "
            "--confirm-replace, --rerun-failed, --rerun and --reboot-nodes (or plan again with them)."
        )
    made_against, target_now = saved.plan.get("target"), session.target.describe()
    if made_against != target_now:
        raise PlanError(
            f"this plan was made against '{made_against}' but the target now is '{target_now}', so "
            "nothing was applied; make the plan again against this target."
        )
    observed = _Observer(workload)
    plan = plan_with(session, workload, saved.options, saved.ownership, observed, hash_every_file=True)
    assert observed.prints is not None
    moved = what_moved(saved.fingerprints, observed.prints)
    if not moved:
        now = sanitised_plan(plan, workload.manifest_path.resolve().parent)
        moved = [f"the plan made now differs: {line}" for line in plan_differences(saved.plan, now)]
    if moved:
        shown = moved[:20] + ([f"... and {len(moved) - 20} more"] if len(moved) > 20 else [])
        raise PlanError(
            "live state or the manifest changed since the plan was made, so nothing was applied:\n  "
            + "\n  ".join(shown)
            + "\nMake the plan again (`batchrun plan MANIFEST -out FILE`), review it, and apply that."
        )
    return plan


__all__ = [
    "check_saved_plan",
    "load_planned_manifest",
    "manifest_ref",
    "read_saved_plan",
    "read_saved_plans",
    "save_plan",
    "saved_plan",
    "write_saved_plans",
]
