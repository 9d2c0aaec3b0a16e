"""Several workloads planned and applied as one: whether they can live together, and in which order.

Workloads meet through pools: a manifest without a pool of its own may run its job on another workload's pool
(``job.poolInfo.poolId``). Applying puts that pool first; destroying removes the job before the pool. Each
workload still owns only what it declares, so two manifests may not declare the same workload name, pool or
job id. Pure: works on expanded workloads only.
"""

from __future__ import annotations

from collections.abc import Sequence

from batchrun.errors import Diagnostic, ManifestError
from batchrun.model import Workload


def _job_pools(workload: Workload) -> set[str]:
    """The pools the workload's jobs run on (lower-cased)."""
    found = ((job.properties.get("poolInfo") or {}).get("poolId") for job in workload.jobs)
    return {str(pool_id).lower() for pool_id in found if pool_id}


_CLASH_HINTS = {
    "workload": "give each manifest its own metadata.name",
    "pool": "rename the pool in one of the manifests, or drop it there and run that manifest's job on the "
    "other workload's pool with job.poolInfo.poolId",
    "job": "rename the job in one of the manifests",
}
_CLASH_PATHS = {"workload": ("metadata", "name"), "pool": ("pool", "id"), "job": ("job", "id")}


def _clash(kind: str, value: str, first: Workload, second: Workload) -> Diagnostic:
    return Diagnostic(
        file=str(second.manifest_path),
        line=0,
        column=0,
        message=f"{kind} {value!r} is also declared by {first.manifest_path} (workload {first.name!r}); "
        "each workload owns what it declares, so two cannot declare the same one",
        path=".".join(_CLASH_PATHS[kind]),
        hint=_CLASH_HINTS[kind],
    )


def check_together(workloads: Sequence[Workload]) -> None:
    """ManifestError when two workloads declare the same name, pool or job (ids are case-insensitive)."""
    problems: list[Diagnostic] = []
    owners: dict[tuple[str, str], Workload] = {}
    for workload in workloads:
        keys = [("workload", workload.name)]
        if workload.pool is not None:
            keys.append(("pool", workload.pool.id.lower()))
        keys.extend(("job", job.id.lower()) for job in workload.jobs)
        for key in keys:
            first = owners.setdefault(key, workload)
            if first is not workload:
                problems.append(_clash(key[0], key[1], first, workload))
    if problems:
        raise ManifestError(problems)


def apply_order(workloads: Sequence[Workload]) -> tuple[Workload, ...]:
    """The workloads with each pool's owner before the workloads whose jobs run on another's pool; otherwise
    as given. (A workload that runs its job on another's pool has no pool of its own, so nothing runs on its
    pool: one pass of this stable partition is a complete order.)"""
    owned_pools = {w.pool.id.lower() for w in workloads if w.pool is not None}

    def borrows(workload: Workload) -> bool:
        return workload.pool is None and bool(_job_pools(workload) & owned_pools)

    return tuple(w for w in workloads if not borrows(w)) + tuple(w for w in workloads if borrows(w))


def destroy_order(workloads: Sequence[Workload]) -> tuple[Workload, ...]:
    """Jobs before the pools they run on: the apply order reversed."""
    return tuple(reversed(apply_order(workloads)))
