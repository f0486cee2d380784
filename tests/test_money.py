"""Money parsing: every common British way of writing a sum, in whole pounds."""

from __future__ import annotations

import pytest

from bot.parsing.money import find_money, parse_money


@pytest.mark.parametrize(
    ("text", "pounds"),
    [
        ("£45m", 45_000_000),
        ("£45M", 45_000_000),
        ("£45 m", 45_000_000),
        ("£45mn", 45_000_000),
        ("£3.25 million", 3_250_000),
        ("£3.25 Million", 3_250_000),
        ("£1bn", 1_000_000_000),
        ("£1.2 billion", 1_200_000_000),
        ("£1.5b", 1_500_000_000),
        ("£750k", 750_000),
        ("£750K", 750_000),
        ("£75 thousand", 75_000),
        ("£4,200,000", 4_200_000),
        ("£4,200", 4_200),
        ("£250", 250),
        ("£ 45m", 45_000_000),
        ("7.5 million pounds", 7_500_000),
        ("300,000 pounds sterling", 300_000),
        ("2m GBP", 2_000_000),
        ("GBP 2m", 2_000_000),
        ("GBP2,000,000", 2_000_000),
        ("gbp 1.1m", 1_100_000),
        ("45 million", 45_000_000),
        ("45m", 45_000_000),
        ("750k", 750_000),
        ("4,200,000", 4_200_000),
        ("4200000", 4_200_000),
        ("£12,000 a year", 12_000),
        ("£12,000 per annum", 12_000),
        ("£4.50", 5),  # pence round half up to whole pounds
        ("£0", 0),
        # Ranges: the first (lower) figure, documented in money.py.
        ("£2.5m-£3m", 2_500_000),
        ("£2.5m – £3m", 2_500_000),
        ("£2.5-3m", 2_500_000),
        ("£2m to £3m", 2_000_000),
        ("about £320m over ten years", 320_000_000),
        ("Contract value: £2m", 2_000_000),
    ],
)
def test_parse_money_forms(text: str, pounds: int) -> None:
    assert parse_money(text) == pounds


@pytest.mark.parametrize(
    "text",
    ["", "not known", "n/a", "a lot", "ten-year deal", "£", "commercially sensitive"],
)
def test_parse_money_none(text: str) -> None:
    assert parse_money(text) is None


def test_parse_money_takes_the_first_amount() -> None:
    assert parse_money("£320m, of which £12m was savings") == 320_000_000


def test_range_tail_that_is_a_year_is_not_money() -> None:
    found = find_money("It cost £2m to 2019 and then £3m more.")
    assert [m.value for m in found] == [2_000_000, 3_000_000]
    assert found[0].text == "£2m"


def test_unit_must_not_run_into_a_word() -> None:
    # "£45 more" is forty-five pounds, not forty-five million.
    assert parse_money("£45 more") == 45


def test_strict_mode_needs_a_currency() -> None:
    text = "The trust serves 2 million patients and signed a £45m contract."
    assert [m.value for m in find_money(text)] == [45_000_000]
    assert [m.value for m in find_money(text, lenient=True)] == [2_000_000, 45_000_000]


def test_find_money_positions_and_text() -> None:
    text = "A £120m deal saved £1.2m and cost 7.5 million pounds."
    found = find_money(text)
    assert [(m.text, m.value) for m in found] == [
        ("£120m", 120_000_000),
        ("£1.2m", 1_200_000),
        ("7.5 million pounds", 7_500_000),
    ]
    assert all(text[m.start : m.end] == m.text for m in found)


@pytest.mark.parametrize("text", ["£1,000,000,000,000,000,000,000", "£" + "9" * 40, "£5000000bn"])
def test_implausible_amounts_are_none(text: str) -> None:
    assert parse_money(text) is None


@pytest.mark.parametrize(("text", "pounds"), [
    ("£2 trillion", 2_000_000_000_000), ("£1.5tn", 1_500_000_000_000), ("two trillion pounds", 2_000_000_000_000),
    ("£9 Millionaires' Row", 9),  # a word that only begins like a scale is not one
])
def test_trillions_are_read(text: str, pounds: int) -> None:
    assert parse_money(text) == pounds


@pytest.mark.parametrize("text", ["£9.3 quintillion", "£10 zillion", "Contract value: £4 gazillion"])
def test_a_scale_word_it_does_not_know_gives_no_amount_rather_than_a_wrong_one(text: str) -> None:
    # These read as £9, £10 and £4 before: a reviewer would have seen a figure nobody wrote.
    assert parse_money(text) is None
