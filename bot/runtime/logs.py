"""Logging for every command: text or one JSON object per line, and no e-mail addresses either way.

The log calls themselves name records by reference and messages by id, never by sender, name,
subject or text. The formatters here are a safety net on top: whatever still looks like an e-mail
address in the final line (a library's message, an exception's text, a traceback) is masked.
Pass `extra={"reference": ..., "door": ...}` where a call knows them; JSON lines carry them as keys.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Local part, @, a domain with at least one dot or a bare host ("evidence@localhost").
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*", re.UNICODE)
MASK = "<address>"
CONTEXT_KEYS = ("reference", "door")


def mask_addresses(text: str) -> str:
    return _ADDRESS.sub(MASK, text) if "@" in text else text


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        # The first line, before any traceback: "… message [reference=EV-000042 door=smtp]".
        line = super().formatMessage(record)
        context = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_KEYS if getattr(record, k, None))
        return f"{line} [{context}]" if context else line

    def format(self, record: logging.LogRecord) -> str:
        return mask_addresses(super().format(record))


class JsonFormatter(logging.Formatter):
    """One object per line: time (ISO 8601 UTC), level, logger, message, and reference, door and
    exception when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for k in CONTEXT_KEYS:
            if (v := getattr(record, k, None)) is not None:
                out[k] = v
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        # Masked after encoding: a JSON string never holds a raw newline, so the mask cannot split a line.
        return mask_addresses(json.dumps(out, ensure_ascii=False, default=str))


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


class _Stderr(logging.StreamHandler):
    """Writes to sys.stderr as it is when a line is written, not as it was at set-up: whatever
    swaps sys.stderr for a while (a test's capture, a redirect) never leaves this handler writing
    to a closed stream ("--- Logging error ---" from another thread's line, later)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # StreamHandler.__init__ and setStream set it; the property always answers sys.stderr


def configure(level: str, fmt: str = "text") -> None:
    """The root logger to stderr in `fmt` ("text" or "json"); replaces any earlier set-up, so a
    worker process (bot.runtime.processor) can call it again."""
    handler = _Stderr()
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # a library's warning is a log line too, in the same format
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if level.upper() != "DEBUG":
        # aiosmtpd logs every SMTP command at INFO: too much for an operator, and it names senders.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
