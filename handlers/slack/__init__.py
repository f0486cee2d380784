"""The Slack door: bolt listeners registered per kind by `register(app, services)`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.runtime.services import Services


def register(app: AsyncApp, services: Services) -> None:
    """Adds every listener of the Slack door to `app` (one module per listener kind)."""
    # Imported here so that importing `handlers.slack.blocks` (the outbox does) stays free of bolt.
    from handlers.slack import actions, campaign_actions, commands, errors, home, shortcuts, views

    errors.register(app)
    commands.register(app, services)
    actions.register(app, services)
    campaign_actions.register(app, services)
    views.register(app, services)
    shortcuts.register(app, services)
    home.register(app, services)
