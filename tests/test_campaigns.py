"""Campaigns: near-identical submissions join one campaign, shown on one card, decided together.

The similarity rules are tested on their own (bot.similarity is pure); the rest files real
e-mails through the intake, on SQLite and PostgreSQL, and reads back the database, the outbox,
the local Slack stand-in (over real, signed HTTP) and the evidence pack.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from collections import Counter
from email.message import EmailMessage
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot import acks, campaigns, drafts, intake, outbox_kinds, pack, similarity
from bot.convert import record_from_submission
from bot.corroboration import keys as corroboration_keys
from bot.decisions import decide_campaign
from bot.review import Action
from bot.settings import Settings
from handlers.slack import campaign_actions, campaign_card
from storage import repo
from storage.db import unit_of_work
from storage.models import OutboxItem, Submission
from tests.support.slack_requests import block_action_payload, view_submission_payload
from tests.test_slack_flows import REVIEW, REVIEWER, running, wait_until

TEMPLATE = """Dear Committee,

I am writing as a resident of Kent to share my concerns about the outsourcing of council services to Capita.

Since the payroll and benefits service moved to Capita, residents like me have waited months for simple changes \
to be processed. Phone lines are rarely answered and letters go unanswered for weeks.

The contract was meant to save money, but the council has paid for extra staff to fix errors the supplier made. \
Nobody seems to be accountable when things go wrong, and councillors tell us their hands are tied by the contract.

I urge the Committee to recommend that the council bring these services back in house when the contract ends, \
and that future contracts include real penalties for poor performance.

Thank you for considering my views.

Yours sincerely,
{name}
{town}"""

PERSONAL = "My own housing benefit claim took five months to sort out and I fell behind on my rent."
REWRITTEN_FROM = "Phone lines are rarely answered and letters go unanswered for weeks."
REWRITTEN_TO = "When I rang the helpline I waited over an hour and then the call was cut off."

# Evidence about the same council and supplier (corroboration), each in its own words.
DIFFERENT_A = """I worked in Kent County Council's finance team from 2014 to 2019, when payroll was run by Capita \
under the shared services contract.

In the first year about one in twenty payslips had an error, mostly overtime and mileage claims that had been \
keyed twice or not at all. We set up a small team of four to check every payroll run before it went out, which \
cost the council roughly £160,000 a year on top of the contract price.

Capita's account managers were helpful, but the service credits in the contract were capped so low that they \
never covered our costs. By 2018 the error rate had fallen to under one percent, largely because of our own \
checking rather than any change by the supplier."""

DIFFERENT_B = """As a Unison representative at Kent County Council I dealt with dozens of staff who were \
underpaid after the payroll transfer to Capita in 2014.

The TUPE transfer itself went smoothly and the staff who moved kept their terms. The problems came later, when \
the supplier moved the work to a processing centre in another region and local knowledge was lost. Pension \
contributions for part-time staff were calculated wrongly for most of 2016, and it took the pension fund two \
years to correct the records.

The council did eventually recover part of the cost through the contract's dispute process, but members of \
staff had to wait for their money throughout."""

# Opens with the campaign's first line, then tells a story of its own.
SHARED_OPENING = """I am writing as a resident of Kent to share my concerns about the outsourcing of council \
services to Capita.

In 2017 my father's care package was reassessed by a social worker employed through the contract, and the hours \
he received were cut from fourteen a week to six without anyone visiting him at home. We appealed, and after a \
second assessment by a council officer his hours were restored, but it took ten weeks and he had two falls in \
that time.

I would like the Committee to look at how assessments are quality checked when they are done by a contractor, \
and whether the council keeps enough of its own staff to review them."""

FIRST = TEMPLATE.format(name="Jane Smith", town="Maidstone")


def edits() -> dict[str, str]:
    """What campaigners do to a template before sending it."""
    other = TEMPLATE.format(name="Robert Jones", town="Canterbury, Kent ME1 2AB")
    return {
        "name": TEMPLATE.format(name="Robert Jones", town="Maidstone"),
        "name and signature": other,
        "sentence added": FIRST.replace("Thank you", PERSONAL + "\n\nThank you"),
        "sentence rewritten": FIRST.replace(REWRITTEN_FROM, REWRITTEN_TO),
        "rewritten, name and signature": other.replace(REWRITTEN_FROM, REWRITTEN_TO),
        "rewritten, added, another name": TEMPLATE.format(name="Priya Patel", town="Ashford")
        .replace(REWRITTEN_FROM, REWRITTEN_TO).replace("Thank you", PERSONAL + "\n\nThank you"),
    }


# -- the rules, without a database -----------------------------------------------------------------

def test_small_edits_join_and_are_found_by_their_band_keys() -> None:
    first, first_keys = similarity.keys_of(FIRST)
    for what, text in edits().items():
        sh, keys = similarity.keys_of(text)
        assert similarity.same_campaign(first, sh), (what, similarity.jaccard(first, sh))
        # The index lookup would find it: the two share at least one band key.
        assert set(keys) & set(first_keys), what


def test_different_evidence_about_the_same_contract_stays_apart() -> None:
    first = similarity.shingles(FIRST)
    texts = {"A": DIFFERENT_A, "B": DIFFERENT_B, "shared opening": SHARED_OPENING}
    for what, text in texts.items():
        assert not similarity.same_campaign(first, similarity.shingles(text)), what
    assert not similarity.same_campaign(similarity.shingles(DIFFERENT_A), similarity.shingles(DIFFERENT_B))
    # They are corroboration instead: the same public body and supplier.
    assert corroboration_keys("Kent County Council", "Capita plc") == corroboration_keys("Kent CC", "Capita")


def test_short_texts_never_join() -> None:
    short = "I support the campaign to bring council services back in house. Please act now. " * 2
    assert len(similarity.words(short)) < similarity.MIN_WORDS
    assert similarity.keys_of(short) == (frozenset(), [])
    assert not similarity.same_campaign(similarity.shingles(short), similarity.shingles(short))


def test_template_lines_and_quotes_do_not_count() -> None:
    fields = "Public body: Kent County Council\nSupplier: Capita\nPublish: anonymous\n\n"
    quoted = "\n".join("> " + line for line in DIFFERENT_A.splitlines())
    assert similarity.shingles(fields + FIRST + "\n\n" + quoted) == similarity.shingles(FIRST)


def test_differing_lines_are_what_the_member_changed() -> None:
    member = edits()["name and signature"].replace(REWRITTEN_FROM, REWRITTEN_TO)
    lines = similarity.differing_lines(FIRST, member, limit=5)
    assert "Robert Jones" in lines and "Canterbury, Kent ME1 2AB" in lines
    assert any(REWRITTEN_TO in line for line in lines)
    assert not any("Dear Committee" in line for line in lines)
    assert similarity.differing_lines(FIRST, FIRST) == []


# -- filing --------------------------------------------------------------------------------------

NAMES = ["Jane Smith", "Robert Jones", "Priya Patel", "Tom Brown", "Sara Khan", "Owen Price", "Lucy Grey",
         "Ahmed Ali", "Nina Rossi", "Paul Wood", "Kate Moss", "Dev Shah", "Ian Hart", "Amy Lee", "Joe Bloggs",
         "Rosa Park", "Max Field", "Eve Stone", "Sam Cole", "Ben Ford", "Ivy Lane", "Tess Hill", "Leo Marsh",
         "Mia Ross", "Zoe King", "Ravi Nair", "Olu Ade", "Fay Dunn", "Gus Reid", "Hana Mori", "Ali Khan",
         "Cal Webb"]
TOWNS = ["Maidstone", "Canterbury", "Ashford", "Dover", "Folkestone", "Margate", "Sevenoaks", "Tonbridge"]


def mail(i: int, name: str, body: str, *, publish: str = "named", subject: str = "Outsourcing in Kent") -> bytes:
    addr = f"{name.lower().replace(' ', '.')}.{i}@example.org"
    m = EmailMessage()
    m["From"] = f"{name} <{addr}>"
    m["To"] = "evidence@localhost"
    m["Subject"] = subject
    m["Message-ID"] = f"<campaign-{i}@example.org>"
    m.set_content(f"Public body: Kent County Council\nSupplier: Capita\nPublish: {publish}\n\n{body}\n")
    return bytes(m)


def member_text(i: int) -> str:
    text = TEMPLATE.format(name=NAMES[i % len(NAMES)], town=TOWNS[i % len(TOWNS)])
    if i % 3 == 1:
        text = text.replace("Thank you", PERSONAL + "\n\nThank you")
    if i % 4 == 2:
        text = text.replace(REWRITTEN_FROM, REWRITTEN_TO)
    return text


def file_mails(engine: Engine, settings: Settings, raws: list[bytes]) -> list[str]:
    for raw in raws:
        intake.store_now(engine, drafts.draft(raw, envelope_from=None, rcpts=["evidence@localhost"]))
    return [f.reference or "" for f in intake.process_pending(engine, settings, limit=len(raws))]


def file_campaign(engine: Engine, settings: Settings, n: int, *, publish: list[str] | None = None) -> list[str]:
    raws = [mail(i, NAMES[i % len(NAMES)], member_text(i), publish=(publish or [])[i] if publish else "named")
            for i in range(n)]
    return file_mails(engine, settings, raws)


def subs_by_ref(engine: Engine) -> dict[str, Submission]:
    with unit_of_work(engine) as s:
        return {x.reference or "": x for x in repo.list_submissions(s)}


def records(engine: Engine, refs: list[str]) -> list[dict[str, Any]]:
    """The records as `show --json` prints them."""
    with unit_of_work(engine) as s:
        subs = [repo.get_submission(s, reference=r) for r in refs]
        info = campaigns.info(s, [x for x in subs if x])
        return [record_from_submission(x, (), info.get(x.id or 0)).to_json() for x in subs if x]


def test_thirty_two_mails_make_one_campaign_and_others_stay_apart(engine: Engine, settings: Settings) -> None:
    refs = file_campaign(engine, settings, 32)
    other = file_mails(engine, settings, [mail(100, "Dan Finance", DIFFERENT_A), mail(101, "Una Rep", DIFFERENT_B),
                                          mail(102, "Short Note", "I agree with the campaign. Bring it back.")])
    subs = subs_by_ref(engine)
    first = subs[refs[0]]
    assert {subs[r].campaign_id for r in refs} == {first.id}
    assert first.campaign_size == 32
    assert all(subs[r].campaign_id is None for r in other)
    shown = records(engine, refs + other)
    assert {json.dumps(r["campaign"]) for r in shown[:32]} == {json.dumps({"id": refs[0], "size": 32})}
    assert [r["campaign"] for r in shown[32:]] == [None, None, None]
    with unit_of_work(engine) as s:
        items = s.exec(select(OutboxItem)).all()
    kinds = Counter(i.kind for i in items)
    summaries = sorted(json.loads(i.payload)["reference"] for i in items if i.kind == outbox_kinds.SLACK_SUMMARY)
    assert summaries == sorted([refs[0], *other])  # no card per member
    assert kinds[acks.KIND] == 35  # every member is acknowledged as if it stood alone
    # Card updates coalesce: one waits at a time, however many members arrive.
    assert sum(1 for i in items if i.key.startswith(f"{outbox_kinds.SLACK_UPDATE}:campaign:")) == 1


def test_concurrent_filings_make_one_campaign(engine: Engine, settings: Settings) -> None:
    raws = [mail(i, NAMES[i], member_text(i)) for i in range(10)]
    ids = [intake.store_now(engine, drafts.draft(r, envelope_from=None, rcpts=["evidence@localhost"]))[0]
           for r in raws]
    errors: list[BaseException] = []

    def work(part: list[int]) -> None:
        try:
            for i in part:
                intake.process_inbound(engine, settings, inbound_id=i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(ids[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    subs = list(subs_by_ref(engine).values())
    assert len(subs) == 10
    (campaign,) = {x.campaign_id for x in subs}
    first = next(x for x in subs if x.id == campaign)
    assert first.campaign_size == 10


def test_automatic_mail_and_follow_ups_never_join(engine: Engine, settings: Settings) -> None:
    (ref,) = file_campaign(engine, settings, 1)
    reply = (f"From: Robert Jones <rj@example.org>\r\nTo: evidence@localhost\r\nSubject: Re: [{ref}] Received\r\n"
             f"Message-ID: <fu-c@example.org>\r\n\r\n{member_text(1)}\r\n").encode()
    auto = (b"From: MAILER-DAEMON@example.org\r\nTo: evidence@localhost\r\nSubject: Auto-Reply: out of office\r\n"
            b"Auto-Submitted: auto-replied\r\nMessage-ID: <auto-c@example.org>\r\n\r\n"
            + member_text(2).encode() + b"\r\n")
    for raw in (reply, auto):
        intake.store_now(engine, drafts.draft(raw, envelope_from=None, rcpts=["evidence@localhost"]))
    outcomes = sorted(f.outcome for f in intake.process_pending(engine, settings))
    assert outcomes == ["automatic", "follow_up"]
    with unit_of_work(engine) as s:
        assert all(x.campaign_id is None for x in repo.list_submissions(s))


def test_the_cli_decides_a_whole_campaign(engine: Engine, settings: Settings) -> None:
    refs = file_campaign(engine, settings, 4)
    done = decide_campaign(engine, settings, reference=refs[2], action=Action.REJECT, actor="cli:Sam",
                           reason="A campaign letter, published as one")
    assert sorted(d.reference for d in done) == sorted(refs)
    with unit_of_work(engine) as s:
        for r in refs:
            sub = repo.get_submission(s, reference=r)
            assert sub is not None and sub.id is not None and sub.status == "rejected"
            (entry,) = repo.audit_of(s, submission_id=sub.id)
            assert (entry.actor, entry.action) == ("cli:Sam", "reject")
            emails = [json.loads(p) for p in repo.outbox_payloads(s, submission_id=sub.id)]
            assert sum("not accepted" in str(p.get("subject", "")) for p in emails) == 1


# -- the review channel --------------------------------------------------------------------------

def top_level(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if not m.get("thread_ts")]


async def test_one_card_for_the_campaign_decided_for_all_over_signed_http(db_url: str) -> None:
    async with running(db_url) as env:
        engine, settings = env.svc.engine, env.svc.settings
        refs = await asyncio.to_thread(file_campaign, engine, settings, 31)
        env.svc.worker.wake()
        size_text = campaign_card.headline(31)
        # The card may be posted while members are still being filed: it is then edited in place
        # (chat.update), so look at the message as it stands now, not as first posted.
        def card_now() -> dict[str, Any] | None:
            for posted in top_level(env.slack.posted_messages(REVIEW)):
                now = env.slack.messages[(REVIEW, posted["ts"])]
                if size_text in now["text"]:
                    return {**now, "ts": posted["ts"]}
            return None

        card = await wait_until(card_now, timeout=60, what="the campaign card")
        await asyncio.sleep(0.3)  # time for any stray card to appear
        assert len(top_level(env.slack.posted_messages(REVIEW))) == 1
        assert card["text"].startswith(refs[0])
        # Members that arrive later update the card in place; its text carries the count.
        own = "I live in Deal, and the council's own staff told me they could not fix my claim."
        late = mail(50, "Late Comer", FIRST.replace("Thank you", own + "\n\nThank you"))
        more = await asyncio.to_thread(file_mails, engine, settings, [late])
        env.svc.worker.wake()
        current = await wait_until(lambda: (lambda m: m if campaign_card.headline(32) in m["text"] else None)(
            env.slack.messages[(REVIEW, card["ts"])]), what="the card to show 32")
        assert len(top_level(env.slack.posted_messages(REVIEW))) == 1
        assert "I live in Deal, and the council" in json.dumps(current["blocks"])  # the latest member's own line
        members = refs + more

        # Reject-all's form says how many records it decides.
        await env.interact(block_action_payload(campaign_card.REJECT, refs[0], user_id=REVIEWER,
                                                channel_id=REVIEW, message_ts=card["ts"]))
        (form,) = await wait_until(lambda: env.opened_views(campaign_actions.REJECT_VIEW), what="the form")
        assert form["submit"]["text"] == "Reject all 32" and "all 32 undecided records" in json.dumps(form)

        await env.interact(block_action_payload(campaign_card.APPROVE, refs[0], user_id=REVIEWER,
                                                channel_id=REVIEW, message_ts=card["ts"]))
        await wait_until(lambda: all(s.status == "approved" for s in env.submissions()), what="every approval")
        with unit_of_work(engine) as s:
            for r in members:
                sub = repo.get_submission(s, reference=r)
                assert sub is not None and sub.id is not None
                assert [(a.actor, a.action) for a in repo.audit_of(s, submission_id=sub.id)] == [
                    (f"slack:{REVIEWER}", "approve")]
                notices = s.exec(select(OutboxItem).where(OutboxItem.submission_id == sub.id,
                                                          OutboxItem.kind == "email")).all()
                assert len(notices) == 1 and "accepted" in notices[0].payload
        decided = await wait_until(lambda: (lambda m: m if "campaign_approve" not in json.dumps(m["blocks"])
                                            else None)(env.slack.messages[(REVIEW, card["ts"])]),
                                   what="the card to lose its buttons")
        assert "Approved" in json.dumps(decided["blocks"]) and "0 undecided" in json.dumps(decided["blocks"])
        # A submit of the stale reject form now refuses, privately.
        await env.interact(view_submission_payload(campaign_actions.REJECT_VIEW, {"reason": {"reason": "No"}},
                                                   user_id=REVIEWER, private_metadata=form["private_metadata"]))
        await wait_until(lambda: any("already decided" in e["text"] for e in env.ephemerals_to(REVIEWER)),
                         what="the refusal")


async def test_open_one_member_posts_its_own_card_in_the_thread(db_url: str) -> None:
    async with running(db_url) as env:
        engine, settings = env.svc.engine, env.svc.settings
        refs = await asyncio.to_thread(file_campaign, engine, settings, 3)
        env.svc.worker.wake()
        card = await wait_until(lambda: next(iter(top_level(env.slack.posted_messages(REVIEW))), None),
                                what="the card")
        await wait_until(lambda: campaign_card.headline(3) in env.slack.messages[(REVIEW, card["ts"])]["text"],
                         what="the card to count 3")
        await env.interact(block_action_payload(campaign_card.OPEN, refs[2], user_id=REVIEWER, channel_id=REVIEW,
                                                message_ts=card["ts"], action_type="static_select"))
        own = await wait_until(lambda: [m for m in env.slack.posted_messages(REVIEW) if m.get("thread_ts")],
                               what="the member's card")
        assert own[0]["thread_ts"] == card["ts"] and own[0]["text"].startswith(refs[2])
        assert any(v.get("callback_id") == "read_in_full" for v in
                   (c.args["view"] for c in env.slack.calls_to("views.open") if c.ok))
        # Its own buttons decide it alone; the campaign card counts one fewer undecided.
        await env.click("review_approve", own[0])
        await wait_until(lambda: env.submission(refs[2]).status == "approved", what="the approval")
        assert [env.submission(r).status for r in refs[:2]] == ["received", "received"]
        await wait_until(lambda: "2 undecided" in json.dumps(env.slack.messages[(REVIEW, card["ts"])]["blocks"]),
                         what="the card to count 2 undecided")


# -- the pack ------------------------------------------------------------------------------------

def test_the_pack_shows_a_campaign_once_with_its_count_and_named_contributors(
    engine: Engine, settings: Settings
) -> None:
    publish = ["named", "named", "anonymous", "named", "not for publication", "anonymous"]
    refs = file_campaign(engine, settings, len(publish), publish=publish)
    (alone,) = file_mails(engine, settings, [mail(200, "Dan Finance", DIFFERENT_A)])
    decide_campaign(engine, settings, reference=refs[0], action=Action.APPROVE, actor="cli:Sam")
    from bot.decisions import decide

    decide(engine, settings, reference=alone, action=Action.APPROVE, actor="cli:Sam")
    built = pack.collect(engine, status="approved", settings=settings)
    campaign_entries = [r for r in built.records if r.campaign]
    assert len(built.records) == 2 and len(campaign_entries) == 1
    (entry,) = campaign_entries
    assert entry.campaign is not None
    named = [NAMES[i] for i, p in enumerate(publish) if p == "named"]
    assert entry.campaign.count == 5  # the not-for-publication member is left out of the public pack
    assert entry.campaign.named == named and entry.campaign.unnamed == 2
    assert built.counts["records"] == 6
    md = pack.render(built, "md")
    html = pack.render(built, "html")
    for out in (md, html):
        assert out.count("future contracts include real penalties for poor performance") == 1
        assert "5 submissions of this text" in out
        assert all(n in out for n in named)
        hidden = [NAMES[i] for i, p in enumerate(publish) if p != "named"]
        assert not any(n in out for n in hidden), [n for n in hidden if n in out]
    jsonl = [json.loads(line) for line in pack.render(built, "jsonl").splitlines()]
    assert [r["campaign"] for r in jsonl] == [{"id": refs[0], "size": 6}, None]
    rows = list(csv.DictReader(io.StringIO(pack.render(built, "csv"))))
    assert [r["campaign"] for r in rows] == [refs[0], ""]


def test_purge_takes_the_band_keys_with_the_record(engine: Engine, settings: Settings) -> None:
    from datetime import timedelta

    from bot.privacy import purge
    from storage.models import CampaignBand

    (ref,) = file_campaign(engine, settings, 1)
    from bot.decisions import decide

    decide(engine, settings, reference=ref, action=Action.REJECT, actor="cli:Sam", reason="Off topic")
    with unit_of_work(engine) as s:
        assert s.exec(select(CampaignBand)).all()
    purge(engine, older_than=timedelta(0), statuses=["rejected"])
    with unit_of_work(engine) as s:
        assert s.exec(select(CampaignBand)).all() == []
        assert s.exec(select(col(Submission.id))).all() == []
