"""The replay suite shares Azurite with the emulator tests; each recorded case gets an emulator of its own."""

from __future__ import annotations

from tests.emulator.conftest import azurite, blob_service

__all__ = ["azurite", "blob_service"]
