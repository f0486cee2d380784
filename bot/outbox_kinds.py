"""The outbox kinds that the domain queues and bot.runtime performs: Slack posts and e-mail notices.

Names only, importing nothing, so that intake, campaigns, decisions, withdraw and privacy can all
queue work without importing one another. (The receipt's kind is bot.acks.KIND, beside its content.)
"""

# Slack; performed by the Slack performer (bot.runtime.slack_outbox) when Slack is configured, queued otherwise.
SLACK_SUMMARY = "slack_summary"
SLACK_UPDATE = "slack_update"
SLACK_THREAD = "slack_thread"
SLACK_DM = "slack_dm"
SLACK_FILES = "slack_files"  # the original attachments (and an over-long text) into the summary's thread
SLACK_FILES_DELETE = "slack_files_delete"  # erasure: the files uploaded for a record

# The decision and withdrawal notices to the submitter, sent through the relay like the receipt.
EMAIL = "email"
