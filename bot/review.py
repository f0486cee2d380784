"""Review rules: who may decide, which decisions are possible, and what a field correction means.

Pure: no Slack, SMTP or database imports, so the Slack buttons, the `decide` command and any later
door apply exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.parsing.money import is_negative, parse_money
from bot.record import Outcome, Status

UNDECIDED = frozenset({Status.RECEIVED, Status.NEEDS_INFO})


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    NEEDS_INFO = "needs_info"

    @classmethod
    def parse(cls, text: str) -> Action | None:
        t = text.strip().lower().replace("-", "_").replace(" ", "_")
        return {"approve": cls.APPROVE, "approved": cls.APPROVE, "reject": cls.REJECT, "rejected": cls.REJECT,
                "needs_info": cls.NEEDS_INFO, "request_info": cls.NEEDS_INFO, "more_info": cls.NEEDS_INFO}.get(t)


RESULT = {Action.APPROVE: Status.APPROVED, Action.REJECT: Status.REJECTED, Action.NEEDS_INFO: Status.NEEDS_INFO}
MAX_REASON = 3000


class ReviewError(Exception):
    """A decision that the rules refuse; the message is fit to show the reviewer."""


def check_decision(*, status: str, kind: str, action: Action, reason: str | None) -> str | None:
    """The reason as it will be stored, or ReviewError. `status` is the record's current one."""
    if kind != "evidence":
        raise ReviewError("only evidence records are reviewed")
    if status not in UNDECIDED:
        raise ReviewError(f"this record is already {status}")
    text = (reason or "").strip()
    if action is Action.REJECT and not text:
        raise ReviewError("a rejection needs a reason")
    if action is Action.NEEDS_INFO and not text:
        raise ReviewError("say what information is needed")
    if len(text) > MAX_REASON:
        raise ReviewError(f"the reason is longer than {MAX_REASON} characters")
    return text or None


@dataclass(frozen=True)
class Reviewers:
    """EVIDENCE_REVIEWERS: user IDs (U…/W…) and user-group IDs (S…)."""

    users: frozenset[str]
    groups: frozenset[str]

    @classmethod
    def parse(cls, ids: Iterable[str]) -> Reviewers:
        ids = [i.strip() for i in ids if i.strip()]
        return cls(frozenset(i for i in ids if not i.startswith("S")), frozenset(i for i in ids if i.startswith("S")))

    def allows(self, user_id: str, group_members: Mapping[str, Iterable[str]] | None) -> bool:
        """True only for a named reviewer or a member of a named group.

        `group_members` is None when the groups could not be looked up: then only named users pass
        (deny on doubt).
        """
        if user_id in self.users:
            return True
        if not self.groups or group_members is None:
            return False
        return any(user_id in set(group_members.get(g, ())) for g in self.groups)


EDITABLE = ("title", "project", "public_body", "supplier", "service_area", "outcome", "contract_value_gbp",
            "savings_gbp", "period", "confidential", "declared_interests", "summary", "publication")


def parse_edit(values: Mapping[str, str | None]) -> tuple[dict[str, object], dict[str, str]]:
    """Typed field values from a form (money, outcome, yes/no), and an error per bad field."""
    out: dict[str, object] = {}
    errors: dict[str, str] = {}
    for name, raw in values.items():
        if name not in EDITABLE:
            continue
        text = (raw or "").strip()
        if name in ("contract_value_gbp", "savings_gbp"):
            if not text:
                out[name] = None
                continue
            # parse_money finds the figure in "-£5m" or "minus £5m" and drops the sign: here that
            # would store a loss the reviewer typed as a saving of the same size.
            if is_negative(text):
                errors[name] = "Amounts cannot be negative: give the sum as a positive amount"
                continue
            value = parse_money(text)
            if value is None:
                errors[name] = "Not an amount of money: try £45m, £750k or 4,200,000"
            else:
                out[name] = value
        elif name == "outcome":
            try:
                out[name] = Outcome(text.lower() or "unknown")
            except ValueError:
                errors[name] = "Choose success, failure, mixed or unknown"
        elif name == "confidential":
            out[name] = text.lower() in ("yes", "true", "1", "y", "confidential")
        elif name == "publication":
            if text not in ("named", "anonymous", "not_for_publication"):
                errors[name] = "Choose named, anonymous or not for publication"
            else:
                out[name] = text
        else:
            out[name] = text or None
    return out, errors
