"""One line of `evidence-bot doctor`'s report; bot.cli.doctor and bot.cli.doctor_net both yield them.

On its own so that the network checks need not import bot.cli.doctor, which imports them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    detail: str
    fix: str | None = None  # with ok: a suggestion, shown as "!"
