"""The local Azure Batch service: Batch REST API on loopback, SQLite state, a scheduler running tasks locally.

Start it with ``python -m batchrun.emulator --config FILE`` or in-process with
:class:`batchrun.emulator.server.EmulatorServer`. It shares nothing with batchrun's client side but the wire
format.
"""

from __future__ import annotations
