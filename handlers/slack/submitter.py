"""The submitter's own `/evidence` verbs: `withdraw EV-000042` and `mine`.

Both answer privately. Who is asking is Slack's verified user ID, never anything typed: only the
user who submitted a record may withdraw it or see it in their list. Someone else gets the same
refusal whether or not the record exists, so references cannot be probed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from bot import mrkdwn
from bot.runtime.services import Services
from bot.withdraw import WithdrawError, withdraw
from handlers.slack.common import reference_of
from storage.db import unit_of_work
from storage.models import Submission

MINE_LIMIT = 20  # newest first; an ephemeral message stays readable
STATUS_WORDS = {
    "received": "waiting for review",
    "needs_info": "more information requested",
    "approved": "accepted",
    "rejected": "not accepted",
    "withdrawn": "withdrawn",
}


def submitter_actor(user_id: str) -> str:
    return f"submitter:slack:{user_id}"


async def withdraw_answer(services: Services, user_id: str, arg: str) -> str:
    prefix = services.settings.reference_prefix
    reference = reference_of(arg, prefix) if arg else None
    if reference is None:
        return f"Which record? Try `/evidence withdraw {prefix}-000042`."
    try:
        done = await asyncio.to_thread(withdraw, services.engine, services.settings, reference=reference,
                                       actor=submitter_actor(user_id), by_slack_user=user_id)
    except WithdrawError as e:
        return mrkdwn.escape(str(e))
    return (f"*{done.reference}* is withdrawn: it will not be put before the group or included in any "
            "evidence pack.")


@dataclass(frozen=True)
class Mine:
    reference: str
    title: str | None
    status: str


def list_mine(engine: Engine, user_id: str, *, limit: int = MINE_LIMIT) -> tuple[list[Mine], int]:
    """(the user's newest evidence records, how many they have in all). Blocking: run it in a thread."""
    mine = (col(Submission.slack_user_id) == user_id) & (col(Submission.kind) == "evidence") & (
        col(Submission.reference).is_not(None))
    with unit_of_work(engine) as s:
        total = int(s.exec(select(func.count()).select_from(Submission).where(mine)).one())
        rows = s.exec(select(Submission).where(mine).order_by(col(Submission.id).desc()).limit(limit)).all()
        return [Mine(r.reference or "?", r.title or r.project, r.status) for r in rows], total


def mine_text(rows: list[Mine], total: int) -> str:
    """mrkdwn; every title escaped and cut."""
    if not rows:
        return "You have not submitted any evidence through Slack yet. `/evidence` opens the form."
    lines = [f"*Your submissions* ({total})"]
    for r in rows:
        title = mrkdwn.safe(r.title or "(no title)", 120)
        lines.append(f"• *{r.reference}* · {title} · {STATUS_WORDS.get(r.status, r.status)}")
    if total > len(rows):
        lines.append(f"…and {total - len(rows)} older. Ask `/evidence status REFERENCE` about any of them.")
    return "\n".join(lines)


async def mine_answer(services: Services, user_id: str) -> str:
    rows, total = await asyncio.to_thread(list_mine, services.engine, user_id)
    return mine_text(rows, total)
