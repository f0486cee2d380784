"""bot.sender_check against a real DNS server on loopback, with mail signed here by dkimpy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from bot.sender_check import Resolver, SenderCheck
from bot.settings import Settings
from tests.support.dkim_keys import publish, sign
from tests.support.dns_server import DnsServer

TRUSTED = "mx.trusted.example"


def message(sender: str = "ann@kent.gov.uk", *extra: tuple[str, str]) -> bytes:
    m = EmailMessage()
    for k, v in extra:
        m[k] = v
    m["From"] = f"Ann Example <{sender}>"
    m["To"] = "evidence@localhost"
    m["Subject"] = "Evidence: payroll"
    m["Message-ID"] = "<m1@kent.gov.uk>"
    m.set_content("Project: Payroll\nThe service improved after the move.\n")
    return bytes(m)


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as d:
        publish(d, "kent.gov.uk")
        publish(d, "open.example", dmarc=None)  # signs, but publishes no DMARC policy
        yield d


def checker(dns: DnsServer, *, budget: float = 5.0) -> SenderCheck:
    settings = Settings.model_validate({"EVIDENCE_DNS_SERVERS": dns.address,
                                        "EVIDENCE_TRUSTED_AUTHSERV_IDS": TRUSTED})
    return SenderCheck(settings, Resolver(settings.dns_servers, timeout=1.0), budget=budget)


def test_signed_mail_from_an_authorised_ip_is_verified(dns: DnsServer) -> None:
    got = checker(dns).check(sign(message(), "kent.gov.uk"), peer="127.0.0.2", helo="mx.kent.gov.uk",
                             envelope_from="ann@kent.gov.uk")
    assert got == {"spf": "pass", "dkim": "pass", "dmarc": "pass", "from_domain": "kent.gov.uk",
                   "verdict": "verified"}


def test_spf_fails_outside_the_published_range_but_dkim_still_verifies(dns: DnsServer) -> None:
    got = checker(dns).check(sign(message(), "kent.gov.uk"), peer="192.0.2.7", helo="mx.elsewhere.example",
                             envelope_from="ann@kent.gov.uk")
    assert (got["spf"], got["dkim"], got["verdict"]) == ("fail", "pass", "verified")


def test_a_body_altered_after_signing_fails(dns: DnsServer) -> None:
    raw = sign(message(), "kent.gov.uk").replace(b"improved", b"collapsed")
    got = checker(dns).check(raw, peer="127.0.0.1", helo="relay", envelope_from="ann@kent.gov.uk")
    assert (got["spf"], got["dkim"], got["dmarc"], got["verdict"]) == ("none", "fail", "fail", "failed")


def test_a_forged_from_under_p_reject_fails(dns: DnsServer) -> None:
    # Signed by the forger's own domain, sent from an address kent.gov.uk does not authorise.
    publish(dns, "forger.example", spf="v=spf1 +all", dmarc=None)
    raw = sign(message(), "forger.example")
    got = checker(dns).check(raw, peer="192.0.2.66", helo="forger.example", envelope_from="x@forger.example")
    assert got == {"spf": "pass", "dkim": "pass", "dmarc": "fail", "from_domain": "kent.gov.uk",
                   "verdict": "failed"}


def test_no_policy_means_unverified(dns: DnsServer) -> None:
    raw = sign(message("bob@open.example"), "open.example")
    got = checker(dns).check(raw, peer="192.0.2.9", helo="x", envelope_from="bob@open.example")
    assert (got["dkim"], got["dmarc"], got["verdict"]) == ("pass", "none", "unverified")


def test_a_dns_timeout_is_temperror_within_the_budget(dns: DnsServer) -> None:
    publish(dns, "slow.example")
    dns.silent.update({"sel._domainkey.slow.example", "_dmarc.slow.example"})
    check = checker(dns, budget=1.5)
    start = time.monotonic()
    got = check.check(sign(message("ann@slow.example"), "slow.example"), peer="127.0.0.1", helo="relay",
                      envelope_from="ann@slow.example")
    took = time.monotonic() - start
    assert (got["dkim"], got["dmarc"], got["verdict"]) == ("temperror", "temperror", "unverified")
    assert took < 2.5  # two silent names, one-second timeouts, but a 1.5 s budget for the lot
    # The failure is remembered for the batch: the next message from that domain does not wait again.
    start = time.monotonic()
    again = check.check(sign(message("ann@slow.example"), "slow.example"), peer="127.0.0.1", helo="relay",
                        envelope_from="ann@slow.example")
    assert again["dkim"] == "temperror" and time.monotonic() - start < 0.5


def test_answers_are_cached_per_name(dns: DnsServer) -> None:
    check = checker(dns)
    for _ in range(3):
        check.check(sign(message(), "kent.gov.uk"), peer="127.0.0.2", helo="h", envelope_from="ann@kent.gov.uk")
    assert dns.asked.count(("sel._domainkey.kent.gov.uk", "TXT")) == 1


def test_untrusted_authentication_results_are_ignored(dns: DnsServer) -> None:
    forged = ("Authentication-Results", "mx.attacker.example; spf=pass smtp.mailfrom=kent.gov.uk; "
              "dkim=pass header.d=kent.gov.uk; dmarc=pass header.from=kent.gov.uk")
    got = checker(dns).check(message("ann@kent.gov.uk", forged), peer="127.0.0.1", helo="relay",
                             envelope_from="x@forger.example")
    assert (got["dkim"], got["dmarc"], got["verdict"]) == ("none", "fail", "failed")


def test_trusted_authentication_results_are_believed_from_a_trusted_hop(dns: DnsServer) -> None:
    ar = ("Authentication-Results", f"{TRUSTED}; spf=pass smtp.mailfrom=ann@kent.gov.uk; "
          "dkim=pass header.d=kent.gov.uk; dmarc=pass header.from=kent.gov.uk")
    raw = message("ann@kent.gov.uk", ar)  # not signed: the trusted hop checked it before it reached us
    for peer in ("webhook:mailgun", "imap:mail.example", "127.0.0.1"):
        got = checker(dns).check(raw, peer=peer, helo=None, envelope_from="ann@kent.gov.uk")
        assert got == {"spf": "pass", "dkim": "pass", "dmarc": "pass", "from_domain": "kent.gov.uk",
                       "verdict": "verified"}, peer
    # Straight from an unknown SMTP client the same header is just text the sender wrote.
    got = checker(dns).check(raw, peer="192.0.2.66", helo="x", envelope_from="ann@kent.gov.uk")
    assert (got["spf"], got["dkim"], got["verdict"]) == ("fail", "none", "failed")


def test_webhook_mail_has_no_smtp_peer_so_spf_is_none_but_dkim_is_checked(dns: DnsServer) -> None:
    got = checker(dns).check(sign(message(), "kent.gov.uk"), peer="webhook:raw", helo=None,
                             envelope_from="ann@kent.gov.uk")
    assert (got["spf"], got["dkim"], got["verdict"]) == ("none", "pass", "verified")


def test_garbage_is_unverified_not_an_exception(dns: DnsServer) -> None:
    got = checker(dns).check(b"\x00\xff not a message", peer="127.0.0.2", helo=None, envelope_from=None)
    assert got["verdict"] == "unverified" and got["from_domain"] is None


def test_dns_servers_setting_is_validated() -> None:
    s = Settings.model_validate({"EVIDENCE_DNS_SERVERS": "192.0.2.53, 192.0.2.54:5353, [2001:db8::1]:54"})
    assert s.dns_servers == [("192.0.2.53", 53), ("192.0.2.54", 5353), ("2001:db8::1", 54)]
    for bad in ("dns.example", "192.0.2.1:0", "[::1]x"):
        with pytest.raises(ValueError, match="resolver address"):
            Settings.model_validate({"EVIDENCE_DNS_SERVERS": bad})
