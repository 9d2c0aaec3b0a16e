"""One target, its SDK clients and their HTTP connections, shared by several plans, applies and destroys.

Each of ``batchrun.plan``, ``batchrun.apply`` and ``batchrun.destroy`` resolves its target and builds its
clients anew: new HTTP connections (a TLS handshake each, on Azure) and, with Entra ID, new tokens. A program
that makes several calls (a service, a notebook, a test harness) can make them through one connection
instead::

    import batchrun

    with batchrun.connect() as batch:
        plan = batch.plan("workloads/hello.yaml")
        if plan.has_changes:
            batch.apply(plan)

Only the target and the clients are shared: every call reads live state afresh, and every apply takes the
workload's lock, as the functions do. The target is the one resolved when the connection was made (a local
target restarted since may listen elsewhere: connect again). Calls may be made from one thread at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

from batchrun.api import (
    Announce,
    ManifestSource,
    Session,
    apply_with,
    destroy_with,
    load,
    open_session,
    plan_with,
    quiet,
)
from batchrun.apply.hooks import ApplyHooks
from batchrun.errors import ConfigurationError
from batchrun.plan.actions import Plan
from batchrun.plan.decide_common import PlanOptions
from batchrun.target import Target


class Connection:
    """What :func:`connect` returns: ``plan``, ``apply`` and ``destroy`` with the keyword arguments of the
    functions of the same names, less ``target`` and ``announce``; a context manager that closes it."""

    def __init__(self, target: str | Target | None = None, announce: Announce = quiet) -> None:
        self._stack = ExitStack()
        self._session: Session | None = self._stack.enter_context(open_session(target, announce))

    @property
    def target(self) -> Target:
        """The target resolved when the connection was made (its ``describe()`` names it, without secrets)."""
        return self._open().target

    def _open(self) -> Session:
        if self._session is None:
            raise ConfigurationError(
                "this batchrun connection is closed; make another with batchrun.connect()."
            )
        return self._session

    def plan(
        self,
        manifest: ManifestSource,
        *,
        variables: Mapping[str, str] | None = None,
        var_files: Sequence[Path] = (),
        prune: bool = False,
        adopt: bool = False,
        confirm_replace: bool = False,
        rerun_failed: bool = False,
        rerun: Sequence[str] = (),
    ) -> Plan:
        """The plan that would make live state match the manifest (see :func:`batchrun.plan`)."""
        session = self._open()
        workload = load(manifest, variables, var_files)
        options = PlanOptions(prune, adopt, confirm_replace, rerun_failed, tuple(rerun))
        return plan_with(session, workload, options)

    def apply(
        self,
        manifest_or_plan: ManifestSource | Plan,
        *,
        variables: Mapping[str, str] | None = None,
        var_files: Sequence[Path] = (),
        prune: bool = False,
        adopt: bool = False,
        confirm_replace: bool = False,
        rerun_failed: bool = False,
        rerun: Sequence[str] = (),
        hooks: ApplyHooks | None = None,
    ) -> Plan:
        """Apply a plan, or plan a manifest and apply it (see :func:`batchrun.apply`); returns the applied
        plan."""
        options = PlanOptions(prune, adopt, confirm_replace, rerun_failed, tuple(rerun))
        return apply_with(self._open(), manifest_or_plan, variables, var_files, options, hooks)

    def destroy(
        self,
        manifest: ManifestSource,
        *,
        variables: Mapping[str, str] | None = None,
        var_files: Sequence[Path] = (),
        containers: bool = False,
        confirm_replace: bool = False,
        hooks: ApplyHooks | None = None,
    ) -> Plan:
        """Delete the job and pool the manifest owns, and its containers when asked (see
        :func:`batchrun.destroy`); returns what was done."""
        session = self._open()
        return destroy_with(session, load(manifest, variables, var_files), containers, confirm_replace, hooks)

    def close(self) -> None:
        """Close the clients and their connections; later calls raise ConfigurationError. Closing twice is
        harmless."""
        self._session = None
        self._stack.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def connect(target: str | Target | None = None, announce: Announce = quiet) -> Connection:
    """A :class:`Connection` to ``target`` (resolved as the functions resolve it: local by default, Azure when
    configured, or a :class:`batchrun.target.Target`); close it, or use it in a ``with`` block."""
    return Connection(target, announce)
