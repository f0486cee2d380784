"""Review summaries reach Slack exactly once: bursts, rate limits, faults, restarts, two processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot import drafts, intake
from bot.decisions import decide
from bot.review import Action
from bot.runtime.service import Service
from bot.settings import Settings
from storage.db import unit_of_work
from storage.models import OutboxItem, Submission, utcnow
from tests.conftest import make_settings
from tests.support import waiting
from tests.support.slack_api import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "C0REVIEW"


def slack_settings(db_url: str, slack: FakeSlack, **extra: object) -> Settings:
    return make_settings(db_url, SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET="test-secret",
                         SLACK_API_URL=slack.api_url, EVIDENCE_REVIEW_CHANNEL=CHANNEL,
                         EVIDENCE_REVIEWERS="U0REV1", EVIDENCE_RETRY_BASE_SECONDS=0.2, **extra)


def file_records(engine: Engine, settings: Settings, n: int, *, body: str = "It went well.") -> list[str]:
    """n e-mail records, stored and filed as the SMTP door would (their summaries wait in the outbox)."""
    for i in range(n):
        raw = (f"From: Ann <ann{i}@example.org>\r\nTo: evidence@localhost\r\nSubject: Evidence {i}\r\n"
               f"Message-ID: <b-{i}@example.org>\r\n\r\nPublic body: Kent County Council\r\n\r\n{body}\r\n").encode()
        intake.store_now(engine, drafts.draft(raw, envelope_from=f"ann{i}@example.org", rcpts=["evidence@localhost"]))
    return [f.reference or "" for f in intake.process_pending(engine, settings, limit=n)]


async def wait_for(cond: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Slack's pacing (one post a second per channel) makes these waits longer than most."""
    return await waiting.wait_for(cond, timeout)


def summaries(slack: FakeSlack) -> Counter[str]:
    """How many accepted summaries each reference has in the review channel."""
    refs: Counter[str] = Counter()
    for m in slack.posted_messages(CHANNEL):
        if not m.get("thread_ts"):
            refs[str(m.get("text", "")).split(":", 1)[0]] += 1
    return refs


def recorded_ts(engine: Engine) -> dict[str, str | None]:
    with unit_of_work(engine) as s:
        return {r: ts for r, ts in s.execute(select(col(Submission.reference), col(Submission.review_ts))).all()}


async def test_a_burst_of_40_with_a_restart_in_the_middle(db_url: str, engine: Engine) -> None:
    async with FakeSlack(post_interval=0.2) as slack:
        settings = slack_settings(db_url, slack)
        refs = file_records(engine, settings, 40)
        async with Service(settings, smtp=False, slack_post_interval=0.2):
            await wait_for(lambda: len(summaries(slack)) >= 15)
        # Stopped mid-burst; a new process picks up where the first left off.
        async with Service(settings, smtp=False, slack_post_interval=0.2):
            await wait_for(lambda: len(summaries(slack)) == 40)
            await wait_for(lambda: all(recorded_ts(engine).values()))
        assert summaries(slack) == Counter({r: 1 for r in refs})
        posted = {m["ts"] for m in slack.posted_messages(CHANNEL)}
        assert set(recorded_ts(engine).values()) == posted


async def test_429_and_500_are_waited_out_and_retried(db_url: str, engine: Engine) -> None:
    async with FakeSlack(post_interval=0.2) as slack:
        settings = slack_settings(db_url, slack)
        slack.fail_next("chat.postMessage", status=429, retry_after=1)
        slack.fail_next("chat.postMessage", status=500, count=2)
        (ref,) = file_records(engine, settings, 1)
        async with Service(settings, smtp=False, slack_post_interval=0.2):
            await wait_for(lambda: summaries(slack)[ref] == 1)
            await wait_for(lambda: recorded_ts(engine)[ref])
        statuses = [c.status for c in slack.calls_to("chat.postMessage")]
        assert statuses == [429, 500, 500, 200]
        assert summaries(slack) == Counter({ref: 1})


async def test_a_post_that_got_through_before_a_crash_is_not_repeated(db_url: str, engine: Engine) -> None:
    async with FakeSlack(post_interval=0.2) as slack:
        settings = slack_settings(db_url, slack)
        (ref,) = file_records(engine, settings, 1)
        # A worker posted the summary, then died before recording it: its lease has run out.
        with unit_of_work(engine) as s:
            item = s.execute(select(OutboxItem).where(col(OutboxItem.kind) == "slack_summary")).scalar_one()
            s.execute(update(OutboxItem).where(OutboxItem.id == item.id)
                      .values(status="sending", locked_by="dead-worker", locked_until=utcnow()))
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        await client.chat_postMessage(channel=CHANNEL, text=f"{ref}: earlier", metadata={
            "event_type": "evidence_bot_outbox", "event_payload": {"key": item.key}})
        async with Service(settings, smtp=False, slack_post_interval=0.2):
            await wait_for(lambda: recorded_ts(engine)[ref])
        assert summaries(slack) == Counter({ref: 1})
        assert recorded_ts(engine)[ref] == slack.posted_messages(CHANNEL)[0]["ts"]


def _as_if_sent_then_lost(engine: Engine, kind: str) -> OutboxItem:
    """The outbox item of `kind`, as a worker leaves it that sent it and died before recording it."""
    with unit_of_work(engine) as s:
        item = s.execute(select(OutboxItem).where(col(OutboxItem.kind) == kind)).scalar_one()
        s.execute(update(OutboxItem).where(OutboxItem.id == item.id)
                  .values(status="sending", locked_by="dead-worker", locked_until=utcnow()))
        s.expunge(item)
        return item


def _keyed(messages: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [m for m in messages if '"key": "' + key + '"' in str(m.get("metadata")).replace("'", '"')]


async def test_a_thread_reply_that_got_through_before_a_crash_is_not_repeated(db_url: str, engine: Engine) -> None:
    """A follow-up's reply lives in the summary's thread, which conversations.history does not list."""
    from tests.test_withdraw import _reply

    async with FakeSlack(post_interval=0.2) as slack:
        settings = slack_settings(db_url, slack)
        (ref,) = file_records(engine, settings, 1)
        async with Service(settings, smtp=False, slack_post_interval=0.2):
            await wait_for(lambda: recorded_ts(engine)[ref])
        _reply(engine, settings, ref, "More detail: the bins were missed for weeks.", sender="ann0@example.org")
        item = _as_if_sent_then_lost(engine, "slack_thread")
        parent = recorded_ts(engine)[ref]
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        await asyncio.sleep(0.3)  # Slack's pace for the channel, after the summary's post
        await client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="Follow-up: earlier", metadata={
            "event_type": "evidence_bot_outbox", "event_payload": {"key": item.key}})
        async with Service(settings, smtp=False, slack_post_interval=0.2):
            await wait_for(lambda: slack.calls_to("conversations.replies"))
            await wait_for(lambda: _outbox_status(engine, item.id) == "done")
        replies = [m for m in slack.posted_messages(CHANNEL) if m.get("thread_ts") == parent]
        assert len(replies) == 1 and len(_keyed(replies, item.key)) == 1


async def test_a_direct_message_that_got_through_before_a_crash_is_not_repeated(db_url: str, engine: Engine) -> None:
    from bot.outbox_kinds import SLACK_DM
    from storage.outbox import enqueue

    async with FakeSlack(post_interval=0.2) as slack:
        settings = slack_settings(db_url, slack)
        with unit_of_work(engine) as s:
            enqueue(s, key="slack_dm:receipt:EV-000009", kind=SLACK_DM, recipient="U0ANN",
                    payload={"user": "U0ANN", "text": "Thank you: your reference is EV-000009."})
        item = _as_if_sent_then_lost(engine, SLACK_DM)
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        im = str((await client.conversations_open(users="U0ANN"))["channel"]["id"])
        await client.chat_postMessage(channel=im, text="Thank you: your reference is EV-000009.", metadata={
            "event_type": "evidence_bot_outbox", "event_payload": {"key": item.key}})
        async with Service(settings, smtp=False, slack_post_interval=0.2):
            await wait_for(lambda: _outbox_status(engine, item.id) == "done")
        assert len(slack.posted_messages(im)) == 1
        # Not resumed: sent as ever, now with the key that would find it after a crash.
        with unit_of_work(engine) as s:
            enqueue(s, key="slack_dm:receipt:EV-000010", kind=SLACK_DM, recipient="U0ANN",
                    payload={"user": "U0ANN", "text": "Thank you: your reference is EV-000010."})
        async with Service(settings, smtp=False, slack_post_interval=0.2):
            await wait_for(lambda: len(slack.posted_messages(im)) == 2)
        assert len(_keyed(slack.posted_messages(im), "slack_dm:receipt:EV-000010")) == 1


def _outbox_status(engine: Engine, item_id: int | None) -> str:
    with unit_of_work(engine) as s:
        return str(s.execute(select(col(OutboxItem.status)).where(col(OutboxItem.id) == item_id)).scalar_one())


async def test_a_decision_updates_the_summary_in_place(db_url: str, engine: Engine) -> None:
    async with FakeSlack(post_interval=0.2) as slack:
        settings = slack_settings(db_url, slack)
        (ref,) = file_records(engine, settings, 1, body="Ask <!channel> and <@U0REV1> at <https://evil.example|bank>")
        async with Service(settings, smtp=False, slack_post_interval=0.2) as svc:
            await wait_for(lambda: recorded_ts(engine)[ref])
            await asyncio.to_thread(decide, engine, settings, reference=ref, action=Action.REJECT,
                                    actor="cli:Sam", reason="Not <!here> relevant")
            svc.worker.wake()
            await wait_for(lambda: slack.calls_to("chat.update"))
        (ts,) = [m["ts"] for m in slack.posted_messages(CHANNEL)]
        msg = slack.messages[(CHANNEL, ts)]
        blocks = str(msg["blocks"])
        assert "actions" not in [b["type"] for b in msg["blocks"]]
        assert "Rejected" in blocks and "by Sam" in blocks and "Not &lt;!here&gt; relevant" in blocks
        every_call = str([c.args for c in slack.calls])
        assert "<!channel>" not in every_call and "<!here>" not in every_call and "<https://evil" not in every_call
        assert "&lt;!channel&gt;" in str(slack.posted_messages(CHANNEL)[0]["blocks"])


def _serve(db_url: str, slack: FakeSlack, log: Path) -> subprocess.Popen[bytes]:
    """`evidence-bot serve --no-smtp` as its own process; its stderr goes to `log`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "SLACK_", "DATABASE_URL"))}
    env.update({"DATABASE_URL": db_url, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s",
                "SLACK_API_URL": slack.api_url, "EVIDENCE_REVIEW_CHANNEL": CHANNEL, "PORT": "0",
                "EVIDENCE_RETRY_BASE_SECONDS": "0.2"})
    with log.open("wb") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "bot", "serve", "--no-smtp"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err)


async def test_two_serve_processes_and_a_sigkill_post_each_summary_once(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    async with FakeSlack(post_interval=1.0) as slack:
        settings = slack_settings(db_url, slack)
        refs = file_records(engine, settings, 12)
        procs = [_serve(db_url, slack, tmp_path / f"serve{i}.log") for i in range(2)]
        try:
            await wait_for(lambda: len(summaries(slack)) >= 4)
            procs[0].send_signal(signal.SIGKILL)  # one dies mid-burst, holding whatever it had leased
            procs[0].wait()
            procs.append(_serve(db_url, slack, tmp_path / "serve2.log"))
            # A dead worker's lease runs out after 60 s; the test makes that moment now (for the
            # dead one's items only: the live process's leases are its own).
            dead = f":{procs[0].pid}:"
            with unit_of_work(engine) as s:
                s.execute(update(OutboxItem).where(col(OutboxItem.status) == "sending",
                                                   col(OutboxItem.locked_by).contains(dead))
                          .values(locked_until=utcnow()))
            await wait_for(lambda: len(summaries(slack)) == 12, timeout=90)
            await wait_for(lambda: all(recorded_ts(engine).values()), timeout=30)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                p.wait(timeout=30)
        assert summaries(slack) == Counter({r: 1 for r in refs}), [
            (tmp_path / f"serve{i}.log").read_text()[-2000:] for i in range(3)]


async def follow_up_in_thread(svc: Service, slack: FakeSlack, ref: str, name: str, text: str) -> dict[str, Any]:
    """ann0's reply to `ref`, filed once its summary is posted; the reply as posted in the thread."""
    await wait_for(lambda: recorded_ts(svc.engine)[ref])
    reply = (f"From: {name} <ann0@example.org>\r\nTo: evidence@localhost\r\nSubject: Re: [{ref}] Received\r\n"
             f"Message-ID: <fu-1@example.org>\r\n\r\n{text}\r\n").encode()
    intake.store_now(svc.engine, drafts.draft(reply, envelope_from="ann0@example.org", rcpts=["evidence@localhost"]))
    await asyncio.to_thread(intake.process_pending, svc.engine, svc.settings)
    svc.worker.wake()
    (threaded,) = await wait_for(lambda: [m for m in slack.posted_messages(CHANNEL) if m.get("thread_ts")])
    return threaded


async def test_a_follow_up_appears_in_the_summary_thread(db_url: str, engine: Engine) -> None:
    async with FakeSlack(post_interval=0.2) as slack:
        settings = slack_settings(db_url, slack)
        (ref,) = file_records(engine, settings, 1)
        async with Service(settings, smtp=False, slack_post_interval=0.2) as svc:
            text = "The contract was extended <!channel> in 2021."
            threaded = await follow_up_in_thread(svc, slack, ref, "Ann", text)
        (summary_ts,) = [v for v in recorded_ts(engine).values()]
        assert threaded["thread_ts"] == summary_ts
        assert "extended &lt;!channel&gt; in 2021" in threaded["text"]


async def test_erasure_rewrites_the_summary_and_the_replies_already_in_slack(db_url: str, engine: Engine) -> None:
    from bot.privacy import Subject, erase

    async with FakeSlack(post_interval=0.2) as slack:
        settings = slack_settings(db_url, slack)
        (ref,) = file_records(engine, settings, 1)
        async with Service(settings, smtp=False, slack_post_interval=0.2) as svc:
            threaded = await follow_up_in_thread(svc, slack, ref, "Ann Smith", "Call me: ann0@example.org.")
            assert "ann0@example.org" in threaded["text"] and "Ann Smith" in threaded["text"]

            await asyncio.to_thread(erase, engine, Subject.of(email="ann0@example.org"))
            svc.worker.wake()

            def rewritten() -> list[dict[str, Any]]:
                return [m for (ch, _), m in slack.messages.items() if ch == CHANNEL and m.get("update_count", 0) >= 1]

            await wait_for(lambda: len(rewritten()) == 2)
        now = {bool(m.get("thread_ts")): m for m in rewritten()}
        for m in now.values():
            assert "ann0@example.org" not in str(m) and "Ann Smith" not in str(m)
        assert now[True]["ts"] == threaded["ts"] and "[erased]" in now[True]["text"]


async def test_very_long_texts_are_cut_to_slacks_limits(db_url: str, engine: Engine) -> None:
    async with FakeSlack(post_interval=0.2) as slack:
        settings = slack_settings(db_url, slack)
        body = ("The & council <b> said " * 800) + "\r\n\r\n" + "Annex. " * 3000
        (ref,) = file_records(engine, settings, 1, body=body)
        async with Service(settings, smtp=False, slack_post_interval=0.2):
            await wait_for(lambda: recorded_ts(engine)[ref])
        (post,) = slack.posted_messages(CHANNEL)
        assert not [c for c in slack.calls_to("chat.postMessage") if c.rejected]
        assert all(len(b["text"]["text"]) <= 3000 for b in post["blocks"] if b["type"] == "section" and "text" in b)
