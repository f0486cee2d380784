"""The Slack submission modal's values as an evidence record (the Slack door's parser).

Pure: the handler passes plain strings; the same money and outcome rules as e-mail apply.
"""

from __future__ import annotations

from datetime import datetime

from bot.parsing.fields import extract_fields, make_summary
from bot.parsing.money import is_negative, parse_money
from bot.record import Channel, EvidenceRecord, Kind, Outcome

# The modal's inputs, in order: (name, label, multiline, required)
FORM = (
    ("project", "Project", False, True),
    ("public_body", "Public body", False, True),
    ("supplier", "Supplier", False, False),
    ("service_area", "Service area", False, False),
    ("contract_value", "Contract value", False, False),
    ("savings", "Savings", False, False),
    ("period", "Period", False, False),
    ("evidence", "What happened, what went right or wrong, and why", True, True),
    ("declared_interests", "Declaration of interests", True, False),
)
OUTCOMES = (("success", "Success"), ("failure", "Failure"), ("mixed", "Mixed"), ("unknown", "Not sure yet"))
MAX_EVIDENCE = 3000  # Slack's own limit for a plain_text_input
NOT_MONEY = "Not an amount of money: try £45m, £750k or 4,200,000"
NEGATIVE = "Please give a positive amount: a loss or an overspend goes in your account of what happened"


def validate(values: dict[str, str | None]) -> dict[str, str]:
    """Errors keyed by input name, in words for the person filling in the form."""
    errors: dict[str, str] = {}
    for name, label, _, required in FORM:
        if required and not (values.get(name) or "").strip():
            errors[name] = "Please tell us what happened" if name == "evidence" else f"{label} is needed"
    for name in ("contract_value", "savings"):
        text = (values.get(name) or "").strip()
        if not text:
            continue
        value = parse_money(text)
        # parse_money drops the sign: "-£5m" of savings would be stored as £5m saved. Only text with
        # a figure in it is called negative; "n/a - unknown" is simply not money.
        if is_negative(text) and (value is not None or any(c.isdigit() for c in text)):
            errors[name] = NEGATIVE
        elif value is None:
            errors[name] = NOT_MONEY
    return errors


def _amount(text: str | None) -> int | None:
    """The form's amount; None for a negative one, which validate() refuses (the sign would be lost)."""
    text = (text or "").strip()
    return None if not text or is_negative(text) else parse_money(text)


def _publication(chosen: str | None, confidential: str | None, from_text: str) -> str:
    """The form's choice; else "keep my name confidential" means anonymous; else what the text asked."""
    if chosen in ("named", "anonymous", "not_for_publication"):
        return chosen
    if confidential == "yes" and from_text == "named":
        return "anonymous"
    return from_text


def _clean(v: str | None) -> str | None:
    v = (v or "").strip()
    return v or None


def record_from_form(
    values: dict[str, str | None], *, user_id: str, user_name: str | None, received_at: datetime | None = None
) -> EvidenceRecord:
    body = (values.get("evidence") or "").strip()
    found = extract_fields(body)  # prose in the evidence text fills what the form left blank
    outcome_text = (values.get("outcome") or "").strip().lower()
    outcome = Outcome(outcome_text) if outcome_text in {o.value for o in Outcome} else found.outcome
    if outcome is Outcome.UNKNOWN:
        outcome = found.outcome
    project = _clean(values.get("project"))
    return EvidenceRecord(
        kind=Kind.EVIDENCE,
        channel=Channel.SLACK,
        submitter_name=user_name,
        submitter_email=None,
        title=project,
        project=project,
        public_body=_clean(values.get("public_body")) or found.public_body,
        supplier=_clean(values.get("supplier")) or found.supplier,
        service_area=_clean(values.get("service_area")) or found.service_area,
        outcome=outcome,
        contract_value_gbp=_amount(values.get("contract_value")) or found.contract_value_gbp,
        savings_gbp=_amount(values.get("savings")) or found.savings_gbp,
        period=_clean(values.get("period")) or found.period,
        confidential=(values.get("confidential") == "yes") or found.confidential,
        publication=_publication(values.get("publication"), values.get("confidential"), found.publication),
        declared_interests=_clean(values.get("declared_interests")),
        summary=make_summary(found.prose or body) or project,
        body=body or None,
        received_at=received_at,
        message_id=None,
    )
