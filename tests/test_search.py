"""Full-text search (storage.search) on SQLite FTS5 and PostgreSQL tsvector: ranking, snippets,
visibility, an index kept in step with filing, edits, status changes and erasure, hostile input,
and the `evidence-bot search` command."""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot import drafts, intake
from bot.decisions import decide, edit_fields
from bot.review import Action
from bot.settings import Settings
from bot.withdraw import withdraw
from storage import repo, search
from storage.db import unit_of_work
from tests.test_cli import run

HOSTILE = ['"', '""', "'", "AND OR NOT", "*", "NEAR(", "NEAR(a b, 2)", "title:payroll", "^payroll", "(", ")",
           "a OR", "OR", "-", "-payroll", "payroll -", "\\", "%", "_", "payroll AND", "{title body}: x",
           "\x00", "‘smart’ “quotes”", "🙂", "a" * 500, "' OR 1=1 --", "payroll*" * 20, "NOT payroll",
           "!payroll", "payroll & capita | (x", "<->", ":*", "payroll:*", "\"unterminated phrase"]


def file_mail(engine: Engine, settings: Settings, n: int, *, subject: str, body: str,
              sender: str = "ann@example.org", attachment: tuple[str, bytes] | None = None,
              in_reply_to: str | None = None) -> str:
    m = EmailMessage()
    m["From"] = f"Ann Example <{sender}>"
    m["To"] = "evidence@localhost"
    m["Subject"] = subject if in_reply_to is None else f"Re: [{in_reply_to}] {subject}"
    m["Message-ID"] = f"<search-{n}@example.org>"
    m.set_content(body)
    if attachment:
        m.add_attachment(attachment[1], maintype="text", subtype="plain", filename=attachment[0])
    intake.store_now(engine, drafts.draft(bytes(m), envelope_from=sender, rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    assert filed.reference
    return filed.reference


def find(engine: Engine, words: str, **kw: object) -> search.Results:
    with unit_of_work(engine) as s:
        return search.search(s, words=words, **kw)  # type: ignore[arg-type]


def refs(hits: list[search.Hit]) -> list[str]:
    return [h.reference for h in hits]


def sub_id(engine: Engine, reference: str) -> int:
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=reference)
        assert sub is not None and sub.id is not None
        return sub.id


@pytest.fixture
def three(engine: Engine, settings: Settings) -> list[str]:
    """A payroll record (the word in its title and body), a fleet record that mentions payroll once
    in passing, and a record about something else entirely."""
    a = file_mail(engine, settings, 1, subject="Payroll outsourcing failed",
                  body="Public body: Kent CC\nSupplier: Capita plc\n\nThe payroll outsourcing failed: staff were "
                       "paid late for six months and payroll errors doubled.\n")
    b = file_mail(engine, settings, 2, subject="Fleet maintenance",
                  body="Public body: Hampshire County Council\nSupplier: Babcock Ltd\n\nVehicles were off the road "
                       "for longer; the payroll team was unaffected.\n")
    c = file_mail(engine, settings, 3, subject="Bin collection",
                  body="Public body: Leeds City Council\nSupplier: Veolia\n\nBins were collected on time.\n")
    return [a, b, c]


def test_ranking_puts_the_record_about_it_first(engine: Engine, three: list[str]) -> None:
    a, b, _ = three
    hits = find(engine, "payroll")
    assert refs(hits) == [a, b]
    assert hits[0].rank > hits[1].rank
    assert hits[0].title == "Payroll outsourcing failed" and hits[0].status == "received"


def test_a_broad_query_ranks_only_the_newest_matches(
    engine: Engine, three: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers.slack.find import results_text

    _, b, c = three
    everything = find(engine, "council")
    assert len(everything) == 3 and everything.note is None  # every record names a council
    assert "newest" not in results_text("council", everything)
    monkeypatch.setattr(search, "RANKED_MAX", 2)
    broad = find(engine, "council")
    assert set(refs(broad)) == {b, c} and broad.note == search.ranked_note()  # the newest two are the ones ranked
    assert "More than 2 records match: these are the best of the newest 2" in results_text("council", broad)
    narrow = find(engine, "bins")
    assert refs(narrow) == [c] and narrow.note is None  # a narrow query is untouched


def test_stemming_phrases_prefixes_and_exclusions(engine: Engine, three: list[str]) -> None:
    a, b, c = three
    assert refs(find(engine, "vehicle")) == [b]  # "Vehicles", stemmed
    assert refs(find(engine, '"paid late"')) == [a]
    assert refs(find(engine, '"late paid"')) == []
    assert refs(find(engine, "payr*")) == [a, b]
    assert refs(find(engine, "payroll -vehicles")) == [a]
    assert set(refs(find(engine, "bins or vehicles"))) == {b, c}
    assert refs(find(engine, "payroll bins")) == []  # every word must match
    # The normalised public body is indexed too: "Kent CC" is found as "county council".
    assert set(refs(find(engine, '"county council"'))) == {a, b}


def test_snippet_highlights_the_matched_words(engine: Engine, three: list[str]) -> None:
    a = three[0]
    (hit, *_) = find(engine, "late")
    assert hit.reference == a
    assert f"{search.MARK_START}late{search.MARK_END}" in hit.snippet
    shown = search.marked(hit.snippet, start="<b>", end="</b>")
    assert "<b>late</b>" in shown and search.MARK_START not in shown
    # Stemmed matches are highlighted as written.
    (hit,) = find(engine, "vehicle")
    assert f"{search.MARK_START}Vehicles{search.MARK_END}" in hit.snippet


def test_marks_in_record_text_cannot_fake_a_highlight(engine: Engine, settings: Settings) -> None:
    ref = file_mail(engine, settings, 9, subject="Marks",
                    body=f"Nothing {search.MARK_START}bold{search.MARK_END} here about the catering contract.\n")
    (hit,) = find(engine, "catering")
    assert hit.reference == ref
    shown = search.marked(hit.snippet, start="*", end="*")
    assert "*catering*" in shown and "*bold*" not in shown and "bold" in shown


def test_status_filter_and_submitter_visibility(engine: Engine, settings: Settings, three: list[str]) -> None:
    a, b, _ = three
    decide(engine, settings, reference=a, action=Action.APPROVE, actor="cli:sam")
    assert refs(find(engine, "payroll", statuses=["approved"])) == [a]
    assert refs(find(engine, "payroll", statuses=["received"])) == [b]
    assert refs(find(engine, "payroll", statuses=[])) == []
    with unit_of_work(engine) as s:
        repo.update_submission(s, submission_id=sub_id(engine, b), values={"slack_user_id": "U1"})
    # What a non-reviewer sees: approved records, and their own whatever the status.
    assert refs(find(engine, "payroll", statuses=["approved"], submitter="U1")) == [a, b]
    assert refs(find(engine, "payroll", statuses=["approved"], submitter="U2")) == [a]
    assert refs(find(engine, "payroll", limit=1)) == [a]
    # "Not for publication" is for the group's eyes: hidden from a public view, shown to reviewers.
    with unit_of_work(engine) as s:
        repo.update_submission(s, submission_id=sub_id(engine, a), values={"publication": "not_for_publication"})
    assert refs(find(engine, "payroll", statuses=["approved"], submitter="U2")) == []
    assert a in refs(find(engine, "payroll"))


def test_edit_reindexes_and_rekeys(engine: Engine, three: list[str]) -> None:
    a = three[0]
    assert refs(find(engine, "pensions")) == []
    edit_fields(engine, reference=a, actor="cli:sam",
                changes={"title": "Pensions administration", "public_body": "London Borough of Camden"})
    assert refs(find(engine, "pensions")) == [a]
    assert find(engine, "pensions")[0].title == "Pensions administration"
    assert refs(find(engine, "camden")) == [a]
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=a)
        assert sub is not None and sub.body_key == "camden london borough council"


def test_status_changes_are_seen_at_once(engine: Engine, settings: Settings, three: list[str]) -> None:
    a, b, _ = three
    decide(engine, settings, reference=b, action=Action.REJECT, actor="cli:sam", reason="off topic")
    withdraw(engine, settings, reference=a, actor="submitter:ann@example.org", by_email="ann@example.org")
    hits = {h.reference: h.status for h in find(engine, "payroll")}
    assert hits == {a: "withdrawn", b: "rejected"}
    assert refs(find(engine, "payroll", statuses=["received", "approved"])) == []


def test_follow_ups_and_attachments_are_searchable(engine: Engine, settings: Settings) -> None:
    ref = file_mail(engine, settings, 20, subject="Highways", body="Public body: Devon CC\n\nPotholes.\n",
                    attachment=("minutes.txt", b"The cabinet minutes record a penalty clause never enforced.\n"))
    assert refs(find(engine, "penalty clause")) == [ref]
    assert refs(find(engine, "minutes")) == [ref]  # the file name too
    file_mail(engine, settings, 21, subject="Highways", body="Also the gritting lorries were late.\n",
              in_reply_to=ref)
    assert refs(find(engine, "gritting")) == [ref]


def test_erasure_removes_the_index_row(engine: Engine, three: list[str]) -> None:
    a, b, _ = three
    ida = sub_id(engine, a)
    with unit_of_work(engine) as s:
        assert ida in search.indexed_ids(s)
        # Erasure as another module may do it: the row and everything hanging off it, deleted in SQL.
        for table in ("outbox", "audit", "attachment", "followup"):
            s.execute(text(f"DELETE FROM {table} WHERE submission_id = :i"), {"i": ida})
        s.execute(text("DELETE FROM submission WHERE id = :i"), {"i": ida})
    with unit_of_work(engine) as s:
        assert ida not in search.indexed_ids(s)  # trigger (SQLite) / ON DELETE CASCADE (PostgreSQL)
    assert refs(find(engine, "payroll")) == [b]
    # And the explicit call, for a caller that keeps the row but blanks it.
    with unit_of_work(engine) as s:
        search.remove(s, submission_id=sub_id(engine, b))
    assert refs(find(engine, "payroll")) == []


def test_automatic_mail_is_not_indexed(engine: Engine, settings: Settings) -> None:
    m = EmailMessage()
    m["From"] = "MAILER-DAEMON@example.org"
    m["To"] = "evidence@localhost"
    m["Subject"] = "Undelivered Mail Returned to Sender"
    m["Message-ID"] = "<bounce-1@example.org>"
    m["Auto-Submitted"] = "auto-replied"
    m.set_content("Delivery to the following recipient failed permanently: payroll@example.org\n")
    intake.store_now(engine, drafts.draft(bytes(m), envelope_from="", rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    assert filed.outcome == "automatic"
    assert find(engine, "delivery") == []
    with unit_of_work(engine) as s:
        assert search.indexed_ids(s) == set()


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise(engine: Engine, three: list[str], query: str) -> None:
    hits = find(engine, query)
    assert isinstance(hits, list)
    find(engine, query, statuses=["approved"], submitter="U1")


def test_query_translation_is_literal() -> None:
    assert search.fts5_query("payroll") == '(("payroll"))'
    assert search.fts5_query('NEAR( title:x "a b" -c d* or e') == '(("NEAR" AND "title x" AND "a b" AND "d"*) ' \
        'NOT "c") OR (("e"))'
    assert search.fts5_query('" * ( -') is None
    assert search.fts5_query("-x") is None  # only exclusions: nothing to find
    assert search.fts5_query('"unterminated phrase') == '(("unterminated phrase"))'
    assert search.tsquery_text('pay* "a b" -c or d') == "(pay:* & (a <-> b) & !c) | (d)"
    assert search.tsquery_text("&|!()<->:*") is None


def test_cli_search(db_url: str, engine: Engine, three: list[str]) -> None:
    a, b, _ = three
    p = run("search", "payroll", db_url=db_url)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith(a) and "received" in lines[0] and "Payroll outsourcing failed" in lines[0]
    assert "[payroll]" in lines[1]
    assert b in p.stdout
    p = run("search", "payroll", "--json", "--status", "approved", db_url=db_url)
    assert p.returncode == 0 and json.loads(p.stdout) == []
    p = run("search", "--json", "paid", "late", db_url=db_url)
    (hit,) = json.loads(p.stdout)
    assert hit["reference"] == a and hit["status"] == "received" and "[paid] [late]" in hit["snippet"]
    p = run("search", "NEAR(", db_url=db_url)
    assert p.returncode == 0 and "nothing found" in p.stdout
    p = run("search", db_url=db_url)
    assert p.returncode == 1 and "what should I look for" in p.stderr


def test_cli_says_when_a_broad_query_was_capped(
    db_url: str, three: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli.main import main

    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["search", "bins"]) == 0
    assert "newest" not in capsys.readouterr().err
    monkeypatch.setattr(search, "RANKED_MAX", 2)
    assert main(["search", "council"]) == 0
    out = capsys.readouterr()
    assert "More than 2 records match" in out.err and len(out.out.splitlines()) == 4  # 2 hits, 2 snippets


def test_cli_reindex_rebuilds_a_lost_index(db_url: str, engine: Engine, three: list[str]) -> None:
    with unit_of_work(engine) as s:
        for i in list(search.indexed_ids(s)):
            search.remove(s, submission_id=i)
        s.execute(text("UPDATE submission SET body_key = NULL, supplier_key = NULL"))
    assert find(engine, "payroll") == []
    p = run("search", "--reindex", "payroll", db_url=db_url)
    assert p.returncode == 0, p.stderr
    assert "re-indexed 3 record(s)" in p.stderr and three[0] in p.stdout
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=three[0])
        assert sub is not None and (sub.body_key, sub.supplier_key) == ("kent county council", "capita")
