"""A submitter's later word on publication (bot.wishes), and the receipt that tells them what we noted."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot import acks, drafts, intake
from bot.parsing.fields import is_confidential_request, publication_from_text
from bot.settings import Settings
from storage import repo
from storage.db import unit_of_work
from storage.models import OutboxItem, Submission
from tests.test_withdraw import _reply, _state

NAMED = (b"From: Ann Example <ann@example.org>\r\nTo: evidence@localhost\r\nSubject: Waste contract\r\n"
         b"Message-ID: <named-1@example.org>\r\n\r\n"
         b"Kent County Council outsourced waste collection to Veolia in 2019. It failed.\r\n")
ANONYMOUS = NAMED.replace(b"It failed.", b"It failed. I would like to remain anonymous.").replace(
    b"named-1", b"anon-1")


def _file(engine: Engine, settings: Settings, raw: bytes) -> str:
    intake.store_now(engine, drafts.draft(raw, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    assert filed.reference
    return filed.reference


@pytest.mark.parametrize("text", ["Please keep my name out of it.", "Leave my name off, please.",
                                  "I'd rather not be named.", "I would prefer not to be named."])
def test_more_ways_of_asking_not_to_be_named(text: str) -> None:
    assert is_confidential_request(text)
    assert publication_from_text(text) == "anonymous"


@pytest.mark.parametrize(
    ("reply", "publication"),
    [("Please keep my name out of it.", "anonymous"),
     ("On reflection this is not for publication.", "not_for_publication")],
)
def test_a_stricter_wish_in_a_follow_up_is_honoured_at_once(
    engine: Engine, settings: Settings, reply: str, publication: str
) -> None:
    ref = _file(engine, settings, NAMED)
    before, _, _, _ = _state(engine, ref)
    assert before.publication == "named" and not before.confidential

    _reply(engine, settings, ref, reply)
    sub, trail, items, fus = _state(engine, ref)
    assert (sub.publication, sub.confidential) == (publication, True)
    entry = trail[-1]
    assert entry.action == "publication" and entry.actor == "submitter:ann@example.org"
    assert "publication" in (entry.before or "") and publication in (entry.after or "")
    # The review summary is refreshed, and the follow-up itself shows under it as before.
    assert any(i.kind == "slack_update" and i.key.startswith(f"slack_update:{ref}:publication:")
               for i in items)
    assert len(fus) == 1


def test_only_the_submitter_can_ask_and_only_for_more_privacy(engine: Engine, settings: Settings) -> None:
    ref = _file(engine, settings, NAMED)
    _reply(engine, settings, ref, "Please keep my name out of it.", sender="someone.else@example.org")
    assert _state(engine, ref)[0].publication == "named"  # another address: a follow-up, nothing more
    _reply(engine, settings, ref, "More detail: the bins were missed for weeks.", n=2)
    assert _state(engine, ref)[0].publication == "named"  # no wish in it

    anon = _file(engine, settings, ANONYMOUS)
    assert _state(engine, anon)[0].publication == "anonymous"
    _reply(engine, settings, anon, "Actually I am happy to be named.", n=3)
    sub, trail, _, _ = _state(engine, anon)
    assert sub.publication == "anonymous"  # loosening is a reviewer's correction, never automatic
    assert not any(a.action == "publication" for a in trail)


def test_a_wish_less_strict_than_the_record_changes_nothing(engine: Engine, settings: Settings) -> None:
    """A reviewer made the record not for publication; a later "keep my name out" (only anonymous)
    must not loosen it."""
    ref = _file(engine, settings, NAMED)
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=ref)
        assert sub is not None and sub.id is not None
        repo.update_submission(s, submission_id=sub.id, values={"publication": "not_for_publication",
                                                                 "confidential": True})
    _reply(engine, settings, ref, "Please keep my name out of it.")
    sub, trail, _, _ = _state(engine, ref)
    assert sub.publication == "not_for_publication" and not any(a.action == "publication" for a in trail)


def _ack_text(engine: Engine, ref: str) -> tuple[str, str]:
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=ref)
        assert sub is not None
        (item,) = s.exec(select(OutboxItem).where(OutboxItem.kind == "ack_email",
                                                  OutboxItem.submission_id == sub.id)).all()
        payload = json.loads(item.payload)
    return payload["text"], payload["html"]


@pytest.mark.parametrize(
    ("publication", "says"),
    [("named", "you did not ask us to withhold your name"),
     ("anonymous", "you asked us to withhold your name"),
     ("not_for_publication", "you asked that this evidence not be published")],
)
def test_the_receipt_says_what_was_noted_and_never_reads_as_a_request(
    settings: Settings, publication: str, says: str
) -> None:
    sub = Submission(reference="EV-000007", title="Waste", submitter_name="Ann", publication=publication,
                     channel="email", kind="evidence", status="received")
    payload = acks.build(settings, sub, to="ann@example.org", original_message_id=None)
    text = " ".join(payload["text"].split())
    html = " ".join(re.sub(r"<[^>]+>", " ", payload["html"]).split())
    assert says in text and says in html
    # Quoted back in a reply ("see below"), the receipt must not change anyone's wish.
    for body in (payload["text"], html):
        assert publication_from_text(body) == "named"


def test_the_receipt_of_a_filed_record_carries_its_wish(engine: Engine, settings: Settings) -> None:
    ref = _file(engine, settings, ANONYMOUS)
    text, html = _ack_text(engine, ref)
    assert "you asked us to withhold your name" in " ".join(text.split())
    assert "withhold your name" in html
