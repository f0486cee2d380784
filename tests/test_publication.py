"""The submitter's say over publication, read from every door, and lateness against the deadline."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot import drafts, intake
from bot.parsing.email_message import parse_email
from bot.parsing.fields import extract_fields
from bot.parsing.slack_form import record_from_form
from storage.db import unit_of_work
from storage.models import Submission
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("text", "publication", "confidential"),
    [
        ("Publish: named\n\nThe council saved money.", "named", False),
        ("Publish: anonymous\n\nThe council saved money.", "anonymous", True),
        ("- **Publish:** Not for publication\n\nFor the group only.", "not_for_publication", True),
        ("Publish – anonymously please\n\nIt failed.", "anonymous", True),
        ("It failed badly. Please do not publish my name.", "anonymous", True),
        ("I would like to remain anonymous. It failed.", "anonymous", True),
        ("This account is not for publication; it is for the group's eyes only.", "not_for_publication", True),
        ("Confidential: yes\n\nIt failed.", "anonymous", True),
        ("Publish: named\nConfidential: no\n\nIt worked.", "named", False),
        ("This email is confidential and intended solely for the addressee.", "named", False),
    ],
)
def test_publication_preference_from_text(text: str, publication: str, confidential: bool) -> None:
    f = extract_fields(text)
    assert (f.publication, f.confidential) == (publication, confidential)


def test_the_strictest_wish_in_an_attachment_counts() -> None:
    raw = (
        b"From: Ann <ann@example.org>\r\nSubject: Evidence\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
        b"See the attached note.\r\n--b\r\nContent-Type: text/plain\r\n"
        b'Content-Disposition: attachment; filename="note.txt"\r\n\r\nPublish: not for publication\r\n'
        b"Public body: Kent County Council\r\n--b--\r\n"
    )
    rec = parse_email(raw)
    assert rec.publication == "not_for_publication" and rec.confidential
    assert rec.to_json()["publication"] == "not_for_publication"


def test_the_slack_form_choice() -> None:
    base: dict[str, str | None] = {"project": "Fleet", "public_body": "Kent County Council", "evidence": "It failed."}
    assert record_from_form(base, user_id="U1", user_name="a").publication == "named"
    assert record_from_form({**base, "confidential": "yes"}, user_id="U1", user_name="a").publication == "anonymous"
    chosen: dict[str, str | None] = {**base, "publication": "not_for_publication"}
    assert record_from_form(chosen, user_id="U1", user_name="a").publication == "not_for_publication"


def test_late_submissions_are_accepted_and_marked(db_url: str, engine: Engine) -> None:
    settings = make_settings(db_url, EVIDENCE_INQUIRY_DEADLINE="2020-01-31")
    assert settings.inquiry_deadline == date(2020, 1, 31)
    raw = (b"From: Ann <ann@example.org>\r\nSubject: Evidence\r\nMessage-ID: <late@x>\r\n\r\n"
           b"Publish: anonymous\r\n\r\nx\r\n")
    intake.store_now(engine, drafts.draft(raw, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    with unit_of_work(engine) as s:
        sub = s.execute(select(Submission)).scalar_one()
    assert filed.reference == "EV-000001" and sub.late and sub.publication == "anonymous"
    on_time = make_settings(db_url, EVIDENCE_INQUIRY_DEADLINE="2999-12-31")
    raw2 = raw.replace(b"<late@x>", b"<ok@x>")
    intake.store_now(engine, drafts.draft(raw2, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    intake.process_pending(engine, on_time)
    with unit_of_work(engine) as s:
        assert [x.late for x in s.execute(select(Submission).order_by(col(Submission.id))).scalars()] == [True, False]
