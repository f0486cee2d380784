"""Evidence references such as EV-000042: formatting and finding them in text."""

from __future__ import annotations

import re


def format_reference(prefix: str, number: int) -> str:
    return f"{prefix}-{number:06d}"


def reference_pattern(prefix: str) -> re.Pattern[str]:
    """Matches a reference with this prefix anywhere in a text, e.g. in `Re: [EV-000042] ...`."""
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(prefix)}-(\d{{6,}})(?![0-9])", re.IGNORECASE)


def find_reference(text: str | None, prefix: str) -> str | None:
    if not text:
        return None
    m = reference_pattern(prefix).search(text)
    return format_reference(prefix.upper(), int(m.group(1))) if m else None


def parse_reference(text: str, prefix: str) -> int | None:
    """The number of a reference typed by a person (`EV-000042`, `ev-42`, `42`), or None."""
    m = re.fullmatch(rf"\s*(?:{re.escape(prefix)}-)?0*(\d{{1,12}})\s*", text, re.IGNORECASE)
    return int(m.group(1)) if m else None
