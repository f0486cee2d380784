"""Small text helpers the parsing modules share."""

from __future__ import annotations

from collections.abc import Iterable


def join_paragraphs(lines: Iterable[str]) -> str:
    """Joins lines, keeping at most one blank line between paragraphs and none at either end."""
    out: list[str] = []
    blank = False
    for line in lines:
        if not line:
            blank = True
            continue
        if out and blank:
            out.append("")
        blank = False
        out.append(line)
    return "\n".join(out)
