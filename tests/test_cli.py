"""The command line, run as a user runs it: a subprocess with the environment as configuration."""

from __future__ import annotations

import csv
import io
import json
import mailbox
import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, db_url: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "DATABASE_URL", "SLACK_"))}
    if db_url:
        e["DATABASE_URL"] = db_url
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=e,
                          cwd=ROOT, timeout=120)


def one_clear_line(p: subprocess.CompletedProcess[str]) -> str:
    out = (p.stderr + p.stdout).strip()
    assert p.returncode != 0
    assert "Traceback" not in out
    assert len(out.splitlines()) == 1, out
    return out


def mail(i: int, sender: str = "ann@example.org", *, body: str | None = None) -> EmailMessage:
    m = EmailMessage()
    m["From"] = f"Ann Example <{sender}>"
    m["To"] = "evidence@localhost"
    m["Subject"] = f"Evidence: fleet maintenance {i}"
    m["Message-ID"] = f"<cli-{i}@example.org>"
    m.set_content(body or (
        f"Project: Fleet {i}\nPublic body: Hampshire and Isle of Wight Fire and Rescue Service\n"
        "Supplier: Babcock\nContract value: £4,200,000\nSavings: £750k\nOutcome: mixed\n\n"
        "Vehicles were off the road for longer than before, but costs fell.\n"
    ))
    return m


def test_help_lists_every_command() -> None:
    p = run("--help")
    assert p.returncode == 0
    for sub in ("serve", "parse", "import", "list", "show", "export", "db"):
        assert sub in p.stdout


def test_parse_prints_the_record_json(tmp_path: Path) -> None:
    f = tmp_path / "one.eml"
    f.write_bytes(bytes(mail(1)))
    p = run("parse", "--json", str(f))
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    assert rec["kind"] == "evidence" and rec["message_id"] == "<cli-1@example.org>"
    assert rec["contract_value_gbp"] == 4_200_000 and rec["savings_gbp"] == 750_000
    assert rec["outcome"] == "mixed" and rec["reference"] is None


@pytest.mark.parametrize(
    ("args", "env", "expect"),
    [
        (("parse", "/nonexistent/x.eml"), {}, "no such file"),
        (("show",), {}, "the following arguments are required"),
        (("frobnicate",), {}, "invalid choice"),
        (("export", "--format", "pdf"), {}, "invalid choice"),
        (("list",), {"EVIDENCE_SMTP_PORT": "lots"}, "EVIDENCE_SMTP_PORT"),
        (("list",), {"EVIDENCE_ADDRESSES": "not-an-address"}, "EVIDENCE_ADDRESSES"),
        (("list",), {"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        (("list",), {"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/none"}, "database unavailable"),
        (("import", "/nonexistent/folder"), {}, "no such file or folder"),
    ],
)
def test_bad_input_is_one_clear_line(args: tuple[str, ...], env: dict[str, str], expect: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/x.db"
    run("db", "upgrade", db_url=db)
    out = one_clear_line(run(*args, db_url=env.pop("DATABASE_URL", db), env=env))
    assert expect in out


def test_commands_on_an_unmigrated_database_say_what_to_run(tmp_path: Path) -> None:
    out = one_clear_line(run("list", db_url=f"sqlite:///{tmp_path}/fresh.db"))
    assert "evidence-bot db upgrade" in out
    out = one_clear_line(run("serve", db_url=f"sqlite:///{tmp_path}/fresh.db", env={"EVIDENCE_SMTP_PORT": "0"}))
    assert "evidence-bot db upgrade" in out


def test_import_list_show_export_round_trip(db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.eml").write_bytes(bytes(mail(i)))
    p = run("import", str(folder), db_url=db_url)
    assert p.returncode == 0, p.stderr
    assert "imported 3 message(s), skipped 0 duplicate(s): 3 evidence" in p.stdout
    p = run("import", str(folder), db_url=db_url)
    assert "imported 0 message(s), skipped 3 duplicate(s)" in p.stdout

    records = json.loads(run("list", "--json", db_url=db_url).stdout)
    assert [r["reference"] for r in records] == ["EV-000001", "EV-000002", "EV-000003"]
    assert all(r["status"] == "received" and r["channel"] == "email" for r in records)

    shown = json.loads(run("show", "ev-000002", "--json", db_url=db_url).stdout)
    assert shown["message_id"] == "<cli-1@example.org>" and shown["savings_gbp"] == 750_000
    human = run("show", "EV-000002", db_url=db_url).stdout
    assert "Hampshire and Isle of Wight Fire and Rescue Service" in human and "Vehicles were off" in human
    assert "EV-999999" in one_clear_line(run("show", "EV-999999", db_url=db_url))

    lines = run("export", "--format", "jsonl", db_url=db_url).stdout.splitlines()
    assert [json.loads(x)["reference"] for x in lines] == ["EV-000001", "EV-000002", "EV-000003"]
    out = tmp_path / "out.csv"
    assert run("export", "--format", "csv", "-o", str(out), db_url=db_url).returncode == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["reference"] for r in rows] == ["EV-000001", "EV-000002", "EV-000003"]
    assert rows[0]["supplier"] == "Babcock"

    assert "EV-000001" in run("list", db_url=db_url).stdout
    assert json.loads(run("list", "--status", "approved", "--json", db_url=db_url).stdout) == []


def test_import_mbox_and_maildir(db_url: str, tmp_path: Path) -> None:
    mb = mailbox.mbox(tmp_path / "old.mbox")
    for i in range(2):
        mb.add(mail(i))
    mb.flush()
    mb.close()
    md = mailbox.Maildir(tmp_path / "Maildir")
    md.add(mail(10))
    md.add(mail(0))  # also in the mbox: a duplicate
    md.flush()
    p = run("import", str(tmp_path / "old.mbox"), db_url=db_url)
    assert "imported 2 message(s)" in p.stdout, p.stderr
    p = run("import", str(tmp_path / "Maildir"), db_url=db_url)
    assert "imported 1 message(s), skipped 1 duplicate(s)" in p.stdout, p.stderr
    refs = [r["reference"] for r in json.loads(run("list", "--json", db_url=db_url).stdout)]
    assert refs == ["EV-000001", "EV-000002", "EV-000003"]


def test_import_of_an_automatic_reply_is_kept_but_has_no_reference(db_url: str, tmp_path: Path) -> None:
    m = mail(1)
    m["Auto-Submitted"] = "auto-replied"
    (tmp_path / "auto.eml").write_bytes(bytes(m))
    p = run("import", str(tmp_path / "auto.eml"), db_url=db_url)
    assert "1 automatic" in p.stdout, p.stderr
    recs = json.loads(run("list", "--json", db_url=db_url).stdout)
    assert [(r["kind"], r["reference"], r["status"]) for r in recs] == [("automatic", None, "filed")]


def test_a_misspelt_status_is_an_error_not_an_empty_list(db_url: str) -> None:
    # "list --status aproved" printed "no records": a reader took it for the truth (export checks too).
    out = one_clear_line(run("list", "--status", "aproved", db_url=db_url))
    assert "invalid choice: 'aproved'" in out and "approved" in out
