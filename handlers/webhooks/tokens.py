"""Used webhook tokens (Mailgun's), kept in the database so every `serve` process agrees.

See the package docstring for the replay design; claims of concurrent requests share one
transaction, and rows past any use (twice the freshness window and a minute) are pruned.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import col

from storage.db import unit_of_work
from storage.models import InboundToken, utcnow

FRESHNESS_SECONDS = 300  # a signed timestamp further than this from our clock is refused
# A token is accepted while its timestamp is within FRESHNESS of now, and the timestamp may lie
# up to FRESHNESS ahead of its first use: keep rows for twice that, and a minute for clock skew.
TOKEN_KEEP = timedelta(seconds=2 * FRESHNESS_SECONDS + 60)
PRUNE_EVERY_SECONDS = 60.0


class TokenBook:
    """Used webhook tokens in `inbound_token`; see the module docstring for the design."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._queue: list[tuple[str, str, str, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0

    async def seen(self, token: str) -> str | None:
        """The dedupe key of the message this token carried, or None if it is new."""

        def look() -> str | None:
            with unit_of_work(self._engine, read_only=True) as s:
                return s.execute(select(col(InboundToken.dedupe_key))
                                 .where(col(InboundToken.token) == token)).scalar_one_or_none()

        return await asyncio.to_thread(look)

    async def claim(self, token: str, provider: str, dedupe_key: str) -> bool:
        """Records the token for this message; False if it already stands for another message.

        Claims that arrive while a batch is being written wait and go together in the next one,
        so twenty concurrent requests share a transaction (on SQLite, an fsync) or two."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._enqueue(token, provider, dedupe_key, fut)
        return await fut

    def _enqueue(self, token: str, provider: str, dedupe_key: str, fut: asyncio.Future[bool]) -> None:
        self._queue.append((token, provider, dedupe_key, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="webhook-tokens")

    async def close(self, _app: object = None) -> None:
        """Waits for the claims in hand (the web app's cleanup, before the engine is disposed)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await asyncio.to_thread(self._write, [(t, p, k) for t, p, k, _ in batch])
            except Exception as exc:
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
            else:
                for (*_, fut), ok in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(ok)

    def _write(self, claims: list[tuple[str, str, str]]) -> list[bool]:
        now = utcnow()
        rows = {t: {"token": t, "provider": p, "dedupe_key": k, "used_at": now} for t, p, k in claims}
        with unit_of_work(self._engine) as s:
            s.execute(self._insert(InboundToken).values(list(rows.values()))
                      .on_conflict_do_nothing(index_elements=["token"]))
            owners = {token: key for token, key in s.execute(
                select(col(InboundToken.token), col(InboundToken.dedupe_key))
                .where(col(InboundToken.token).in_(rows)))}
            if time.monotonic() - self._last_prune > PRUNE_EVERY_SECONDS:
                s.execute(delete(InboundToken).where(col(InboundToken.used_at) < now - TOKEN_KEEP))
                self._last_prune = time.monotonic()
        return [owners.get(t) == k for t, _, k in claims]
