"""bot.redact on its own: contact details and anonymous contributors' names out of evidence text."""

from __future__ import annotations

import pytest

from bot.redact import CONTACT, NAME, name_patterns, scrub, scrub_contacts, scrub_names


@pytest.mark.parametrize(
    "text",
    [
        "ann.example@example.org",
        "mailto:someone+tag@council.gov.uk",
        "ann [at] example [dot] org",
        "020 7946 0000",
        "020-7946-0000",
        "+44 7700 900123",
        "+447700900123",
        "+44 (0)20 7946 0000",
        "0044 161 496 0000",
        "07700900123",
        "07700 900 123",
        "(0161) 496 0000",
        "0161 496 0000",
        "0800 123 4567",
        "SW1A 1AA",
        "M1 1AE",
        "LS14AP",
        "12 High Street",
        "221B Baker Street, London NW1 6XE",
        "Flat 3, 45 Church Road",
        "7 Station Rd.",
    ],
)
def test_each_form_of_contact_detail_is_removed(text: str) -> None:
    out = scrub_contacts(f"Reach me at {text} any time.")
    assert out == f"Reach me at {CONTACT} any time.", out


@pytest.mark.parametrize(
    "text",
    [
        "The contract was worth £4,200,000 and saved £750k.",
        "It ran from 2015 to 2022; in 2019 Kent Road Services took over.",
        "Reference EV-000042, dated 01/04/2020, covered 3,000 staff and 12 fire stations.",
        "Invoice 123456789012 was paid on 1 April 2020.",
        "The Y2K 1st phase and the M25 widening.",
        "NHS 111 calls rose by 12%.",
        "They were paid 0.5 million and 10,000,000 in total.",
    ],
)
def test_ordinary_evidence_is_left_alone(text: str) -> None:
    assert scrub_contacts(text) == text


def test_an_address_on_one_line_becomes_one_marker() -> None:
    out = scrub_contacts("Write to 12 High Street, Little Snoring, Norfolk NR21 0AA or call 01328 000000.")
    assert out == f"Write to {CONTACT} or call {CONTACT}."


def test_an_address_over_several_lines_loses_its_street_and_postcode() -> None:
    out = scrub_contacts("My address:\n12 High Street\nLeeds\nLS1 4AP\n\nThe council failed.")
    assert "High Street" not in out and "LS1 4AP" not in out
    assert out.endswith("The council failed.")


def test_markers_next_to_each_other_merge() -> None:
    assert scrub_contacts("020 7946 0000, 07700 900123; a@b.org") == CONTACT


def test_a_name_goes_in_every_form_it_is_written() -> None:
    pats = name_patterns(["Ann Example"], ["ann.example@example.org"])
    text = ("I, Ann Example, managed payroll. Ann's manager agreed. -- ANN EXAMPLE\n"
            "Example, Ann (payroll lead); ann  example; contact ann.example@example.org")
    out = scrub(text, pats)
    assert out is not None
    for gone in ("Ann", "ANN", "Example", "EXAMPLE", "ann.example", "example.org"):
        assert gone not in out, out
    assert f"I, {NAME}, managed payroll. {NAME}'s manager agreed." in out
    assert CONTACT in out


def test_name_parts_are_words_and_names_not_ordinary_words() -> None:
    pats = name_patterns(["Dr Will Green-Smith"])
    out = scrub_names("Will Green-Smith said Mrs Smith will check the green bins. Dr annual.", pats)
    assert out == f"{NAME} said Mrs {NAME} will check the green bins. Dr annual."


def test_full_names_only_when_asked() -> None:
    pats = name_patterns(["Ann Example", "Bob"], parts=False)
    assert scrub_names("Ann Example met Ann Jones and Bob.", pats) == f"{NAME} met Ann Jones and Bob."


def test_nothing_to_scrub() -> None:
    assert name_patterns([None, "", "  "], [None]) == []
    assert scrub(None) is None
    assert scrub("", name_patterns(["Ann Example"])) == ""
    assert scrub_names("Ann Example", []) == "Ann Example"
