"""bot.redact against hostile and odd text: long unbroken runs, names written several ways at once."""

from __future__ import annotations

import time

import pytest

from bot.redact import CONTACT, NAME, name_patterns, scrub, scrub_filename


@pytest.mark.parametrize("run", ["a" * 200_000, "a." * 100_000, "0" * 200_000, "ab-" * 66_000])
def test_a_long_unbroken_run_of_text_is_scrubbed_in_linear_time(run: str) -> None:
    # Attachment text is read up to 200,000 characters; a PDF whose text lost its spaces (or a
    # pasted base64 blob) is one such run. The spelled-out address pattern used to restart at every
    # character of it: about 1.7 s for 8,000 characters, a quarter of an hour for 200,000.
    started = time.monotonic()
    out = scrub(f"Write to ann [at] example [dot] org. {run} end", name_patterns(["Ann Example"]))
    assert time.monotonic() - started < 5
    assert out == f"Write to {CONTACT}. {run} end"


def test_every_mention_goes_when_the_name_is_written_several_ways_in_a_row() -> None:
    # Applied one pattern after another, "Hidden, Bob" took the middle of this and a lower-case
    # "hidden" was left behind.
    out = scrub("Signed: Bob Hidden, BOB HIDDEN, bob hidden.", name_patterns(["Bob Hidden"]))
    assert out is not None and "idden" not in out and "ob" not in out, out


def test_a_surname_first_name_is_found_in_the_usual_order() -> None:
    # Outlook shows "Hidden, Robert"; the text says "Robert Hidden". Full names only (as every
    # record is scrubbed of other anonymous contributors' names), so no part patterns help.
    pats = name_patterns(["Hidden, Robert"], parts=False)
    assert scrub("Robert Hidden and Hidden, Robert agreed.", pats) == f"{NAME} and {NAME} agreed."


def test_a_file_name_keeps_what_is_not_a_name() -> None:
    assert scrub_filename("annual_report_2020.pdf", name_patterns(["Ann Example"])) == "annual_report_2020.pdf"
    assert scrub_filename(None) is None


def test_elsewhere_keeps_only_the_names_a_record_can_mention() -> None:
    """The pack narrows every contributor's name to those whose words all occur in the record (a
    set look-up), so thousands of contributors do not cost a big pattern per record; nothing that
    could be mentioned may be narrowed away."""
    from bot.pack import Elsewhere

    every = Elsewhere.of(["Robert Hidden", "Hidden, Carol", "Dan Quiet", "Eve", None])
    assert every.within(["Robert Hidden told me."]).names == ("Robert Hidden",)
    assert every.within(["CAROL HIDDEN saw it"]).names == ("Hidden, Carol",)
    assert every.within(["notes_RobertHidden.pdf"]).names == ("Robert Hidden",)
    assert every.within(["Dan said it was quiet", None]).names == ("Dan Quiet",)  # both words: kept
    assert every.within(["Dan saw Robert"]).names == ()
    narrowed = every.within(["Robert Hidden and Carol Hidden were there."])
    from bot import redact

    assert redact.scrub("Robert Hidden and Carol Hidden were there.", narrowed.patterns) == (
        f"{redact.NAME} and {redact.NAME} were there.")
