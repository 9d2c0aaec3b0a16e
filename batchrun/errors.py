"""The one error hierarchy of batchrun.

Every error a user can meet derives from :class:`BatchrunError`. Each carries a message that says where the
problem is, what is wrong and how to fix it, and an ``exit_code`` the CLI returns. The CLI prints
``str(error)`` and never a traceback for these. Messages must never contain secrets (keys, SAS signatures,
tokens): build them from names and addresses, and pass anything that might hold a URL through
:func:`batchrun.redact.redact`.

    BatchrunError                   exit 1
    ├── ManifestError               the manifest is malformed or invalid (carries every Diagnostic at once)
    ├── ConfigurationError          target settings (environment variables, flags) are missing or inconsistent
    ├── LocalTargetError            the embedded local target cannot be started, stopped or reached
    ├── TargetError                 the Batch account or storage answered with an error batchrun cannot handle
    │   ├── AuthenticationError     credentials were rejected
    │   └── TargetUnreachableError  the endpoint cannot be reached or stopped answering mid-request
    ├── PlanError                   live state cannot be reconciled (e.g. an unowned resource without --adopt)
    ├── ApplyError                  a step of an apply failed; the message names the resource address
    └── AbortedError                the user declined a confirmation (nothing changed after that point)
"""

from __future__ import annotations

import msgspec


class Diagnostic(msgspec.Struct, frozen=True):
    """One problem found in a manifest: where, what, and how to fix it."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    message: str  # what is wrong
    path: str = ""  # dotted path in the document, e.g. "job.tasks[2].commandLine"
    hint: str = ""  # how to fix it

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        text = f"{where}: {self.message}"
        if self.path:
            text += f" (at {self.path})"
        if self.hint:
            text += f"; {self.hint}"
        return text


class BatchrunError(Exception):
    """Base of every error batchrun reports to a user."""

    exit_code: int = 1


class ManifestError(BatchrunError):
    """A manifest could not be loaded or failed validation. Holds every problem found, sorted by position."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.line, d.column, d.message))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class ConfigurationError(BatchrunError):
    """Target configuration (environment variables or flags) is missing or inconsistent."""


class LocalTargetError(BatchrunError):
    """The embedded local target (emulator + Azurite) cannot be started, stopped or reached."""


class TargetError(BatchrunError):
    """Azure Batch or Azure Storage returned an error that batchrun cannot resolve by itself."""


class AuthenticationError(TargetError):
    """The target rejected batchrun's credentials."""


class TargetUnreachableError(TargetError):
    """The target could not be reached, or stopped answering mid-request (not an answer it gave)."""


class PlanError(BatchrunError):
    """Live state cannot be reconciled with the manifest as asked."""


class ApplyError(BatchrunError):
    """A step of an apply failed. The message names the resource address and what to do next."""


class AbortedError(BatchrunError):
    """The user declined a confirmation prompt."""
