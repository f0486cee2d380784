"""Waiting in tests for what the service does in the background, without fixed sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def wait_for(cond: Callable[[], Any], timeout: float = 20.0) -> Any:
    """`cond()`'s first truthy value, polled in a thread (it may query the database)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = await asyncio.to_thread(cond)
        if v:
            return v
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")
