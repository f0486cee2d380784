"""`/evidence search` and `/evidence stats`: private answers, worded from storage.search and bot.stats.

Search visibility: reviewers see every record; anyone else sees approved records meant for
publication, and their own (matched by Slack user id), nothing more, and the same "no results"
whether or not anything else matched. Statistics are for reviewers only.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine

from bot import mrkdwn, stats
from bot.runtime.services import Services
from handlers.slack.common import may_review
from storage import search
from storage.db import unit_of_work

MAX_RESULTS = 10
SNIPPET_MAX = 300
ANSWER_MAX = 3900  # Slack shows up to 4,000 characters of a slash-command answer
PUBLIC_STATUSES = ("approved",)
NOT_REVIEWER_STATS = "Only the named reviewers can see the statistics."
STATUS_SHORT = {"received": "waiting for review", "needs_info": "needs info", "approved": "approved",
                "rejected": "rejected", "withdrawn": "withdrawn"}


def _search(engine: Engine, words: str, *, reviewer: bool, user_id: str) -> search.Results:
    with unit_of_work(engine, read_only=True) as s:
        if reviewer:
            return search.search(s, words=words, limit=MAX_RESULTS)
        return search.search(s, words=words, statuses=PUBLIC_STATUSES, submitter=user_id, limit=MAX_RESULTS)


def snippet_mrkdwn(snippet: str) -> str:
    """A snippet for Slack: record text escaped, matched words in bold, cut without breaking either."""
    # Cut first (on the raw text) so a cut never lands between a mark and its pair or inside an entity.
    raw = snippet.replace("\n", " ")
    if len(raw) > SNIPPET_MAX:
        raw = raw[:SNIPPET_MAX]
        if raw.count(search.MARK_START) > raw.count(search.MARK_END):
            raw += search.MARK_END
        raw += "…"
    return search.marked(raw, start="*", end="*", escape=mrkdwn.escape)


def results_text(words: str, hits: search.Results) -> str:
    shown = mrkdwn.safe(words, 100)
    if not hits:
        return f"Nothing found for “{shown}”."
    lines = [f"*{len(hits)} result{'s' if len(hits) != 1 else ''} for “{shown}”*"
             + (" (the best ten)" if len(hits) >= MAX_RESULTS else "")]
    if hits.note:
        lines.append(f"_{hits.note}_")
    for h in hits:
        entry = (f"\n*{h.reference}* · {STATUS_SHORT.get(h.status, h.status)} · "
                 f"{mrkdwn.safe(h.title or '(no title)', 150)}")
        if h.snippet:
            entry += f"\n> {snippet_mrkdwn(h.snippet)}"
        if sum(len(x) for x in lines) + len(entry) > ANSWER_MAX:
            lines.append("\n…and more; try more words to narrow it down.")
            break
        lines.append(entry)
    return "\n".join(lines)


async def search_answer(services: Services, user_id: str, words: str) -> str:
    words = words.strip()
    if not words:
        return "What should I look for? Try `/evidence search payroll Capita`."
    reviewer = await may_review(services, user_id)
    hits = await asyncio.to_thread(_search, services.engine, words, reviewer=reviewer, user_id=user_id)
    return results_text(words, hits)


def collect_stats(engine: Engine) -> stats.Stats:
    """Blocking: run it in a thread."""
    with unit_of_work(engine, read_only=True) as s:
        return stats.collect(s)


async def stats_answer(services: Services, user_id: str) -> str:
    if not await may_review(services, user_id):
        return NOT_REVIEWER_STATS
    return stats.as_text(await asyncio.to_thread(collect_stats, services.engine))
