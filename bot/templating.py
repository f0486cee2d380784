"""The Jinja2 environment over the top-level `templates/` package."""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bot import mrkdwn


@lru_cache(maxsize=1)
def environment() -> Environment:
    # Autoescape the HTML templates only; StrictUndefined turns a typo into an error, not a blank.
    env = Environment(
        loader=PackageLoader("templates", ""),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["mrkdwn"] = mrkdwn.escape
    return env


def render(template: str, /, **context: object) -> str:
    return environment().get_template(template).render(**context)
