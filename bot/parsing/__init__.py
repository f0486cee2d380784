"""Turns raw submissions into typed evidence records; free of SMTP, Slack and database imports."""
