"""Scheduling: node allocation and states, task dispatch, retries, job completion, autoscale, recovery."""

from __future__ import annotations
