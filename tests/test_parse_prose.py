"""The parser on free prose (issue 11): money forms, outcome verdicts and negation, greetings and
sign-offs, the subject line, the gazetteer of public bodies, and `parse --json` of follow-ups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.parsing.bodies import find_public_body
from bot.parsing.cleanup import clean_body
from bot.parsing.fields import classify_money, extract_fields, infer_outcome, unwrap
from bot.parsing.gazetteer import DATA, MAX_CHARS, Gazetteer, find_listed_bodies, gazetteer, read_rows
from bot.parsing.money import find_money, parse_money
from bot.record import Outcome

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "corpus"

# -- money ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("£3.25 million", 3_250_000),
        ("£30m", 30_000_000),
        ("£450k a year", 450_000),
        ("GBP 1.2bn", 1_200_000_000),
        ("£1,200,000", 1_200_000),
        ("30 million pounds", 30_000_000),
        ("thirty million pounds", 30_000_000),
        ("half a million pounds", 500_000),
        ("two and a half million pounds", 2_500_000),
        ("a quarter of a million pounds", 250_000),
        ("twenty-five thousand pounds", 25_000),
        ("one hundred and fifty million pounds", 150_000_000),
        ("a billion pounds", 1_000_000_000),
    ],
)
def test_money_forms(text: str, value: int) -> None:
    (m,) = find_money(f"It cost {text} in the end.")
    assert m.value == value


@pytest.mark.parametrize("text", ["nine pounds of apples", "a million people", "thirty million", "and of pounds"])
def test_not_money_in_words(text: str) -> None:
    """Worded numbers need a worded unit and a currency word; a head-count is not money."""
    assert all(m.value < 1000 for m in find_money(text))


@pytest.mark.parametrize(
    ("text", "contract", "savings"),
    [
        ("The deal was worth\n£30m over ten years.", 30_000_000, None),
        ("It signed a contract with Capita for £3.25\nmillion.", 3_250_000, None),
        ("The council saved\n£450k a year.", None, 450_000),
        ("The change cut costs by £1,200,\n000 in year one.", None, 1_200_000),
        ("A £12m contract was let; savings of thirty million pounds were claimed.", 12_000_000, 30_000_000),
        ("Contract valued at GBP 1.2bn.", 1_200_000_000, None),
        ("Councillors were told it would save half a million pounds a year.", None, 500_000),
        ("The trust paid £40m for the building.", None, None),  # neither: unclear money is left alone
    ],
)
def test_money_told_apart_by_the_sentence(text: str, contract: int | None, savings: int | None) -> None:
    assert classify_money(text) == (contract, savings)


def test_unwrap_keeps_paragraphs_and_lists() -> None:
    text = "worth\n£30m and more.\nNext sentence\n\n- item one\n- item two\nwrapped\n\nHeading:\nbody"
    assert unwrap(text) == "worth £30m and more.\nNext sentence\n\n- item one\n- item two wrapped\n\nHeading:\nbody"


@pytest.mark.parametrize("text", ["£-5m", "-£3m", "£ 0", "£0.4"])
def test_money_is_never_negative(text: str) -> None:
    value = parse_money(text)
    assert value is None or value >= 0


# -- outcome -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("In short, it was a quiet success.", Outcome.SUCCESS),
        ("The results were mixed.", Outcome.MIXED),
        ("The project was a failure.", Outcome.FAILURE),
        ("After a year the trust went back to paper.", Outcome.FAILURE),
        ("The council reverted to the old system in 2021.", Outcome.FAILURE),
        ("The contract was not a success.", Outcome.FAILURE),
        ("The contract was far from a success.", Outcome.FAILURE),
        ("The outsourcing was anything but a success.", Outcome.FAILURE),
        ("The transfer was far from a failure.", Outcome.SUCCESS),
        ("The new system was by no means a failure.", Outcome.SUCCESS),
        ("It was a qualified success.", Outcome.MIXED),
        ("The outcome has been mixed at best.", Outcome.MIXED),
        ("The supplier was paid a success fee on signing.", Outcome.UNKNOWN),
    ],
)
def test_outcome_verdicts_and_negation(text: str, expected: Outcome) -> None:
    assert infer_outcome(text) is expected


def test_verdict_sentence_outweighs_incidental_words() -> None:
    text = (
        "The old system was a single point of failure and the pilot elsewhere failed. "
        "Overall, the contract was a success."
    )
    assert infer_outcome(text) is Outcome.SUCCESS


def test_reported_claim_is_not_the_verdict() -> None:
    text = "The supplier hailed the rollout as a success. Staff went back to paper within a month."
    assert infer_outcome(text) is Outcome.FAILURE


def test_clear_verdicts_on_both_sides_are_mixed() -> None:
    text = "Overall the contract was a success for the budget. In short, it was a failure for residents."
    assert infer_outcome(text) is Outcome.MIXED


def test_subject_headline_decides_a_silent_body() -> None:
    body = "The council signed the contract in 2019 and renewed it in 2024."
    assert infer_outcome(body) is Outcome.UNKNOWN
    assert infer_outcome(body, headline="A costly failure") is Outcome.FAILURE
    assert extract_fields(body, subject="Bins: a quiet success").outcome is Outcome.SUCCESS


def test_headline_line_in_the_body() -> None:
    assert infer_outcome("A costly mistake\n\nThe council let the contract in 2019.") is Outcome.FAILURE


# -- subject line --------------------------------------------------------------------------------------


def test_body_and_supplier_from_the_subject_only_when_the_text_is_silent() -> None:
    f = extract_fields("The council let the contract and it went badly.", subject="Kent CC and Serco")
    assert (f.public_body, f.supplier) == ("Kent County Council", "Serco")
    f = extract_fields("Surrey County Council let it to Capita.", subject="Kent CC and Serco")
    assert (f.public_body, f.supplier) == ("Surrey County Council", "Capita")


# -- greetings and sign-offs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dear reviewers,\n\nThe contract failed.", "The contract failed."),
        ("Hi all,\nThe contract failed.", "The contract failed."),
        ("To whom it may concern:\n\nThe contract failed.", "The contract failed."),
        ("Hi all, the contract failed.", "The contract failed."),
        ("Good morning everyone\n\nThe contract failed.", "The contract failed."),
        ("The contract failed.\n\nKind regards,\nJane Smith\nUnison", "The contract failed."),
        ("The contract failed.\n\nBest wishes\nTom", "The contract failed."),
        ("The contract failed.\n\nThanks, Raj", "The contract failed."),
        ("The contract failed.\n\nThank you for your time.\n\nYours faithfully\n\nMr P. Okonkwo",
         "The contract failed."),
    ],
)
def test_greetings_and_sign_offs_are_not_evidence(text: str, expected: str) -> None:
    assert clean_body(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Hello\n",  # nothing but the greeting: kept rather than lose everything
        "Hiring froze after the transfer.",  # "Hi" only as a word of its own
        "Dear readers will know the contract failed",  # no comma or line end after the greeting words
        "The contract failed.\n\nThanks to the new manager, it recovered in 2022.",
    ],
)
def test_greeting_like_text_that_is_kept(text: str) -> None:
    assert clean_body(text) == text.strip()


# -- gazetteer -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("Kent CC let the contract.", "Kent County Council"),
        ("Last year the MoJ let the contract.", "MoJ"),
        ("The DWP let the contract.", "DWP"),
        ("HMRC let the contract.", "HMRC"),
        ("Kent County Council let the contract.", "Kent County Council"),
        ("LB Barnet let the contract.", "London Borough of Barnet"),
        ("Stockport MBC let the contract.", "Stockport Metropolitan Borough Council"),
        ("Leeds CC let the contract.", "Leeds City Council"),
        ("NHS Lothian let the contract.", "NHS Lothian"),
        ("Natural England let the contract.", "Natural England"),
        ("The contract was let by Guy’s and St Thomas’ NHS Foundation Trust.",
         "Guy’s and St Thomas’ NHS Foundation Trust"),
        ("Staff at Dyfed-Powys Police said so.", "Dyfed-Powys Police"),
        ("I work from my home office in Kent.", None),
        ("We met years AGO at a conference.", None),
    ],
)
def test_gazetteer_short_forms(text: str, body: str | None) -> None:
    assert find_public_body(text) == body


def test_gazetteer_data_is_documented_and_consistent() -> None:
    header = "\n".join(line for line in DATA.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
    assert "OGL v3.0" in header and "scripts/build_gazetteer.py" in header
    readme = (DATA.parent / "README.md").read_text(encoding="utf-8")
    assert "Open Government Licence v3.0" in readme and "build_gazetteer.py" in readme
    rows = read_rows()
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)) and len(names) > 1000
    shorts = [s for _, ss in rows for s in ss]
    assert len(shorts) == len(set(shorts)), "a short form must name one body"
    assert not set(shorts) & set(names)
    assert gazetteer().size == len(rows)


def test_gazetteer_is_linear_in_the_text() -> None:
    g = Gazetteer([("Kent County Council", ["Kent CC"]), ("Kent and Medway NHS and Social Care Partnership Trust", [])])
    # Every word a prefix of a listed name: the worst case for the trie walk.
    text = "Kent and " * 20_000
    start = time.monotonic()
    assert g.find(text) == []
    assert time.monotonic() - start < 2
    big = ("Kent CC " + "word " * 500) * 1000  # 2.5 MB: only the first MAX_CHARS are read
    start = time.monotonic()
    hits = find_listed_bodies(big)
    assert time.monotonic() - start < 2
    assert len(hits) == MAX_CHARS // len("Kent CC " + "word " * 500) + 1
    assert all(h.name == "Kent County Council" and h.end <= MAX_CHARS for h in hits)


def test_build_script_rules() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_gazetteer as bg
    finally:
        sys.path.pop(0)
    assert bg.title_case("GUY'S AND ST THOMAS' NHS FOUNDATION TRUST") == "Guy's and St Thomas' NHS Foundation Trust"
    assert bg.short_forms("Kent County Council") == ["Kent CC"]
    assert bg.short_forms("London Borough of Barnet") == ["LB Barnet", "LB of Barnet"]
    built = bg.build(
        [("Leeds City Council", "council"), ("Leeds County Council", "council"), ("Kent Police", "police")]
    )
    # "Leeds CC" could be either body, so neither gets it.
    assert built == [("Kent Police", "police", []), ("Leeds City Council", "council", []),
                     ("Leeds County Council", "council", [])]
    tsv = bg.render(built)
    assert "OGL v3.0" in tsv and "Kent Police\tpolice\t" in tsv


# -- follow-ups through the CLI ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("38_follow_up_correction.eml", "EV-000107"),
        ("39_follow_up_outlook_references.eml", "EV-000311"),
        ("40_follow_up_withdraw.eml", "EV-000058"),
        ("25_prose_quiet_success.eml", None),
    ],
)
def test_parse_json_names_the_record_a_follow_up_is_for(name: str, reference: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "DATABASE_URL", "SLACK_"))}
    p = subprocess.run([sys.executable, "-m", "bot", "parse", "--json", str(CORPUS / name)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    assert rec["reference"] == reference
    assert rec["kind"] == ("follow_up" if reference else "evidence")
