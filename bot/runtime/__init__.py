"""The running service (`evidence-bot serve`): the doors on one event loop, the processor, the outbox
worker and its performers (e-mail, Slack), the Slack app, metrics and logging.

The rules it applies live in the domain modules of bot/ (intake, review, decisions, privacy, pack
and the rest); the doors themselves are in handlers/. Nothing is imported here.
"""
