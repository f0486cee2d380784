"""A PostgreSQL database of one's own on a shared server, created and dropped around a block.

The test session and the search benchmark both need one, so that runs on the same server
(a developer and CI, parallel agents, a benchmark beside a test run) never meet.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """Yields the URL of a new, empty database on `server_url`'s server; drops it afterwards."""
    base = make_url(server_url)
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
