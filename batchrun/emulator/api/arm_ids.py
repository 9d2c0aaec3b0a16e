"""Checks of the ARM resource ids a pool may name: subnets, custom and gallery images.

Batch refuses a malformed id, or a subnet outside the account's subscription, with 400 InvalidPropertyValue
naming the property (recorded: ``test_batch_create_pools``). The local target has no virtual networks or
image galleries: a well-formed id in the account's subscription is stored and returned, with no effect.
"""

from __future__ import annotations

import re
from typing import Any

from batchrun.emulator.errors import invalid_value

_SEGMENT = r"[^/]+"
SUBNET_ID = re.compile(
    rf"^/subscriptions/(?P<subscription>{_SEGMENT})/resourceGroups/{_SEGMENT}/providers/"
    rf"Microsoft\.Network/virtualNetworks/{_SEGMENT}/subnets/{_SEGMENT}$",
    re.IGNORECASE,
)
IMAGE_ID = re.compile(
    rf"^/subscriptions/(?P<subscription>{_SEGMENT})/resourceGroups/{_SEGMENT}/providers/Microsoft\.Compute/"
    rf"(?:images/{_SEGMENT}|galleries/{_SEGMENT}/images/{_SEGMENT}(?:/versions/{_SEGMENT})?)$",
    re.IGNORECASE,
)
IMAGE_ID_PROPERTY = "virtualMachineConfiguration.imageReference.virtualMachineImageId"
SUBNET_ID_PROPERTY = "networkConfiguration.subnetId"


def check_arm_ids(body: dict[str, Any], subscription_id: str, prefix: str = "") -> None:
    """Subnet and image ids of a pool body (or a pool specification, with ``prefix``)."""
    network = body.get("networkConfiguration")
    if isinstance(network, dict) and network.get("subnetId") is not None:
        _check(network["subnetId"], SUBNET_ID, prefix + SUBNET_ID_PROPERTY, subscription_id, "subnet")
    vm = body.get("virtualMachineConfiguration")
    image = vm.get("imageReference") if isinstance(vm, dict) else None
    if isinstance(image, dict) and image.get("virtualMachineImageId") is not None:
        _check(image["virtualMachineImageId"], IMAGE_ID, prefix + IMAGE_ID_PROPERTY, subscription_id, "image")


def _check(value: Any, pattern: re.Pattern[str], name: str, subscription_id: str, what: str) -> None:
    match = pattern.match(value) if isinstance(value, str) else None
    if match is None:
        raise invalid_value(name, value, f"'{name}' is not a valid ARM resource id of a {what}")
    if subscription_id and match.group("subscription").lower() != subscription_id.lower():
        raise invalid_value(
            name, value, f"the {what} must be in the Batch account's subscription ({subscription_id})"
        )
