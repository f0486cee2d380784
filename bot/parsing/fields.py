"""Finds the evidence fields in clean text: template `Field: value` lines and free prose.

PLACEHOLDER: the real implementation replaces this module (same public names).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.record import Outcome


@dataclass
class Fields:
    project: str | None = None
    public_body: str | None = None
    supplier: str | None = None
    service_area: str | None = None
    outcome: Outcome = Outcome.UNKNOWN
    contract_value_gbp: int | None = None
    savings_gbp: int | None = None
    period: str | None = None
    confidential: bool = False
    declared_interests: str | None = None
    # The text with the recognised template lines taken out: the free evidence prose.
    prose: str = ""


def extract_fields(text: str) -> Fields:
    raise NotImplementedError


def make_summary(prose: str, limit: int = 600) -> str:
    raise NotImplementedError
