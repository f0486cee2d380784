"""`evidence-bot doctor`, run as a user runs it, against local stand-ins: the Slack API (FakeSlack),
a relay (Sink), a DNS server serving MX and A records. One run where everything works, then one
run per failure, each of which must name that failure and exit 1."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli.doctor_net import BOT_SCOPES, MANIFEST
from tests.support.dns_server import DnsServer
from tests.support.sink import Sink, free_port
from tests.support.slack_api import FakeSlack
from tests.test_cli import one_clear_line, run

CHANNEL = "C0REVIEW"


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        server.add_mx("example.org", (10, "mx.example.org"))
        server.add_a("mx.example.org", "127.0.0.1")  # this host: binding to it works
        yield server


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as s:
        s.add_user("U0ALICE")
        s.usergroups["S0REVIEW"] = ["U0BOB", "U0CAROL"]
        s.member_of.add(CHANNEL)
        yield s


def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    shutil.copyfile(sqlite_template, tmp_path / "evidence.db")
    return f"sqlite:///{tmp_path}/evidence.db"


def environment(db_url: str, dns: DnsServer, sink: Sink, slack: FakeSlack, **changes: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": db_url,
        "EVIDENCE_ADDRESSES": "evidence@example.org",
        "EVIDENCE_SMTP_HOST": "127.0.0.1",
        "EVIDENCE_SMTP_PORT": str(free_port()),
        "EVIDENCE_DNS_SERVERS": dns.address,
        "EVIDENCE_RELAY_URL": sink.url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "EVIDENCE_REVIEW_CHANNEL": CHANNEL,
        "EVIDENCE_REVIEWERS": "U0ALICE,S0REVIEW",
        "EVIDENCE_INBOUND_SECRET": "s3cret-long-enough-for-hmac",
    }
    env.update(changes)
    return env


async def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the Slack stand-in answers on this test's event loop.
    return await asyncio.to_thread(run, "doctor", *args, env=env)


def results(p: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    assert "Traceback" not in p.stderr + p.stdout
    return {r["check"]: r for r in json.loads(p.stdout)}


async def test_everything_works(db_url: str, dns: DnsServer, sink: Sink, slack: FakeSlack) -> None:
    env = environment(db_url, dns, sink, slack)
    p = await doctor(env, "--json")
    found = results(p)
    assert p.returncode == 0, p.stdout
    assert all(r["ok"] for r in found.values())
    assert set(found) >= {"settings", "database", "smtp port", "MX example.org", "relay", "slack token",
                          "slack scopes", "slack channel", "slack reviewer U0ALICE", "slack reviewer S0REVIEW",
                          "secret EVIDENCE_INBOUND_SECRET"}
    assert "this host" in found["MX example.org"]["detail"]
    assert found["slack reviewer S0REVIEW"]["detail"] == "user group of 2 member(s)"
    assert ("example.org", "MX") in dns.asked
    assert sink.messages == []  # it only looked: nothing was sent
    assert slack.calls_to("chat.postMessage") == []
    # The same in text: one ✓ line per check, nothing failed.
    text = await doctor(env)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert sum(line.startswith("✓ ") for line in lines) == len(found)
    assert not any(line.startswith("✗") for line in lines)


async def test_wrong_token(tmp_path: Path, sqlite_template: Path, dns: DnsServer, sink: Sink,
                           slack: FakeSlack) -> None:
    env = environment(sqlite_url(tmp_path, sqlite_template), dns, sink, slack, SLACK_BOT_TOKEN="xoxb-wrong")
    p = await doctor(env)
    assert p.returncode == 1
    assert re.search(r"^✗ slack token: auth\.test: invalid_auth$", p.stdout, re.M), p.stdout
    assert "fix: put the app's Bot User OAuth Token" in p.stdout


async def test_bot_not_in_the_channel(tmp_path: Path, sqlite_template: Path, dns: DnsServer, sink: Sink,
                                      slack: FakeSlack) -> None:
    slack.member_of.clear()
    p = await doctor(environment(sqlite_url(tmp_path, sqlite_template), dns, sink, slack), "--json")
    found = results(p)
    assert p.returncode == 1
    assert [c for c, r in found.items() if not r["ok"]] == ["slack channel"]
    assert found["slack channel"]["detail"] == "the bot is not in #c0review"
    assert found["slack channel"]["fix"] == "invite it: /invite @evidence in #c0review"


async def test_missing_scope(tmp_path: Path, sqlite_template: Path, dns: DnsServer, sink: Sink,
                             slack: FakeSlack) -> None:
    slack.scopes.remove("files:write")
    p = await doctor(environment(sqlite_url(tmp_path, sqlite_template), dns, sink, slack), "--json")
    found = results(p)
    assert p.returncode == 1
    assert found["slack scopes"] == {"check": "slack scopes", "ok": False, "detail": "missing files:write",
                                     "fix": found["slack scopes"]["fix"]}


async def test_relay_down(tmp_path: Path, sqlite_template: Path, dns: DnsServer, sink: Sink,
                          slack: FakeSlack) -> None:
    down = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    p = await doctor(environment(sqlite_url(tmp_path, sqlite_template), dns, sink, slack, EVIDENCE_RELAY_URL=down))
    assert p.returncode == 1
    assert re.search(rf"^✗ relay: cannot talk to {re.escape(down)}: Connection refused$", p.stdout, re.M), p.stdout


async def test_domain_without_mx(tmp_path: Path, sqlite_template: Path, dns: DnsServer, sink: Sink,
                                 slack: FakeSlack) -> None:
    dns.add_a("nomx.example.net", "192.0.2.7")  # the name exists, with no MX
    env = environment(sqlite_url(tmp_path, sqlite_template), dns, sink, slack,
                      EVIDENCE_ADDRESSES="evidence@example.org,evidence@nomx.example.net",
                      EVIDENCE_SMTP_HOSTNAME="mx.example.org")
    found = results(p := await doctor(env, "--json"))
    assert p.returncode == 1
    assert found["MX nomx.example.net"] == {
        "check": "MX nomx.example.net", "ok": False, "detail": "nomx.example.net has no MX record",
        "fix": "publish an MX record pointing at this host: nomx.example.net. MX 10 mx.example.org."}
    assert found["MX example.org"]["ok"]


async def test_mx_elsewhere_is_reported_but_does_not_fail(tmp_path: Path, sqlite_template: Path, dns: DnsServer,
                                                          sink: Sink, slack: FakeSlack) -> None:
    dns.add_mx("provider.example.net", (10, "mx1.provider.example"), (20, "mx2.provider.example"))
    dns.add_a("mx1.provider.example", "192.0.2.25")
    dns.add_a("mx2.provider.example", "2001:db8::25")
    env = environment(sqlite_url(tmp_path, sqlite_template), dns, sink, slack,
                      EVIDENCE_ADDRESSES="evidence@provider.example.net")
    p = await doctor(env)
    assert p.returncode == 0, p.stdout
    assert ("! MX provider.example.net: 10 mx1.provider.example (192.0.2.25); 20 mx2.provider.example "
            "(2001:db8::25): not this host") in p.stdout


async def test_short_secret_and_unmigrated_database(tmp_path: Path, dns: DnsServer, sink: Sink,
                                                    slack: FakeSlack) -> None:
    (tmp_path / "empty.db").touch()
    env = environment(f"sqlite:///{tmp_path}/empty.db", dns, sink, slack, EVIDENCE_INBOUND_SECRET="short")
    found = results(p := await doctor(env, "--json"))
    assert p.returncode == 1
    assert found["database"]["fix"] == "run: evidence-bot db upgrade"
    assert found["secret EVIDENCE_INBOUND_SECRET"]["detail"] == "only 5 characters"


def test_bad_setting_is_a_failed_check_not_a_traceback() -> None:
    p = run("doctor", env={"EVIDENCE_SMTP_PORT": "seventy"})
    assert p.returncode == 1
    assert "Traceback" not in p.stderr + p.stdout
    assert p.stdout.startswith("✗ settings: invalid EVIDENCE_SMTP_PORT:")


def test_smtp_port_held_by_a_server_answering_220(tmp_path: Path, sqlite_template: Path) -> None:
    with Sink() as other:
        env = {"DATABASE_URL": sqlite_url(tmp_path, sqlite_template), "EVIDENCE_SMTP_PORT": str(other.port)}
        found = results(run("doctor", "--json", env=env))
    assert found["smtp port"]["ok"]
    assert "taken by a running SMTP server (220 " in found["smtp port"]["detail"]


def test_bad_argument_is_one_clear_line() -> None:
    assert "unrecognized arguments: --yaml" in one_clear_line(run("doctor", "--yaml"))


def test_the_scopes_checked_are_the_manifests() -> None:
    text = MANIFEST.read_text()
    bot = text.split("    bot:\n", 1)[1].split("settings:", 1)[0]
    assert tuple(re.findall(r"^\s+- ([\w:.]+)", bot, re.M)) == BOT_SCOPES
