"""HTTP routes of the emulator, one module per resource kind; :func:`routes` collects them."""

from __future__ import annotations
