"""Review rules and mrkdwn safety, without any server."""

from __future__ import annotations

import pytest

from bot import mrkdwn
from bot.record import Outcome
from bot.review import Action, ReviewError, Reviewers, check_decision, parse_edit


@pytest.mark.parametrize(
    ("status", "action", "reason", "error"),
    [
        ("received", Action.REJECT, "", "a rejection needs a reason"),
        ("received", Action.REJECT, "   ", "a rejection needs a reason"),
        ("received", Action.NEEDS_INFO, None, "say what information is needed"),
        ("approved", Action.APPROVE, None, "already approved"),
        ("rejected", Action.NEEDS_INFO, "why?", "already rejected"),
        ("received", Action.APPROVE, "x" * 3001, "longer than 3000"),
    ],
)
def test_decisions_the_rules_refuse(status: str, action: Action, reason: str | None, error: str) -> None:
    with pytest.raises(ReviewError, match=error):
        check_decision(status=status, kind="evidence", action=action, reason=reason)


def test_decisions_the_rules_allow() -> None:
    assert check_decision(status="received", kind="evidence", action=Action.APPROVE, reason=None) is None
    assert check_decision(status="needs_info", kind="evidence", action=Action.REJECT, reason=" dup ") == "dup"
    with pytest.raises(ReviewError, match="only evidence"):
        check_decision(status="filed", kind="automatic", action=Action.APPROVE, reason=None)


def test_action_names_from_people() -> None:
    assert Action.parse("needs-info") is Action.NEEDS_INFO
    assert Action.parse("Approve") is Action.APPROVE
    assert Action.parse("maybe") is None


def test_reviewers_users_and_groups_deny_on_doubt() -> None:
    r = Reviewers.parse(["U1", " S9 ", ""])
    assert r.users == {"U1"} and r.groups == {"S9"}
    assert r.allows("U1", None)
    assert r.allows("U2", {"S9": ["U2", "U3"]})
    assert not r.allows("U2", None)  # group lookup failed: deny
    assert not r.allows("U4", {"S9": ["U2"]})
    assert not Reviewers.parse([]).allows("U1", {})


def test_field_corrections_are_typed_and_checked() -> None:
    values, errors = parse_edit({
        "contract_value_gbp": "£45m", "savings_gbp": "", "outcome": "Failure", "confidential": "yes",
        "supplier": "  Capita ", "reference": "EV-000009",
    })
    assert values == {"contract_value_gbp": 45_000_000, "savings_gbp": None, "outcome": Outcome.FAILURE,
                      "confidential": True, "supplier": "Capita"}
    assert errors == {}
    _, errors = parse_edit({"contract_value_gbp": "lots", "outcome": "meh"})
    assert set(errors) == {"contract_value_gbp", "outcome"}


def test_mentions_and_links_cannot_ping_or_mislead() -> None:
    text = "<!channel> <!here> <!everyone> <@U123> <https://evil.example|your bank> & co"
    out = mrkdwn.escape(text)
    assert "<" not in out and ">" not in out
    assert out.startswith("&lt;!channel&gt;") and "&amp; co" in out


def test_cutting_keeps_the_limit_and_whole_entities() -> None:
    out = mrkdwn.safe("a&b " * 2000, 3000)
    assert len(out) <= 3000 and out.endswith("…")
    assert not out[:-1].rstrip().endswith(("&", "&a", "&am", "&amp"))
    assert mrkdwn.safe("short", 10) == "short"
