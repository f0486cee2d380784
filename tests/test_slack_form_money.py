"""Negative amounts in the submitter's evidence form: refused with a field error, never stored as positive.

parse_money finds the figure in "-£5m" and drops the sign; the reviewers' edit form already
refused such amounts (bot.review.parse_edit), and the submitter's form now shares the same check
(bot.parsing.money.is_negative). Ranges, whose dash is not a sign, still read as before.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from bot.parsing.money import is_negative
from bot.parsing.slack_form import NEGATIVE, NOT_MONEY, record_from_form, validate
from bot.review import parse_edit
from tests.test_slack_flows import GOOD, Env, running, wait_until

NEGATIVES = ("-£5m", "−£5m", "– £750k", "minus £5m", "Minus 5 million pounds", "(£5m)", "£-5m", "-5000000",
             "negative £2m")
RANGES = {"£5m-£10m": 5_000_000, "£5m – £10m": 5_000_000, "£2.5-3m": 2_500_000, "£2m to £3m": 2_000_000,
          "5m-10m": 5_000_000}


@pytest.mark.parametrize("field", ["contract_value", "savings"])
@pytest.mark.parametrize("text", NEGATIVES)
def test_the_form_refuses_a_negative_amount(field: str, text: str) -> None:
    assert validate({**GOOD, field: text}) == {field: NEGATIVE}


@pytest.mark.parametrize("text", NEGATIVES)
def test_the_form_and_the_edit_form_agree_on_what_is_negative(text: str) -> None:
    assert is_negative(text)
    _, errors = parse_edit({"savings_gbp": text})
    assert "negative" in errors["savings_gbp"]


@pytest.mark.parametrize(("text", "pounds"), RANGES.items())
def test_ranges_still_read_as_their_lower_figure(text: str, pounds: int) -> None:
    assert not is_negative(text)
    assert validate({**GOOD, "savings": text}) == {}
    rec = record_from_form({**GOOD, "savings": text, "contract_value": text}, user_id="U1", user_name="u1")
    assert rec.savings_gbp == pounds and rec.contract_value_gbp == pounds


def test_a_dash_that_is_no_amount_is_still_called_not_money() -> None:
    """"-" or "n/a - unknown" hold no figure: "cannot be negative" would puzzle the person."""
    for text in ("-", "n/a - unknown"):
        assert validate({**GOOD, "contract_value": text}) == {"contract_value": NOT_MONEY}, text


def test_a_negative_amount_that_reached_the_parser_is_not_stored_as_positive() -> None:
    """record_from_form also reads drafts stored earlier, which no validation checked."""
    rec = record_from_form({**GOOD, "savings": "-£5m", "contract_value": "(£45m)"}, user_id="U1", user_name="u1")
    assert rec.savings_gbp is None and rec.contract_value_gbp is None


def test_the_messages_fit_under_a_slack_input() -> None:
    from handlers.slack.views import ERROR_MAX

    assert len(NEGATIVE) <= ERROR_MAX and len(NOT_MONEY) <= ERROR_MAX


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[Env]:
    async with running(db_url) as e:
        yield e


async def test_a_negative_amount_keeps_the_evidence_form_open(env: Env) -> None:
    answer = json.loads(await env.submit({**GOOD, "contract_value": "£45m", "savings": "−£5m"}))
    assert answer == {"response_action": "errors", "errors": {"savings": NEGATIVE}}
    await asyncio.sleep(0.2)
    assert env.submissions() == []
    # Corrected and submitted again (the same modal), it is filed with the amounts as typed.
    assert await env.submit({**GOOD, "contract_value": "£5m-£10m", "savings": "£5m"}) == ""
    (sub,) = await wait_until(env.submissions, what="the record")
    assert sub.contract_value_gbp == 5_000_000 and sub.savings_gbp == 5_000_000
