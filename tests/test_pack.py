"""The evidence pack: a corpus filed and approved as in production, exported in every format.

The corpus: a named record; an anonymous one whose submitter also names themself in the body and
signs a follow-up; one not for publication; a late one; one with an e-mail address, phone numbers
and a postal address in its text; one approved and then withdrawn; one with an attachment and a
follow-up; one still waiting for review. The assertions are on the text that leaves the service.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, replace
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot import drafts, intake, pack
from bot.decisions import decide
from bot.review import Action
from bot.settings import Settings
from storage import repo
from storage.db import unit_of_work
from tests.conftest import make_settings
from tests.test_cli import one_clear_line, run

TITLE = "Outsourcing in the public sector: what worked & what didn't"
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE_RE = re.compile(r"(?:\+44|\b0)\s?\(?\d{2,4}\)?[\s-]?\d{3,4}[\s-]?\d{3,4}")
POSTCODE_RE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b")

# Never in the public pack, in any format: the anonymous and not-for-publication contributors,
# whatever was withdrawn or not yet approved, and the contact details written into the evidence.
NEVER_PUBLIC = [
    "Bob", "Hidden", "bob.hidden", "BOB HIDDEN",
    "Carol", "Secret", "NFP-MARKER",
    "Fay", "WITHDRAWN-MARKER",
    "Hal", "PENDING-MARKER",
    # The phone numbers with their spaces: bare digits like "7946" turn up in a timestamp's
    # microseconds (a CSV row's received_at failed this once in a few hundred runs).
    "7946 0000", "7700 900123", "496 0000", "SW1A", "High Street", "eve.private",
]


@dataclass
class Corpus:
    named: str
    anonymous: str
    not_for_publication: str
    late: str
    contacts: str
    withdrawn: str
    attachments: str
    pending: str


def _mail(i: int, name: str, addr: str, subject: str, fields: str, body: str,
          attachment: tuple[str, str] | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = f"{name} <{addr}>"
    m["To"] = "evidence@localhost"
    m["Subject"] = subject
    m["Message-ID"] = f"<pack-{i}@{addr.split('@')[1]}>"
    m.set_content(fields.strip() + "\n\n" + body.strip() + "\n")
    if attachment:
        m.add_attachment(attachment[1].encode(), maintype="text", subtype="plain", filename=attachment[0])
    return bytes(m)


def _file(engine: Engine, settings: Settings, raw: bytes, sender: str) -> str:
    intake.store_now(engine, drafts.draft(raw, envelope_from=sender, rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    assert filed.reference, filed
    return filed.reference


def _approve(engine: Engine, settings: Settings, ref: str) -> None:
    decide(engine, settings, reference=ref, action=Action.APPROVE, actor="cli:Sam Reviewer")


def _reply(engine: Engine, settings: Settings, ref: str, i: int, name: str, addr: str, body: str) -> None:
    raw = (f"From: {name} <{addr}>\r\nTo: evidence@localhost\r\nSubject: Re: [{ref}] Your evidence\r\n"
           f"Message-ID: <pack-reply-{i}@example.org>\r\n\r\n{body}\r\n").encode()
    intake.store_now(engine, drafts.draft(raw, envelope_from=addr, rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    assert (filed.outcome, filed.reference) == ("follow_up", ref)


def build_corpus(engine: Engine, settings: Settings) -> Corpus:
    late_settings = settings.model_copy(update={"inquiry_deadline": date(2020, 1, 1)})
    named = _file(engine, settings, _mail(
        1, "Ann Named", "ann.named@example.org", "Evidence: waste collection",
        "Public body: Kent County Council\nSupplier: Veolia\nProject: Waste collection\nService area: Waste\n"
        "Outcome: success\nContract value: £12,000,000\nSavings: £1.5m\nPeriod: 2016 to 2021\nPublish: named",
        "Collections became more reliable after the first year.\n\n"
        "Complaints fell by a third.\n\nThe council kept the right to set standards.",
    ), "ann.named@example.org")
    anonymous = _file(engine, settings, _mail(
        2, "Bob Hidden", "bob.hidden@example.org", "Evidence: payroll",
        "Public body: East Kent Hospitals University NHS Foundation Trust\nSupplier: Capita\n"
        "Project: Payroll\nService area: Payroll\nOutcome: failure\nPublish: anonymous",
        "I, Bob Hidden, worked in the payroll team when the service moved to the supplier.\n\n"
        "Staff were paid late for four months and Bob Hidden's team had to fix the errors by hand.\n\n"
        "Regards,\nBob Hidden",
    ), "bob.hidden@example.org")
    nfp = _file(engine, settings, _mail(
        3, "Carol Secret", "carol.secret@example.org", "Evidence: custody",
        "Public body: Thames Valley Police\nSupplier: G4S\nProject: Custody NFP-MARKER\nOutcome: mixed\n"
        "Publish: not for publication",
        "NFP-MARKER: this account is for the group only.",
    ), "carol.secret@example.org")
    late = _file(engine, late_settings, _mail(
        4, "Dan Late", "dan.late@example.org", "Evidence: fleet",
        "Public body: Hampshire and Isle of Wight Fire and Rescue Service\nSupplier: Babcock\nProject: Fleet\n"
        "Service area: Fleet\nOutcome: mixed\nPublish: named",
        "Vehicles were off the road for longer than before, but costs fell.\n\n"
        "Bob Hidden, who asked not to be named, saw the same in payroll.",  # named in someone else's evidence
    ), "dan.late@example.org")
    contacts = _file(engine, settings, _mail(
        5, "Eve Contact", "eve@example.org", "Evidence: benefits assessments",
        "Public body: Department for Work and Pensions\nSupplier: Atos\nProject: Assessments\n"
        "Service area: Benefits\nOutcome: failure\nPublish: named",
        "Assessments were late and often wrong.\n\n"
        "Call me on 020 7946 0000 or +44 7700 900123, or write to 12 High Street, London SW1A 1AA.\n\n"
        "You can also e-mail eve.private@example.net or ring (0161) 496 0000.",
    ), "eve@example.org")
    withdrawn = _file(engine, settings, _mail(
        6, "Fay Gone", "fay.gone@example.org", "Evidence: libraries",
        "Public body: Surrey County Council\nSupplier: Libraries Ltd\nOutcome: failure\nPublish: named",
        "WITHDRAWN-MARKER: opening hours were cut.",
    ), "fay.gone@example.org")
    attachments = _file(engine, settings, _mail(
        7, "Gus Files", "gus.files@example.org", "Evidence: transport ticketing",
        "Public body: West Midlands Combined Authority\nSupplier: Ticketer\nProject: Ticketing\n"
        "Service area: Transport\nOutcome: success\nPublish: named",
        "The new ticketing system worked from day one.\n\nSee the attached costings.",
        attachment=("costings.txt", "Costs were within budget. Ask me on 07700900123."),
    ), "gus.files@example.org")
    pending = _file(engine, settings, _mail(
        8, "Hal Pending", "hal.pending@example.org", "Evidence: PENDING-MARKER",
        "Public body: Leeds City Council\nOutcome: unknown\nPublish: named", "PENDING-MARKER prose.",
    ), "hal.pending@example.org")
    for ref in (named, anonymous, nfp, late, contacts, withdrawn, attachments):
        _approve(engine, settings, ref)
    _reply(engine, settings, attachments, 1, "Gus Files", "gus.files@example.org",
           "One more thing: the contract was extended to 2026.")
    _reply(engine, settings, anonymous, 2, "B. Hidden", "bob.hidden@example.org",
           "The backlog cleared in June.\r\n\r\nThanks, Bob")
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=withdrawn)
        assert sub is not None and sub.id is not None
        repo.update_submission(s, submission_id=sub.id, values={"status": "withdrawn"})
    return Corpus(named, anonymous, nfp, late, contacts, withdrawn, attachments, pending)


@pytest.fixture
def corpus(engine: Engine, db_url: str) -> Corpus:
    return build_corpus(engine, make_settings(db_url, EVIDENCE_INQUIRY_TITLE=TITLE))


def _settings(db_url: str) -> Settings:
    return make_settings(db_url, EVIDENCE_INQUIRY_TITLE=TITLE)


def _pack(engine: Engine, db_url: str, **kw: object) -> pack.Pack:
    return pack.collect(engine, settings=_settings(db_url), generated=date(2025, 6, 30), **kw)  # type: ignore[arg-type]


def _visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def assert_public(text: str) -> None:
    for s in NEVER_PUBLIC:
        assert s not in text, f"{s!r} leaked"
    assert not EMAIL_RE.search(text), EMAIL_RE.search(text)
    assert not PHONE_RE.search(text), PHONE_RE.search(text)
    assert not POSTCODE_RE.search(text), POSTCODE_RE.search(text)


def test_the_public_pack_in_html(engine: Engine, db_url: str, corpus: Corpus) -> None:
    p = _pack(engine, db_url)
    assert [r.reference for r in p.records] == [corpus.named, corpus.anonymous, corpus.late, corpus.contacts,
                                                corpus.attachments]
    html = pack.render(p, "html")
    assert_public(html)
    assert "<script" not in html.lower() and "javascript:" not in html.lower() and " on" + "click" not in html
    # The cover, contents and overview.
    assert html.count("<svg") == 3 and "<rect" in html
    assert "Outsourcing in the public sector: what worked &amp; what didn&#39;t" in html
    assert "Date of this pack</th><td>30 June 2025" in html
    assert "Submissions</th><td>5</td>" in html and "Named / anonymous</th><td>4 / 1</td>" in html
    assert "Late submissions</th><td>1</td>" in html
    for ref in (corpus.named, corpus.anonymous, corpus.attachments):
        assert f'<a href="#{ref}">' in html and f'<article class="record" id="{ref}">' in html
    # Headings, markers, numbered paragraphs, key facts, attachments, follow-ups.
    assert f"<h2>Written evidence submitted by Ann Named ({corpus.named})</h2>" in html
    assert f"<h2>Written evidence submitted by an anonymous contributor ({corpus.anonymous})</h2>" in html
    assert html.count("Late submission</span>") == 1
    named = html.split(f'id="{corpus.named}"')[1].split("</article>")[0]
    assert '<span class="num">1.</span> <span class="text">Collections became more reliable' in named
    assert '<span class="num">3.</span> <span class="text">The council kept' in named
    assert "<th scope=\"row\">Contract value</th><td>£12,000,000</td>" in named
    assert "<th scope=\"row\">Savings</th><td>£1,500,000</td>" in named
    anon = html.split(f'id="{corpus.anonymous}"')[1].split("</article>")[0]
    assert "I, [name removed], worked in the payroll team" in anon
    # The follow-up's sign-off ("Thanks, Bob") is not evidence: the parser leaves it out, name and all.
    assert "The backlog cleared in June." in anon and "Bob" not in anon and "Thanks," not in anon
    late = html.split(f'id="{corpus.late}"')[1].split("</article>")[0]
    assert "[name removed], who asked not to be named" in late
    contacts = html.split(f'id="{corpus.contacts}"')[1].split("</article>")[0]
    assert "Call me on [contact details removed]" in contacts
    att = html.split(f'id="{corpus.attachments}"')[1].split("</article>")[0]
    assert "costings.txt" in att and "bytes)" in att
    assert "the contract was extended to 2026." in att
    assert "Not for publication" not in _visible_text(html)
    # Print: A4 pages, each record on a new one.
    assert "@page { size: A4" in html and "page-break-before: always" in html


def test_counts_by_outcome_area_and_kind_of_body(engine: Engine, db_url: str, corpus: Corpus) -> None:
    p = _pack(engine, db_url)
    assert p.by_outcome == [("Success", 2), ("Failure", 2), ("Mixed", 1)]
    assert dict(p.by_service_area) == {"Waste": 1, "Payroll": 1, "Fleet": 1, "Benefits": 1, "Transport": 1}
    assert p.by_body_kind == [("Council", 1), ("NHS", 1), ("Fire and rescue", 1), ("Combined authority", 1),
                              ("Central government", 1)]
    assert p.period_start == p.period_end == date.today()
    top = p.charts[0].bars
    assert top[0].width == 320.0 and top[-1].width == 160.0


def test_the_public_pack_in_markdown(engine: Engine, db_url: str, corpus: Corpus) -> None:
    md = pack.render(_pack(engine, db_url), "md")
    assert_public(md)
    assert md.startswith("# Outsourcing in the public sector: what worked & what didn't\n")
    assert f"## Written evidence submitted by Ann Named ({corpus.named})" in md
    assert f"## Written evidence submitted by an anonymous contributor ({corpus.anonymous})" in md
    assert f"\n3. [Written evidence submitted by Dan Late ({corpus.late})](#{corpus.late}) (late)\n" in md
    assert md.count("**Late submission**") == 1
    assert "\n1. Collections became more reliable after the first year.\n\n2. Complaints fell by a third.\n" in md
    assert "| Contract value | £12,000,000 |" in md and "| Supplier | Veolia |" in md
    assert "| Council | 1 |" in md and "| Success | 2 |" in md
    assert "- costings.txt (" in md
    assert "I, \\[name removed\\], worked in the payroll team" in md
    assert "<script" not in md


def test_the_internal_pack_marks_what_is_not_for_publication(engine: Engine, db_url: str, corpus: Corpus) -> None:
    p = _pack(engine, db_url, include_unpublished=True)
    assert [r.reference for r in p.records] == [corpus.named, corpus.anonymous, corpus.not_for_publication,
                                                corpus.late, corpus.contacts, corpus.attachments]
    html = pack.render(p, "html")
    assert "Internal pack" in html and "NFP-MARKER" in html
    record = html.split(f'id="{corpus.not_for_publication}"')[1].split("</article>")[0]
    assert '<span class="marker nfp">Not for publication</span>' in record
    assert "Written evidence submitted by an anonymous contributor" in record
    # Still no names of those who asked to stay out of it, no contact details, nothing withdrawn.
    for s in ("Carol", "Bob", "WITHDRAWN-MARKER", "7946 0000"):
        assert s not in html
    assert not EMAIL_RE.search(html)
    md = pack.render(p, "md")
    assert "**NOT FOR PUBLICATION**" in md and "NFP-MARKER" in md


def test_csv_and_jsonl_from_the_command_line(db_url: str, corpus: Corpus) -> None:
    env = {"EVIDENCE_INQUIRY_TITLE": TITLE}
    out = run("export", "--format", "csv", "--status", "approved", db_url=db_url, env=env)
    assert out.returncode == 0, out.stderr
    assert_public(out.stdout)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["reference"] for r in rows] == [corpus.named, corpus.anonymous, corpus.late, corpus.contacts,
                                              corpus.attachments]
    by_ref = {r["reference"]: r for r in rows}
    assert by_ref[corpus.named]["submitter_name"] == "Ann Named" and by_ref[corpus.named]["submitter_email"] == ""
    assert by_ref[corpus.anonymous]["submitter_name"] == "" and by_ref[corpus.anonymous]["publication"] == "anonymous"
    assert by_ref[corpus.late]["late"] == "True" and by_ref[corpus.attachments]["attachment_names"] == "costings.txt"
    assert by_ref[corpus.anonymous]["public_body_kind"] == "nhs"

    # JSONL keeps its old default (every status) but the same rules: the pending record is in,
    # withdrawn and not-for-publication records are not, and nobody's address is.
    out = run("export", "--format", "jsonl", db_url=db_url, env=env)
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["reference"] for r in recs] == [corpus.named, corpus.anonymous, corpus.late, corpus.contacts,
                                              corpus.attachments, corpus.pending]
    assert_public(out.stdout.replace("Hal Pending", "").replace("PENDING-MARKER", ""))
    anon = next(r for r in recs if r["reference"] == corpus.anonymous)
    assert anon["submitter_name"] is None and anon["submitter_email"] is None and anon["message_id"] is None
    assert "[name removed]" in anon["body"] and anon["publication"] == "anonymous"
    att = next(r for r in recs if r["reference"] == corpus.attachments)["attachments"]
    assert att[0]["text"] == "Costs were within budget. Ask me on [contact details removed]."

    out = run("export", "--format", "jsonl", "--include-unpublished", db_url=db_url, env=env)
    assert corpus.not_for_publication in out.stdout and corpus.withdrawn not in out.stdout


def test_html_and_markdown_files_from_the_command_line(db_url: str, corpus: Corpus, tmp_path: Path) -> None:
    env = {"EVIDENCE_INQUIRY_TITLE": TITLE}
    target = tmp_path / "pack.html"
    out = run("export", "--format", "html", "-o", str(target), db_url=db_url, env=env)
    assert out.returncode == 0, out.stderr
    assert f"wrote {target} (5 record(s))" in out.stderr
    html = target.read_text(encoding="utf-8")
    assert_public(html)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    out = run("export", "--format", "md", db_url=db_url, env=env)
    assert out.returncode == 0 and out.stdout.startswith("# Outsourcing in the public sector")
    assert_public(out.stdout)
    out = run("export", "--format", "html", "--include-unpublished", db_url=db_url, env=env)
    assert "Not for publication" in out.stdout and corpus.not_for_publication in out.stdout


def test_an_empty_pack_is_a_valid_document(engine: Engine, db_url: str) -> None:
    html = pack.render(_pack(engine, db_url), "html")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "There is no approved evidence to include yet." in html
    assert "Submissions</th><td>0</td>" in html and "<script" not in html
    md = pack.render(_pack(engine, db_url), "md")
    assert "There is no approved evidence to include yet." in md
    out = run("export", "--format", "csv", db_url=db_url)
    assert out.returncode == 0 and out.stdout.strip() == ",".join(pack.CSV_COLUMNS)
    assert run("export", "--format", "jsonl", db_url=db_url).stdout == ""


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("--status", "withdrawn"), "withdrawn records are never exported"),
        (("--status", "aproved"), "unknown status 'aproved'"),
        (("-o", "/nonexistent/dir/pack.html"), "cannot write /nonexistent/dir/pack.html"),
    ],
)
def test_export_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], expect: str) -> None:
    db = f"sqlite:///{tmp_path}/x.db"
    run("db", "upgrade", db_url=db)
    assert expect in one_clear_line(run("export", "--format", "html", *args, db_url=db))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Kent County Council", "council"),
        ("London Borough of Barnet", "council"),
        ("City of London Corporation", "council"),
        ("East Kent Hospitals University NHS Foundation Trust", "nhs"),
        ("NHS Kent and Medway Integrated Care Board", "nhs"),
        ("Hampshire and Isle of Wight Fire and Rescue Service", "fire"),
        ("London Fire Brigade", "fire"),
        ("Thames Valley Police", "police"),
        ("Durham Constabulary", "police"),
        ("London Ambulance Service NHS Trust", "ambulance"),
        ("West Midlands Combined Authority", "combined_authority"),
        ("Greater Manchester Combined Authority", "combined_authority"),
        ("Department for Work and Pensions", "central_government"),
        ("Ministry of Justice", "central_government"),
        ("HM Revenue and Customs", "central_government"),
        ("Home Office", "central_government"),
        ("Driver and Vehicle Licensing Agency", "central_government"),
        ("Oasis Academy Trust", "other"),
        ("County Durham and Darlington Fire and Rescue Service", "fire"),
        ("Leeds Teaching Hospitals NHS Trust", "nhs"),
        ("Ofwat", "other"),
        (None, "other"),
        ("", "other"),
    ],
)
def test_kinds_of_public_body(name: str | None, kind: str) -> None:
    assert pack.classify_public_body(name) == kind


def test_a_name_that_is_only_an_address_is_not_printed_and_csv_cells_are_not_formulas() -> None:
    from bot.record import EvidenceRecord
    from storage.models import Submission

    rec = EvidenceRecord(reference="EV-000009", submitter_name="ann@example.org", submitter_email="ann@example.org",
                         supplier="=HYPERLINK(\"http://evil.example\",\"x\")", body="Fine.")
    assert pack.redact_record(rec).submitter_name is None
    assert pack.redact_record(replace(rec, submitter_name="Ann <ann@example.org>")).submitter_name == "Ann"
    r = pack._pack_record(Submission(id=9, kind="evidence", status="approved"), rec, [])
    assert r.heading == "Written evidence submitted by an unnamed contributor (EV-000009)"
    p = pack.Pack(inquiry_title=TITLE, generated=date(2025, 6, 30), status="approved", include_unpublished=False,
                  records=[r])
    (row,) = csv.DictReader(io.StringIO(pack.render_csv(p)))
    assert row["supplier"].startswith("'=HYPERLINK") and "example.org" not in pack.render_csv(p)
