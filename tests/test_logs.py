"""The log names no one: mail from a distinctive person goes in through SMTP, a webhook and
`import`, a real `serve` files and acknowledges it (the relay refusing once, quoting the address),
and no log line, text or JSON, holds the name, the address, its local part or the evidence's words.
In JSON every line is an object with the required keys, and the record's reference is in one."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import smtplib
import sys
import time
import urllib.request
from email.message import EmailMessage
from pathlib import Path
from shutil import copyfile

import pytest

from bot.runtime.logs import JsonFormatter, TextFormatter
from tests.support.sink import Sink, free_port
from tests.test_cli import run
from tests.test_crash import ServeProcess
from tests.test_webhooks import SECRET, raw_headers

NAME = "Zebedee Quillfeather"
ADDRESS = "zebedee.quillfeather@example.org"
PHRASE = "marmalade turbine overspend"
FORBIDDEN = [NAME, "Zebedee", "Quillfeather", ADDRESS, "zebedee.quillfeather", PHRASE, "marmalade"]
REF = re.compile(r"\[(EV-\d+)\]")


def letter(n: int) -> bytes:
    m = EmailMessage()
    m["From"] = f"{NAME} <{ADDRESS}>"
    m["To"] = "evidence@localhost"
    m["Subject"] = f"The {PHRASE}, part {n}"
    m["Message-ID"] = f"<zq-{n}-{os.getpid()}-{time.monotonic_ns()}@example.org>"
    m.set_content(f"Project: Turbines {n}\nSupplier: Quillfeather Holdings\n\nI saw the {PHRASE} myself.\n"
                  f"Write to me at {ADDRESS}.\n{NAME}\n")
    return bytes(m)


def wait(cond: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_personal_data_in_the_log(fmt: str, tmp_path: Path, sqlite_template: Path) -> None:
    copyfile(sqlite_template, tmp_path / "evidence.db")
    db_url = f"sqlite:///{tmp_path}/evidence.db"
    log = tmp_path / "serve.log"
    web_port = free_port()
    env = {"EVIDENCE_LOG_FORMAT": fmt, "EVIDENCE_INBOUND_SECRET": SECRET, "PORT": str(web_port),
           "EVIDENCE_RETRY_BASE_SECONDS": "0.2", "EVIDENCE_ADDRESSES": "evidence@localhost"}
    with Sink() as sink:
        # The relay's refusal quotes the address, as Postfix does; the log must not repeat it.
        sink.fail(f"451 4.1.1 <{ADDRESS}>: Recipient address rejected: try again, {NAME}")
        serve = ServeProcess(db_url, sink.url, log, extra_env=env)
        try:
            serve.wait_ready()
            with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as c:
                c.sendmail(ADDRESS, ["evidence@localhost"], letter(1))
            wait(lambda: "will be retried" in log.read_text())
            sink.fail(None)
            wait(lambda: len(sink.messages) == 1)
            raw = letter(2)
            req = urllib.request.Request(f"http://127.0.0.1:{web_port}/inbound/raw", data=raw,
                                         headers={**raw_headers(raw), "X-Evidence-Envelope-From": ADDRESS})
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200
            wait(lambda: len(sink.messages) == 2)
            (tmp_path / "three.eml").write_bytes(letter(3))
            imported = run("import", str(tmp_path / "three.eml"), db_url=db_url,
                           env={"EVIDENCE_LOG_FORMAT": fmt, "EVIDENCE_ADDRESSES": "evidence@localhost"})
            assert imported.returncode == 0, imported.stderr
            wait(lambda: len(sink.messages) == 3)
        finally:
            if serve.proc.poll() is None:
                os.killpg(serve.proc.pid, signal.SIGTERM)  # a clean stop: every line is written
            serve.proc.wait(timeout=30)
    assert all(m.rcpt_tos == [ADDRESS] for m in sink.messages)  # the mail itself did name them
    references = {REF.search(str(m.message["Subject"])).group(1) for m in sink.messages}  # type: ignore[union-attr]
    lines = [ln for ln in log.read_text().splitlines() if not ln.startswith("----- serve on port")]
    lines += imported.stderr.splitlines()
    assert len(lines) > 5
    for line in lines:
        for word in FORBIDDEN:
            assert word.lower() not in line.lower(), f"{word!r} in: {line}"
    if fmt == "json":
        parsed = [json.loads(line) for line in lines]  # every line is one JSON object
        for obj in parsed:
            assert {"time", "level", "logger", "message"} <= set(obj), obj
        carried = {obj.get("reference") for obj in parsed}
        assert references & carried, (references, carried)
        assert any(obj.get("door") == "smtp" for obj in parsed)
    else:
        assert any(f"reference={r}" in line for line in lines for r in references)


def test_the_formatters_mask_what_slips_through() -> None:
    """The safety net: an address in a library's message or an exception's text is masked."""
    try:
        raise ValueError(f"bad recipient <{ADDRESS}>")
    except ValueError:
        record = logging.LogRecord("lib", logging.ERROR, __file__, 1, "refused %s", (ADDRESS,), exc_info=None)
        record.exc_info = sys.exc_info()
    record.reference = "EV-000007"
    obj = json.loads(JsonFormatter().format(record))
    assert obj["message"] == "refused <address>" and obj["reference"] == "EV-000007"
    assert ADDRESS not in obj["exception"] and "<address>" in obj["exception"]
    record.exc_text = None
    text = TextFormatter().format(record)
    assert ADDRESS not in text and "[reference=EV-000007]" in text.splitlines()[0]


def test_the_log_follows_stderr_when_it_is_swapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler bound to the stderr of its set-up wrote to a closed stream once that was swapped
    back and closed (an in-process command's capture), from any thread that logged later."""
    import io

    from bot.runtime import logs

    root = logging.getLogger()
    kept, level = list(root.handlers), root.level
    first, second = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr(sys, "stderr", first)
        logs.configure("INFO")
        monkeypatch.setattr(sys, "stderr", second)
        first.close()
        logging.getLogger("bot.test").warning("after the swap")
        out = second.getvalue()
        assert "Logging error" not in out  # what the old handler printed, quoting the message
        assert "WARNING" in out and out.rstrip().endswith("after the swap")
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in kept:
            root.addHandler(h)
        root.setLevel(level)
