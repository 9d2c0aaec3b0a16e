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
# Batch names the leaf property (recorded: PropertyName=subnetId, PropertyName=virtualMachineImageId).
IMAGE_ID_PROPERTY = "virtualMachineImageId"
SUBNET_ID_PROPERTY = "subnetId"
IMAGE_FORMATS = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/images/"
    "{imageName}, /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
    "Microsoft.Compute/galleries/{galleryName}/images/{galleryImageName}/versions/{galleryImageVersionName}, "
    "or /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/"
    "galleries/{galleryName}/images/{galleryImageName}"
)


def check_arm_ids(body: dict[str, Any], subscription_id: str) -> None:
    """Subnet and image ids of a pool body (or of an auto pool specification's pool)."""
    network = body.get("networkConfiguration")
    subnet = network.get("subnetId") if isinstance(network, dict) else None
    if subnet is not None:
        match = SUBNET_ID.match(subnet) if isinstance(subnet, str) else None
        if match is None:
            _refuse(
                SUBNET_ID_PROPERTY,
                subnet,
                "The specified subnetId is not a valid ARM resource id of a subnet",
            )
        elif subscription_id and match.group("subscription").lower() != subscription_id.lower():
            _refuse(
                SUBNET_ID_PROPERTY,
                subnet,
                "The specified subnetId is in a different subscription and cannot be used with the current "
                f"Batch account in subscription {subscription_id}",
            )
    vm = body.get("virtualMachineConfiguration")
    image = vm.get("imageReference") if isinstance(vm, dict) else None
    image_id = image.get("virtualMachineImageId") if isinstance(image, dict) else None
    if image_id is not None and (not isinstance(image_id, str) or IMAGE_ID.match(image_id) is None):
        _refuse(
            IMAGE_ID_PROPERTY, image_id, f"The specified resource id must be of the format {IMAGE_FORMATS}"
        )


def _refuse(name: str, value: Any, reason: str) -> None:
    error = invalid_value(name, value, reason)
    error.values["Reason"] = reason
    raise error
