"""The e-mail parser against the corpus in tests/corpus, plus hostile and malformed input."""

from __future__ import annotations

import base64
import email
import hashlib
import io
import random
import time
from datetime import UTC, datetime
from email import policy
from pathlib import Path
from typing import Any

import pytest

from bot.parsing.attachments import Limits, decode_text, extract_text
from bot.parsing.classify import automatic_reason, follow_up_reference
from bot.parsing.cleanup import clean_body
from bot.parsing.email_message import parse_email
from bot.parsing.html import html_to_text
from bot.record import EvidenceRecord, Kind, Outcome

CORPUS = Path(__file__).parent / "corpus"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def parse(name: str, **kw: Any) -> EvidenceRecord:
    return parse_email((CORPUS / name).read_bytes(), **kw)


def attachment_bytes(name: str, filename: str) -> bytes:
    """The decoded bytes of an attachment, found independently of the parser under test."""
    msg = email.message_from_bytes((CORPUS / name).read_bytes(), policy=policy.default)
    for part in msg.walk():
        if part.get_filename() == filename:
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            return data
    raise AssertionError(f"{filename} not in {name}")


# Per corpus file: record attributes that must equal, substrings the body must / must not contain.
EXPECTED: dict[str, dict[str, Any]] = {
    "01_plain_template_signature.eml": dict(
        fields=dict(kind=Kind.EVIDENCE, submitter_name="Joy Okafor", submitter_email="j.okafor@gmail.com",
                    title="Hertfordshire highways contract", project="Highways maintenance term contract",
                    public_body="Hertfordshire County Council", supplier="Ringway Jacobs",
                    outcome=Outcome.FAILURE, contract_value_gbp=320_000_000, confidential=False,
                    message_id="<CAF3n9xL0q8Zk2=pY7w@mail.gmail.com>",
                    received_at=datetime(2026, 3, 3, 9, 14, 2, tzinfo=UTC)),
        has=["Contract value: £320m", "Period: 2012–2022", '40% of a sample of "completed" jobs'],
        lacks=["Kind regards", "Retired highways inspector", "07700 900123", "Sent from my iPhone"],
    ),
    "02_outlook_html_disclaimer.eml": dict(
        fields=dict(kind=Kind.EVIDENCE, submitter_name="Pritchard, Gareth",
                    submitter_email="gareth.pritchard@swansea.gov.uk", title="Swansea ICT shared service",
                    project="ICT shared service", public_body="City and County of Swansea",
                    supplier="Northgate", outcome=Outcome.SUCCESS, savings_gbp=1_200_000,
                    confidential=False, automatic_reason=None),
        has=["Savings: £1.2m a year", "helpdesk now answers within the hour"],
        lacks=["confidential", "received this email in error", "views expressed", "consider the environment"],
    ),
    "03_welsh_latin1_encoded_words.eml": dict(
        fields=dict(submitter_name="Siôn ap Dafydd", submitter_email="sion.apdafydd@btinternet.com",
                    title="Gofal cartref – Cyngor Sir Gâr home care", project="Home care framework",
                    public_body="Cyngor Sir Gâr (Carmarthenshire County Council)",
                    supplier="Allied Healthcare", outcome=Outcome.FAILURE, confidential=False),
        has=["Mrs Siân Hughes", "Llandeilo"],
        lacks=["\ufffd", "=E2"],
    ),
    "04_windows1252_smart_quotes.eml": dict(
        fields=dict(submitter_email="tom.ashworth@outlook.com", title="Prison maintenance - Carillion",
                    project="Prison facilities management", public_body="Ministry of Justice",
                    supplier="Carillion", outcome=Outcome.FAILURE),
        has=["“government company”", "‘never going to make money’", "Supplier – Carillion"],
        lacks=["\ufffd", "\x93"],
    ),
    "05_unknown_charset.eml": dict(
        fields=dict(submitter_name="Dr. Priya Raman", submitter_email="praman@kcl.ac.uk",
                    title="NHS Shared Business Services – payroll", supplier="Sopra Steria",
                    public_body="NHS Shared Business Services", outcome=Outcome.MIXED, savings_gbp=4_000_000),
        has=["savings of £4m", "The trust’s finance team"],
        lacks=["\ufffd", "Â£"],
    ),
    "06_stub_plain_html_table.eml": dict(
        fields=dict(submitter_email="research@weownit.org.uk", title="probation services",
                    project="Transforming Rehabilitation", public_body="Ministry of Justice",
                    supplier="Community Rehabilitation Companies (Interserve, Sodexo)",
                    outcome=Outcome.FAILURE, contract_value_gbp=3_700_000_000),
        has=["Project: Transforming Rehabilitation", "Contract value: £3.7bn", "reoffending rose",
             "NAO report (https://www.nao.org.uk/reports/transforming-rehabilitation/)",
             "North West | 1,200 | 31,000"],
        lacks=["cannot display", "Evidence form", "<"],
    ),
    "07_html_only_tracking.eml": dict(
        fields=dict(submitter_email="mark@ellis-consulting.co.uk", project="Leisure centre management",
                    public_body="London Borough of Lewisham", supplier="Fusion Lifestyle",
                    outcome=Outcome.FAILURE),
        has=["roof & plant", "- Swimming lessons cancelled", "- Staff moved to other sites",
             "Council minutes, May 2024 (https://lewisham.gov.uk/minutes/2024-05)", "eighteen months"],
        lacks=["TRACKING-SCRIPT", "font-family", "Preheader", "NOSCRIPT", "open.gif", "alert", "track()"],
    ),
    "08_markdown_bold_keys.eml": dict(
        fields=dict(title="NHS diagnostics", project="Community diagnostic centres",
                    public_body="NHS England", supplier="InHealth", outcome=Outcome.SUCCESS,
                    submitter_email="ruth.campbell@proton.me"),
        has=["**Supplier:** InHealth", "from 14 weeks to 4 weeks"],
        lacks=[],
    ),
    "09_pdf_attachment.eml": dict(
        fields=dict(title="Evidence - revenues and benefits (PDF attached)",
                    project="Revenues and benefits administration",
                    public_body="Rhondda Cynon Taf County Borough Council", supplier="Capita",
                    outcome=Outcome.FAILURE, contract_value_gbp=12_500_000),
        has=["Please see the attached briefing"],
        lacks=["Capita"],  # the fields come from the PDF; the body is only the covering note
        attachments=[("RCT briefing.pdf", "application/pdf", "Backlogs of benefit claims doubled")],
    ),
    "10_docx_attachment.eml": dict(
        fields=dict(title="Waste contract evidence", project="Waste and street cleansing contract",
                    public_body="London Borough of Bromley", supplier="Veolia", outcome=Outcome.MIXED),
        has=["Our evidence is in the attached document."],
        lacks=["Veolia"],
        attachments=[("Bromley waste.docx", DOCX_TYPE, "Public body: London Borough of Bromley")],
    ),
    "11_txt_attachment_rfc2231_corrupt_pdf.eml": dict(
        fields=dict(public_body="Betsi Cadwaladr University Health Board", supplier="Mitie"),
        has=["Notes from the committee are attached."],
        lacks=["Mitie"],
        attachments=[("nodiadau pwyllgor – café.txt", "text/plain", "Siân Roberts (GMB)"),
                     ("letter.pdf", "application/pdf", None)],
    ),
    "12_attached_rfc822_forward.eml": dict(
        fields=dict(submitter_name="Cardiff Unison", submitter_email="unison@cardiff-unison.example.org",
                    title="Facilities contract - staff briefing", public_body="Cardiff Council",
                    project="Facilities management", supplier="Amey", outcome=Outcome.FAILURE),
        has=["Forwarding the council's own briefing",
             'Forwarded message from Hughes, Alun <alun.hughes@cardiff.gov.uk>, subject "Facilities contract',
             "brought back in house from April"],
        lacks=["--inner-b", "Content-Type"],
        attachments=[("Facilities contract - staff briefing.eml", "message/rfc822", "Supplier: Amey"),
                     ("timeline.txt", "text/plain", "2024 improvement notice")],
    ),
    "13_gmail_inline_forward.eml": dict(
        fields=dict(submitter_name="Helen Brooks", submitter_email="helenbrooks1970@gmail.com",
                    title="School meals contract", public_body="Norfolk County Council",
                    supplier="Eden Foodservice", outcome=Outcome.FAILURE),
        has=["I think you should see this", "Forwarded message from Head Teacher <head@stmarys.sch.uk>",
             "central kitchen 40 miles away", "Mrs A. Clarke"],
        lacks=["---------- Forwarded message", "To: Parents", "Date: Mon, 6 Oct 2025"],
    ),
    "14_apple_mail_forward.eml": dict(
        fields=dict(submitter_email="dchen@icloud.com", title="Bus contract", supplier="Go South Coast",
                    public_body="Wiltshire Council"),
        has=["Forwarded message from Transport Team <transport@wiltshire.gov.uk>",
             "no operator bid for the contract at the price"],
        lacks=["Begin forwarded message", "To: David Chen"],
    ),
    "15_outlook_fw_original_message.eml": dict(
        fields=dict(submitter_name="Baker, Sue", submitter_email="sue.baker@nhs.net",
                    title="Patient transport performance", project="Non-emergency patient transport",
                    supplier="E-zec Medical", outcome=Outcome.MIXED),
        has=["For your inquiry.", "Forwarded message from Contracts Team <contracts@nhs.net>",
             "complaints about missed discharges doubled"],
        lacks=["-----Original Message-----", "Sent: 02 March 2026"],
    ),
    "16_gmail_reply_quoted.eml": dict(
        fields=dict(kind=Kind.EVIDENCE, title="Council tax collection", public_body="Moray Council",
                    supplier="Civica", outcome=Outcome.SUCCESS),
        has=["Morag asked me to send this on", "Collection rates went up"],
        lacks=["wrote:", "council tax figures", ">"],
    ),
    "17_outlook_reply_header_block.eml": dict(
        fields=dict(title="Parking enforcement", supplier="NSL", public_body="Brighton & Hove City Council"),
        has=["Wardens were paid bonuses per ticket"],
        lacks=["Neighbourhood Forum", "Please send your parking stories", "Sent: 21 March", "_____"],
    ),
    "18_out_of_office.eml": dict(
        fields=dict(kind=Kind.AUTOMATIC, automatic_reason="Auto-Submitted: auto-replied",
                    submitter_email="rhian.jones@powys.gov.uk"),
        has=["out of the office"],
        lacks=[],
    ),
    "19_bounce_mailer_daemon.eml": dict(
        fields=dict(kind=Kind.AUTOMATIC, submitter_email="mailer-daemon@mx.evidence.example.org",
                    title="Undelivered Mail Returned to Sender", attachments=[]),
        has=["User unknown"],
        lacks=["Reporting-MTA", "Final-Recipient"],
    ),
    "20_bulk_newsletter.eml": dict(
        fields=dict(kind=Kind.AUTOMATIC, automatic_reason="Precedence: bulk"),
        has=["three councils"],
        lacks=[],
    ),
    "21_follow_up_subject_ref.eml": dict(
        fields=dict(kind=Kind.FOLLOW_UP, in_reply_to_reference="EV-000042",
                    title="Thank you for your evidence", submitter_email="j.okafor@gmail.com",
                    automatic_reason=None),
        has=["extended in 2021 without a tender"],
        lacks=["Your reference is", "wrote:"],
    ),
    "22_follow_up_in_reply_to.eml": dict(
        fields=dict(kind=Kind.FOLLOW_UP, in_reply_to_reference="EV-000042",
                    title="Thank you for your evidence"),
        has=["Please correct the savings figure"],
        lacks=[],
    ),
    "23_confidential_request.eml": dict(
        fields=dict(kind=Kind.EVIDENCE, confidential=True, public_body="Department for Work and Pensions",
                    supplier="Serco", outcome=Outcome.FAILURE, title="Call centre contract"),
        has=["Please do not publish my name", "average handling time"],
        lacks=[],
    ),
    "24_related_inline_image.eml": dict(
        fields=dict(title="Library service evidence", project="Library service",
                    public_body="Bradford Council", attachments=[]),
        has=["transferred to a trust in 2025"],
        lacks=["iVBOR", "cid:"],
    ),
    # -- free prose (issue 11) --------------------------------------------------------------------
    # Outcome said in words, the strongest statement winning over incidental ones.
    "25_prose_quiet_success.eml": dict(
        fields=dict(outcome=Outcome.SUCCESS, supplier="Zellis",
                    public_body="Tameside Metropolitan Borough Council"),
        has=["single\npoint of failure", "it was a quiet success"],
        lacks=["Dear reviewers", "Kind regards", "Denise Holt"],
    ),
    "26_prose_results_mixed.eml": dict(
        fields=dict(outcome=Outcome.MIXED, public_body="Swale Borough Council", supplier="Civica"),
        has=["The results were mixed."],
        lacks=["Hi all", "Thanks,", "Mike"],
    ),
    "27_prose_back_to_paper.eml": dict(
        fields=dict(outcome=Outcome.FAILURE, public_body="Hull University Teaching Hospitals NHS Trust"),
        has=["went back to paper rotas", "calls it a success story"],
        lacks=["Good evening", "Best wishes", "Sam"],
    ),
    "28_prose_headline_not_a_success.eml": dict(
        fields=dict(outcome=Outcome.FAILURE, public_body="Birmingham City Council", supplier="Oracle",
                    title="Not a success: the Oracle rollout in Birmingham"),
        has=["its own success measures", "£19m"],
        lacks=["&pound;"],
    ),
    # Money in words, wrapped across lines, in GBP, or with a figure broken at a comma.
    "29_money_wrapped_worth.eml": dict(
        fields=dict(contract_value_gbp=30_000_000, savings_gbp=450_000, supplier="Amey",
                    public_body="Lancashire County Council", outcome=Outcome.FAILURE),
        has=["worth\n£30m"],
        lacks=[],
    ),
    "30_money_in_words.eml": dict(
        fields=dict(contract_value_gbp=30_000_000, savings_gbp=500_000, supplier="Mitie"),
        has=["thirty million pounds", "half a million pounds a year"],
        lacks=[],
    ),
    "31_money_split_figures.eml": dict(
        fields=dict(contract_value_gbp=3_250_000, savings_gbp=1_200_000, public_body="Cardiff Council",
                    supplier="Mears"),
        has=["GBP 3.25\nmillion", "£1,200,\n000"],
        lacks=[],
    ),
    # The public body named only in the subject line.
    "32_subject_only_kent_cc.eml": dict(
        fields=dict(public_body="Kent County Council", title="Kent CC home care", outcome=Outcome.FAILURE),
        has=["It has been a disaster."],
        lacks=[],
    ),
    "33_subject_only_moj.eml": dict(
        fields=dict(public_body="MoJ", supplier="G4S", outcome=Outcome.FAILURE,
                    title="the MoJ tagging contract"),
        has=["Passing this on", "tagging people who were dead"],
        lacks=[],
    ),
    "34_subject_only_nhs_lothian.eml": dict(
        fields=dict(public_body="NHS Lothian", supplier="ISS", outcome=Outcome.FAILURE),
        has=["It was not a success."],
        lacks=["Hello,"],
    ),
    # Greetings and sign-offs are not evidence.
    "35_greeting_dear_reviewers.eml": dict(
        fields=dict(public_body="Suffolk County Council", outcome=Outcome.SUCCESS),
        has=["employee-owned mutual"],
        lacks=["Dear reviewers", "Best wishes", "Anne-Marie Doyle", "Branch secretary"],
    ),
    "36_greeting_hi_all_inline.eml": dict(
        fields=dict(public_body="Leeds City Council", supplier="Biffa"),
        has=["Our bin collections in Leeds CC went to Biffa"],
        lacks=["Hi all", "Thanks, Raj"],
    ),
    "37_greeting_to_whom.eml": dict(
        fields=dict(outcome=Outcome.FAILURE),
        has=["I am a kidney patient.", "It was a failure from the first week."],
        lacks=["To whom it may concern", "Thank you for your time", "Yours faithfully", "Okonkwo"],
    ),
    # Follow-ups: which record each is for (the CLI's `reference` is checked in test_parse_prose.py).
    "38_follow_up_correction.eml": dict(
        fields=dict(kind=Kind.FOLLOW_UP, in_reply_to_reference="EV-000107",
                    title="Thank you for your evidence"),
        has=["worth £30m in total, not per year"],
        lacks=["wrote:", "Your reference is"],
    ),
    "39_follow_up_outlook_references.eml": dict(
        fields=dict(kind=Kind.FOLLOW_UP, in_reply_to_reference="EV-000311"),
        has=["cabinet papers for March 2026"],
        lacks=["-----Original Message-----", "Sent: 12 April"],
    ),
    "40_follow_up_withdraw.eml": dict(
        fields=dict(kind=Kind.FOLLOW_UP, in_reply_to_reference="EV-000058", title="EV-000058 received"),
        has=["hold off using what I sent"],
        lacks=[],
    ),
    # Public bodies by short forms and names without a type word, from the gazetteer.
    "41_gazetteer_lb_barnet.eml": dict(
        fields=dict(public_body="London Borough of Barnet", supplier="Capita", contract_value_gbp=320_000_000,
                    outcome=Outcome.FAILURE),
        has=["LB Barnet handed"],
        lacks=[],
    ),
    "42_gazetteer_stockport_mbc.eml": dict(
        fields=dict(public_body="Stockport Metropolitan Borough Council", outcome=Outcome.FAILURE),
        has=["Stockport MBC let parking enforcement to NSL."],
        lacks=["Sent from my iPhone"],
    ),
    "43_gazetteer_glasgow_board.eml": dict(
        fields=dict(public_body="NHS Greater Glasgow and Clyde"),
        has=["under a PFI deal"],
        lacks=[],
    ),
}


def test_every_corpus_file_has_expectations() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus(name: str) -> None:
    exp = EXPECTED[name]
    rec = parse(name)
    for attr, value in exp["fields"].items():
        assert getattr(rec, attr) == value, f"{name}: {attr}"
    assert rec.body
    for s in exp["has"]:
        assert s in rec.body, f"{name}: body lacks {s!r}"
    for s in exp["lacks"]:
        assert s not in rec.body, f"{name}: body has {s!r}"
    assert rec.channel == "email" and rec.reference is None and rec.status is None
    assert rec.summary and len(rec.summary) <= 600
    if rec.received_at is not None:
        assert rec.received_at.tzinfo is not None and rec.received_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    if "attachments" in exp:
        got = [(a.filename, a.content_type) for a in rec.attachments]
        assert got == [(f, t) for f, t, _ in exp["attachments"]]
        for att, (filename, _, text) in zip(rec.attachments, exp["attachments"], strict=True):
            if att.content_type != "message/rfc822":
                data = attachment_bytes(name, filename)
                assert att.size == len(data)
                assert att.sha256 == hashlib.sha256(data).hexdigest()
            if text is None:
                assert att.text is None
            else:
                assert att.text and text in att.text
    rec.to_json()  # the JSON shape must build for every record


def test_pinned_attachment_digests() -> None:
    """The digests the store will see, pinned so a regenerated corpus or a decoding change shows up."""
    pdf = parse("09_pdf_attachment.eml").attachments[0]
    assert (pdf.size, pdf.sha256) == (952, "e2f4fb4346f2640b50f82fb59f5ff1f261ea5b0de9cc07a160067579197b4e11")
    txt, bad = parse("11_txt_attachment_rfc2231_corrupt_pdf.eml").attachments
    assert (txt.size, txt.sha256) == (263, "7a7ec21e79985752a6d5b1055b15a6e331ca7ac0391acc02bd110d639cf7d620")
    assert (bad.size, bad.sha256) == (76, "05a90cac446adb48dbd17da68f9687fe5f9a1d67dfb46ddce9b01dc38cc308ea")


def test_corrupt_pdf_gives_a_warning_not_an_error() -> None:
    rec = parse("11_txt_attachment_rfc2231_corrupt_pdf.eml")
    assert any("letter.pdf" in w for w in rec.parse_warnings)


def test_given_received_at_and_envelope_win() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    rec = parse("01_plain_template_signature.eml", received_at=when)
    assert rec.received_at == when
    assert parse("01_plain_template_signature.eml", envelope_from="").kind == Kind.AUTOMATIC


def test_other_reference_prefix() -> None:
    rec = parse("21_follow_up_subject_ref.eml", reference_prefix="XY")
    assert rec.kind == Kind.EVIDENCE and rec.in_reply_to_reference is None
    assert rec.title == "[EV-000042] Thank you for your evidence"


# -- classification ------------------------------------------------------------------------------------


def _msg(headers: str, body: str = "hello\n") -> email.message.Message:
    return email.message_from_string(headers.strip() + "\n\n" + body)


@pytest.mark.parametrize(
    ("headers", "envelope", "auto"),
    [
        ("From: a@b.org\nSubject: hi", None, False),
        ("From: a@b.org\nAuto-Submitted: no", None, False),
        ("From: a@b.org\nX-Auto-Response-Suppress: All", None, False),
        ("From: a@b.org\nSubject: Out of office hours care contract", None, False),
        ("From: a@b.org\nAuto-Submitted: auto-generated", None, True),
        ("From: a@b.org\nPrecedence: junk", None, True),
        ("From: a@b.org\nPrecedence: list", None, True),
        ("From: a@b.org\nPrecedence: auto_reply", None, True),
        ("From: a@b.org\nX-Autoreply: yes", None, True),
        ("From: a@b.org\nX-Autorespond: yes", None, True),
        ("From: a@b.org\nList-Id: <outsourcing.lists.example.org>", None, True),
        ("From: a@b.org", "<>", True),
        ("From: a@b.org", "", True),
        ("From: a@b.org\nReturn-Path: <>", None, True),
        ("From: MAILER-DAEMON@mx.example.org", "bounces@x.org", True),
        ("From: Postmaster <postmaster@example.org>", None, True),
        ("From: a@b.org\nContent-Type: multipart/report; boundary=x", None, True),
        ("From: a@b.org\nSubject: Automatic reply: your evidence", None, True),
        ("From: a@b.org\nSubject: Out of Office: Re: evidence", None, True),
        ("From: a@b.org\nSubject: Out of office", None, True),
    ],
)
def test_automatic_reason(headers: str, envelope: str | None, auto: bool) -> None:
    assert (automatic_reason(_msg(headers), envelope) is not None) is auto


@pytest.mark.parametrize(
    ("headers", "ref"),
    [
        ("Subject: Re: [EV-000042] Thanks", "EV-000042"),
        ("Subject: RE: ev-000042 more", "EV-000042"),
        ("Subject: Re: EV-42 too short", None),
        ("Subject: Re: hi\nIn-Reply-To: <ack.EV-000042.abc@evidence.example.org>", "EV-000042"),
        ("Subject: Re: hi\nReferences: <a@b> <ack.EV-001234.x.y@h>\n <c@d>", "EV-001234"),
        ("Subject: Re: hi\nIn-Reply-To: <EV-000042@someone-else.org>", None),
        ("Subject: Re: hi\nIn-Reply-To: <back.EV-000042.1@h>", None),
        ("Subject: hello", None),
    ],
)
def test_follow_up_reference(headers: str, ref: str | None) -> None:
    assert follow_up_reference(_msg("From: a@b.org\n" + headers), "EV") == ref


# -- HTML ----------------------------------------------------------------------------------------------


def test_html_to_text() -> None:
    html = """<html><head><title>T</title><style>p {color: red}</style></head><body>
    <p>First&nbsp;para &amp; more</p><div hidden>secret</div><span style="DISPLAY: none">gone</span>
    <p>Link <a href="https://x.org/a">here</a>, <a href="https://x.org">x.org</a>,
       <a href="mailto:a@b.org">a@b.org</a>, <a href="javascript:void(0)" onclick="evil()">js</a></p>
    <ol><li>one</li><li>two</li></ol>
    <table><tr><td>Supplier:</td><td>Capita</td></tr><tr><td>a</td><td>b</td><td>c</td></tr></table>
    <script>var x = "<p>no</p>";</script><svg><text>vector</text></svg><template>tpl</template>
    <p>Line one<br>line two</p><img src="https://t.example/p.gif" width="1" height="1"></body></html>"""
    assert html_to_text(html) == (
        "First para & more\n\n"
        "Link here (https://x.org/a), x.org, a@b.org, js\n\n"
        "- one\n- two\n\n"
        "Supplier: Capita\na | b | c\n\n"
        "Line one\nline two"
    )


def test_html_to_text_survives_broken_markup() -> None:
    assert html_to_text("<p>open <b>bold <table><tr><td>cell") == "open bold\n\ncell"
    assert html_to_text("<div style='display:none'>never closed") == ""
    assert html_to_text("") == ""
    assert "x" in html_to_text("<<<>>>x</p></div></table>")


# -- cleanup -------------------------------------------------------------------------------------------


def test_clean_body_keeps_evidence_after_sign_off_words() -> None:
    text = "Thanks\n\nSupplier: Capita\nThe audit found failures."
    assert clean_body(text) == text


def test_clean_body_signature_with_evidence_is_kept() -> None:
    text = "Hello\n\nKind regards,\nJane\nSupplier: Capita\nOutcome: failure"
    assert "Supplier: Capita" in clean_body(text)


def test_clean_body_dash_signature_and_disclaimer() -> None:
    text = (
        "The contract failed.\n\n-- \nJane Smith\nUnison\n\n"
        "The information contained in this e-mail is intended only for the addressee."
    )
    assert clean_body(text) == "The contract failed."


def test_clean_body_bottom_posted_reply() -> None:
    text = "On Tue, 3 Mar 2026 at 10:00, X <x@y.org>\nwrote:\n> old\n> stuff\n\nMy new evidence."
    assert clean_body(text) == "My new evidence."


@pytest.mark.parametrize(
    ("name", "summary_has"),
    [("09_pdf_attachment.eml", "Backlogs of benefit claims doubled"),
     ("10_docx_attachment.eml", "Missed collections rose sharply in the first year")],
)
def test_summary_under_a_covering_note_comes_from_the_attachment(name: str, summary_has: str) -> None:
    """"Please see the attached briefing" tells a reviewer nothing: the summary is the attachment's."""
    rec = parse(name)
    assert rec.summary is not None and summary_has in rec.summary
    assert "attached" not in rec.summary.lower()
    assert rec.body is not None and "attached" in rec.body  # the body itself is still the covering note


def test_a_sender_name_longer_than_anyones_is_cut() -> None:
    raw = ('From: "' + "Ann " * 600 + '" <ann@example.org>\r\nSubject: Evidence\r\n\r\nIt failed.\r\n').encode()
    rec = parse_email(raw)
    assert rec.submitter_name is not None and len(rec.submitter_name) <= 200
    assert rec.submitter_name.startswith("Ann Ann") and rec.submitter_email == "ann@example.org"
    assert any("cut to 200" in w for w in rec.parse_warnings)


def test_clean_body_reply_pointing_below_keeps_the_history() -> None:
    """"See below" and nothing else: the quoted history is the evidence, not noise to drop."""
    text = (
        "Yes, see below - this is what I sent to my MP last year.\n\nKind regards,\nTom\n\n"
        "On Mon, 3 Mar 2025 at 10:00, Tom <tom@example.org> wrote:\n"
        "> The fleet contract between Northshire Fire and Rescue Service and\n"
        "> Babcock was a success.\n>\n> >> an older quote\n"
    )
    out = clean_body(text)
    assert out.startswith("Yes, see below - this is what I sent to my MP last year.")
    assert "On Mon, 3 Mar 2025 at 10:00, Tom <tom@example.org> wrote:" in out
    assert "The fleet contract between Northshire Fire and Rescue Service and Babcock was a success." in " ".join(
        out.split())
    assert "an older quote" in out and ">" not in out.replace("<tom@example.org>", "")
    outlook = ("Details below.\n\n-----Original Message-----\nFrom: Tom\nSent: Monday\nTo: MP\n"
               "Subject: Payroll\n\nThe payroll contract failed.")
    assert clean_body(outlook) == ('Details below.\n\nEarlier message from Tom, subject "Payroll":\n\n'
                                   "The payroll contract failed.")
    # New text of its own: the history stays out, as before.
    assert clean_body("The contract failed in 2019, as below.\n" + "More of my own evidence. " * 20
                      + "\n\nOn Mon, X <x@y.org> wrote:\n> old").count("old") == 0


def test_clean_body_reply_pointing_below_is_parsed_as_evidence() -> None:
    raw = (b"From: Tom <tom@example.org>\r\nTo: evidence@localhost\r\nSubject: Re: Call for evidence\r\n\r\n"
           b"See my email below.\r\n\r\nOn Mon, 3 Mar 2025 at 10:00, Tom <tom@example.org> wrote:\r\n"
           b"> The fleet contract between Northshire Fire and Rescue Service and Babcock\r\n"
           b"> (\xc2\xa34.5m) was a success.\r\n")
    rec = parse_email(raw)
    assert rec.public_body == "Northshire Fire and Rescue Service"
    assert rec.supplier == "Babcock" and rec.outcome == Outcome.SUCCESS


def test_clean_body_original_message_in_a_reply_is_cut() -> None:
    text = "New point.\n\n-----Original Message-----\nFrom: a\nSent: b\nTo: c\nSubject: d\n\nold"
    assert clean_body(text) == "New point."
    assert "old" in clean_body(text, forwarded=True)


# -- attachments ---------------------------------------------------------------------------------------


def test_extract_text_plain_charset_detection() -> None:
    text, warning = extract_text("Caerdydd – café £5".encode("cp1252"), content_type="text/plain",
                                 filename="a.txt")
    assert warning is None and text is not None and "café" in text
    assert decode_text(b"caf\xc3\xa9", "x-unknown-8bit") == "café"
    assert decode_text(b"\x93q\x94", "iso-8859-1") == "“q”"


def test_extract_text_limits() -> None:
    big = b"a" * 2000
    text, warning = extract_text(big, content_type="text/plain", filename=None, limits=Limits(max_bytes=1000))
    assert text is None and warning and "limit" in warning
    text, warning = extract_text(big, content_type="text/plain", filename=None, limits=Limits(max_chars=100))
    assert text == "a" * 100 and warning


def test_extract_text_unknown_and_broken() -> None:
    assert extract_text(b"\x89PNG", content_type="image/png", filename="x.png") == (None, None)
    for ctype, fn in (("application/pdf", "x.pdf"), (DOCX_TYPE, "x.docx")):
        text, warning = extract_text(b"garbage" * 10, content_type=ctype, filename=fn)
        assert text is None and warning


def test_encrypted_pdf() -> None:
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(100, 100)
    try:
        w.encrypt("secret", algorithm="RC4-128")
    except Exception:  # noqa: BLE001 - no crypto backend: nothing to test
        pytest.skip("pypdf cannot encrypt here")
    buf = io.BytesIO()
    w.write(buf)
    text, warning = extract_text(buf.getvalue(), content_type="application/pdf", filename="s.pdf")
    assert text is None and warning and "encrypted" in warning


# -- hostile input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_garbage_never_raises(seed: int) -> None:
    rng = random.Random(seed)
    raw = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 5000)))
    rec = parse_email(raw)
    assert isinstance(rec, EvidenceRecord)
    rec.to_json()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_truncated_corpus_never_raises(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    for cut in (10, len(raw) // 3, len(raw) // 2, len(raw) - 7):
        parse_email(raw[:cut]).to_json()


def test_bad_base64_and_unknown_charset() -> None:
    raw = (
        b"From: x@y.org\nSubject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n"
        b"--B\nContent-Type: text/plain; charset=iso-8859-99\nContent-Transfer-Encoding: base64\n\n"
        b"U3VwcGxpZXI6IENhcGl0YQ=!!*&^\n"
        b"--B\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\n"
        b"Content-Transfer-Encoding: base64\n\n%%%%not base64%%%%\n--B--\n"
    )
    rec = parse_email(raw)
    assert rec.body is not None and "Supplier" in rec.body
    assert rec.attachments and rec.attachments[0].filename == "a.pdf"
    assert rec.parse_warnings


def test_deep_nesting_never_raises() -> None:
    inner = b"From: a@b.org\nSubject: deep\n\nBottom text\n"
    for i in range(8):
        inner = (
            b"From: l%d@b.org\nSubject: level\nMIME-Version: 1.0\n" % i
            + b"Content-Type: multipart/mixed; boundary=Z%d\n\n" % i
            + b"--Z%d\nContent-Type: message/rfc822\n\n" % i + inner + b"\n--Z%d--\n" % i
        )
    rec = parse_email(inner)
    assert any("nested deeper" in w for w in rec.parse_warnings)
    parts = b"".join(b"--M\nContent-Type: multipart/mixed; boundary=M\n\n" for _ in range(300))
    parse_email(b"From: a@b.org\nContent-Type: multipart/mixed; boundary=M\n\n" + parts).to_json()


def test_big_attachment_is_listed_not_read_and_fast() -> None:
    blob = b"%PDF-1.4\n" + bytes(20 * 1024 * 1024)
    raw = (
        b"From: x@y.org\nSubject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n"
        b"--B\nContent-Type: text/plain\n\nSee attached.\n"
        b"--B\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=big.pdf\n"
        b"Content-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(blob)
        + b"--B--\n"
    )
    start = time.monotonic()
    rec = parse_email(raw)
    assert time.monotonic() - start < 10
    (att,) = rec.attachments
    assert att.size == len(blob) and att.text is None
    assert att.sha256 == hashlib.sha256(blob).hexdigest()
    assert any("big.pdf" in w for w in rec.parse_warnings)


def test_huge_html_body_is_fast() -> None:
    html = b"<p>" + b"<b>word</b> " * 1_500_000 + b"</p>"
    raw = b"From: x@y.org\nSubject: big\nContent-Type: text/html; charset=utf-8\n\n" + html
    start = time.monotonic()
    rec = parse_email(raw)
    assert time.monotonic() - start < 8
    assert rec.body and rec.body.startswith("word word")


def test_pasted_mail_without_fwd_subject_is_kept() -> None:
    raw = (
        b"From: Ann <ann@example.org>\nSubject: Email from the council\n\n"
        b"Here is what the council sent me.\n\n"
        b"From: Housing Team <housing@example.gov.uk>\nSent: 01 March 2026 09:00\nTo: Ann\n"
        b"Subject: Repairs\n\nSupplier: Mears\nRepairs are now handled by Mears and take 12 weeks.\n"
    )
    rec = parse_email(raw)
    assert rec.body is not None
    assert "take 12 weeks" in rec.body and "Forwarded message from Housing Team" in rec.body
    assert rec.supplier == "Mears"
    reply = raw.replace(b"Subject: Email from the council", b"Subject: RE: Email from the council")
    assert "take 12 weeks" not in (parse_email(reply).body or "")
