"""Write-only fields: never compared with a GET, changes seen through a salted digest, never shown.

Batch accepts these fields on create and update and never returns them (REC: a pool created with
``userAccounts[].password`` comes back without it). Comparing them with the live body would plan a change on
every run, so they are left out of the comparison (:func:`batchrun.plan.defaults.normalise` drops them), and
batchrun records, in the resource's metadata ``batchrun.secrets``, one PBKDF2-SHA256 digest per write-only
value, salted per workload and resource. The next plan hashes the manifest's values with the recorded salt: a
different digest is a change, shown as ``(sensitive)`` and never as the value.

Which fields (Batch REST 2025-06-01 and azure-batch 15.1 models): ``UserAccount.password``,
``LinuxUserConfiguration.sshPrivateKey``, ``ContainerRegistryReference.password`` (pool container
configuration and every task's ``containerSettings.registry``),
``AzureBlobFileSystemConfiguration.accountKey`` and ``.sasKey``, ``AzureFileShareConfiguration.accountKey``,
``CifsMountConfiguration.password``. In the REST bodies these are exactly the keys named in
:data:`SECRET_KEYS`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from batchrun.model.write_only import MASK as MASK
from batchrun.model.write_only import SECRET_KEYS as SECRET_KEYS
from batchrun.model.write_only import mask as mask
from batchrun.plan.actions import FieldChange

SECRETS_KEY = "batchrun.secrets"
ITERATIONS = 100_000
DIGEST_CHARS = 32  # 128 bits of each PBKDF2 output: plenty to tell values apart, shorter metadata
ALGORITHM = f"pbkdf2-sha256-{ITERATIONS}"


def secret_values(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every write-only value in a REST body, with its path (``userAccounts[0].password``)."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else str(key)
            if key in SECRET_KEYS and isinstance(child, str):
                yield child_path, child
            else:
                yield from secret_values(child, child_path)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index, item in enumerate(value):
            yield from secret_values(item, f"{path}[{index}]")


def _digest(value: str, salt: str) -> str:
    raw = hashlib.pbkdf2_hmac("sha256", value.encode(), bytes.fromhex(salt), ITERATIONS)
    return raw.hex()[:DIGEST_CHARS]


def secrets_record(body: Mapping[str, Any], salt: str) -> str:
    """The ``batchrun.secrets`` metadata value for ``body`` ("" when it holds no write-only field).

    ``salt`` is hex, one per workload and resource (see :meth:`batchrun.plan.bodies.Ownership.salt_hex`):
    equal passwords on two resources do not have equal digests, and the same manifest planned twice gives
    the same body (saved plans compare equal)."""
    values = dict(secret_values({k: v for k, v in body.items() if k != "metadata"}))
    if not values:
        return ""
    digests = {path: _digest(value, salt) for path, value in sorted(values.items())}
    return json.dumps({"alg": ALGORITHM, "salt": salt, "values": digests}, separators=(",", ":"))


def _parse(record: str) -> tuple[str, dict[str, str]] | None:
    try:
        data = json.loads(record)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("alg") != ALGORITHM or not isinstance(data.get("values"), dict):
        return None
    salt = data.get("salt")
    if not isinstance(salt, str):
        return None
    try:
        bytes.fromhex(salt)
    except ValueError:
        return None
    return salt, {str(k): str(v) for k, v in data["values"].items()}


def secret_changes(body: Mapping[str, Any], record: str | None) -> list[FieldChange]:
    """Write-only values of ``body`` that differ from what batchrun recorded (never their values).

    ``record`` is the live ``batchrun.secrets`` value (None or "" when there is none): then every
    write-only value the manifest sets counts as changed, because nothing shows what the live one is."""
    values = dict(secret_values({k: v for k, v in body.items() if k != "metadata"}))
    parsed = _parse(record) if record else None
    recorded: dict[str, str] = parsed[1] if parsed else {}
    changes: list[FieldChange] = []
    for path in sorted(set(values) | set(recorded)):
        if path not in values:
            changes.append(FieldChange(path, MASK, None))
        elif parsed is None or path not in recorded:
            changes.append(FieldChange(path, "(not recorded)", MASK))
        elif _digest(values[path], parsed[0]) != recorded[path]:
            changes.append(FieldChange(path, MASK, f"{MASK}, changed"))
    return changes


SHOWN = frozenset({MASK, f"{MASK}, changed", "(not recorded)"})


def masked_field(change: FieldChange) -> FieldChange:
    """A field change safe to show: write-only values inside ``before``/``after`` masked."""
    if change.path.rsplit(".", 1)[-1] in SECRET_KEYS:
        before = change.before if change.before is None or change.before in SHOWN else MASK
        after = change.after if change.after is None or change.after in SHOWN else MASK
        return FieldChange(change.path, before, after, change.forces_replacement)
    return FieldChange(change.path, mask(change.before), mask(change.after), change.forces_replacement)


def recorded_secret_changes(body: Mapping[str, Any], live_metadata: Mapping[str, str]) -> list[FieldChange]:
    """Write-only values that changed since batchrun recorded them, marked as forcing replacement (on a job
    they sit in create-only task definitions). Nothing without a record: a job written before batchrun kept
    digests is not replaced for that alone."""
    record = live_metadata.get(SECRETS_KEY)
    if not record:
        return []
    return [FieldChange(c.path, c.before, c.after, True) for c in secret_changes(body, record)]
