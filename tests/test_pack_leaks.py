"""Identity leaks the pack's first rules missed, each filed and exported as in production.

An anonymous contributor must not be named in any export (html, md, csv, jsonl), however their
name reaches the text: an address with no display name, a Slack handle, an attachment's file name,
a message they forwarded from work, or someone else's evidence while their own is not published.
"""

from __future__ import annotations

import csv
import io
import json
from email.message import EmailMessage

from sqlalchemy.engine import Engine

from bot import drafts, intake, pack
from bot.redact import NAME
from bot.settings import Settings
from tests.test_pack import _approve, _file, _pack

FORMATS = ("html", "md", "csv", "jsonl")


def _exports(engine: Engine, db_url: str, **kw: object) -> dict[str, str]:
    p = _pack(engine, db_url, **kw)
    return {fmt: pack.render(p, fmt) for fmt in FORMATS}


def _absent(exports: dict[str, str], *needles: str) -> None:
    for fmt, text in exports.items():
        for n in needles:
            assert n not in text, f"{n!r} leaked in the {fmt} export"


def _mail(i: int, sender: str, body: str, attachments: tuple[str, ...] = ()) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = "evidence@localhost"
    m["Subject"] = "Evidence: payroll"
    m["Message-ID"] = f"<hunt-{i}@example.org>"
    m.set_content(body)
    for name in attachments:
        m.add_attachment(b"Costs rose.", maintype="text", subtype="plain", filename=name)
    return bytes(m)


FIELDS = "Public body: Kent County Council\nSupplier: Capita\nOutcome: failure\n"


def test_an_address_without_a_display_name_still_names_its_owner(engine: Engine, settings: Settings,
                                                                  db_url: str) -> None:
    # From: bob.hidden@... with no name: the local part is the only name the record has.
    ref = _file(engine, settings, _mail(1, "bob.hidden@nhs.example", FIELDS + "Publish: anonymous\n\n"
                                        "I, Bob Hidden, ran payroll when it moved to the supplier.\n\n"
                                        "Staff were paid late; BOB HIDDEN's team fixed it by hand."),
                "bob.hidden@nhs.example")
    _approve(engine, settings, ref)
    out = _exports(engine, db_url)
    _absent(out, "Bob", "Hidden", "BOB", "HIDDEN", "bob.hidden")
    assert f"I, {NAME}, ran payroll" in out["html"]


def test_a_slack_handle_is_a_name_too(engine: Engine, settings: Settings, db_url: str) -> None:
    values: dict[str, str | None] = {
        "project": "Payroll", "public_body": "Kent County Council", "supplier": "Capita", "outcome": "failure",
        "publication": "anonymous", "evidence": "I am Carla Quiet and I ran payroll (@carla_quiet). <@U0CARLA>",
    }
    intake.store_now(engine, drafts.slack_draft(view_id="V1", user_id="U0CARLA", user_name="carla_quiet",
                                                values=values))
    (filed,) = intake.process_pending(engine, settings)
    assert filed.reference
    _approve(engine, settings, filed.reference)
    out = _exports(engine, db_url)
    _absent(out, "Carla", "Quiet", "carla_quiet", "U0CARLA")
    (row,) = csv.DictReader(io.StringIO(out["csv"]))
    assert row["publication"] == "anonymous" and "ran payroll" in row["body"]


def test_attachment_names_lose_the_name_however_it_is_written(engine: Engine, settings: Settings,
                                                               db_url: str) -> None:
    anon = _file(engine, settings, _mail(2, "Bob Hidden <bh77@nhs.example>", FIELDS + "Publish: anonymous\n\n"
                                         "See the attached.", ("Bob_Hidden_statement.txt", "bob-hidden-notes.txt",
                                                               "BobHidden.txt", "annual_costs.txt")),
                 "bh77@nhs.example")
    # Someone else's evidence, with a file named after the anonymous contributor.
    named = _file(engine, settings, _mail(3, "Ann Named <ann@example.org>", FIELDS + "Publish: named\n\n"
                                          "Bob's notes agree.", ("Bob_Hidden_emails.txt", "Ann_Named_costings.txt")),
                  "ann@example.org")
    for ref in (anon, named):
        _approve(engine, settings, ref)
    out = _exports(engine, db_url)
    _absent(out, "Hidden", "hidden", "BobHidden")
    recs = {r["reference"]: r for r in map(json.loads, out["jsonl"].splitlines())}
    assert [a["filename"] for a in recs[anon]["attachments"]] == [
        f"{NAME}_statement.txt", f"{NAME}-notes.txt", f"{NAME}.txt", "annual_costs.txt"]
    # The named contributor's own name stays; only the anonymous one's full name goes from theirs.
    assert [a["filename"] for a in recs[named]["attachments"]] == [f"{NAME}_emails.txt", "Ann_Named_costings.txt"]


def test_someone_not_published_is_not_named_in_anothers_evidence(engine: Engine, settings: Settings,
                                                                 db_url: str) -> None:
    # Carol's own evidence is not for publication; Robert's is anonymous and still waiting for
    # review. Neither is in the public pack, yet both asked not to be named.
    _file(engine, settings, _mail(4, "Carol Secret <carol@example.org>", FIELDS + "Publish: not for publication\n\n"
                                  "For the group only."), "carol@example.org")
    _file(engine, settings, _mail(5, '"Hidden, Robert" <rh@example.org>', FIELDS + "Publish: anonymous\n\n"
                                  "Pending evidence."), "rh@example.org")
    dan = _file(engine, settings, _mail(6, "Dan Named <dan@example.org>", FIELDS + "Publish: named\n\n"
                                        "Carol Secret and Robert Hidden saw the same failures."), "dan@example.org")
    _approve(engine, settings, dan)
    out = _exports(engine, db_url)
    _absent(out, "Carol", "Secret", "Robert", "Hidden")
    assert f"{NAME} and {NAME} saw the same failures." in out["html"]
    assert "Dan Named" in out["html"]


def test_a_message_forwarded_from_work_does_not_name_the_anonymous_contributor(
        engine: Engine, settings: Settings, db_url: str) -> None:
    body = (FIELDS + "Publish: anonymous\n\nForwarding what I wrote at work.\n\n"
            "---------- Forwarded message ---------\n"
            "From: Robert Hidden <r.hidden@trust.example>\nDate: Mon, 3 Mar 2025 at 10:00\n"
            "Subject: Payroll failure\nTo: Payroll Team <payroll@trust.example>\n\n"
            "Staff were paid late for four months.\n\nRobert Hidden\n")
    ref = _file(engine, settings, _mail(7, "B H <bh@home.example>", body), "bh@home.example")
    _approve(engine, settings, ref)
    out = _exports(engine, db_url)
    _absent(out, "Robert", "Hidden", "r.hidden")
    assert "Staff were paid late for four months." in out["html"]
    assert f"Forwarded message from {NAME}" in out["jsonl"]


def test_direction_overrides_do_not_reach_any_export(engine: Engine, settings: Settings, db_url: str) -> None:
    # U+202E turns the rest of a line round: "Ann Named\u202e (EV-000001)" would show the
    # reference backwards, and a crafted name or file name can read as something else.
    rlo = "\u202e"
    named = _file(engine, settings, _mail(8, f"Ann Named{rlo} <ann@example.org>",
                                          FIELDS + f"Publish: named\n\nThe {rlo}contract failed.",
                                          (f"costings{rlo}txt.exe",)), "ann@example.org")
    anon = _file(engine, settings, _mail(9, f"Bob {rlo}Hidden <bob@example.org>",
                                         FIELDS + "Publish: anonymous\n\nI, Bob Hidden, saw it fail."),
                 "bob@example.org")
    for ref in (named, anon):
        _approve(engine, settings, ref)
    out = _exports(engine, db_url)
    _absent(out, rlo, "Hidden")
    assert f"Written evidence submitted by Ann Named ({named})" in out["html"]
    assert "The contract failed." in out["html"] and "costingstxt.exe" in out["html"]


def test_an_erased_contributor_is_an_unnamed_one(engine: Engine, db_url: str, settings: Settings) -> None:
    """After erasure the pack says "an unnamed contributor", never "submitted by [erased]"."""
    from bot import privacy

    raw = (b"From: Ann Example <ann@example.org>\r\nTo: evidence@localhost\r\nSubject: Bins\r\n"
           b"Message-ID: <erased-1@example.org>\r\n\r\nKent County Council's bin contract failed.\r\n")
    ref = _file(engine, settings, raw, "ann@example.org")
    _approve(engine, settings, ref)
    privacy.erase(engine, privacy.Subject.of(email="ann@example.org"))
    for fmt, out in _exports(engine, db_url).items():
        assert "submitted by [erased]" not in out and "[erased] (" not in out, fmt
    assert "an unnamed contributor" in _exports(engine, db_url)["md"]
