"""The sender-check rules (bot.authenticity), without DNS or servers."""

from __future__ import annotations

import pytest

from bot import authenticity as au
from bot.record import EvidenceRecord
from handlers.slack.blocks import summary_blocks

REJECT = au.Policy(p="reject")


@pytest.mark.parametrize(("domain", "org"), [
    ("kent.gov.uk", "kent.gov.uk"),
    ("mail.kent.gov.uk", "kent.gov.uk"),
    ("a.b.trust.nhs.uk", "trust.nhs.uk"),
    ("mx.example.co.uk", "example.co.uk"),
    ("lists.parliament.uk", "parliament.uk"),
    ("mail.example.org", "example.org"),
    ("example.org", "example.org"),
    ("shop.example.co.jp", "example.co.jp"),  # any ccTLD's co/gov/ac second level counts as a suffix
    ("Mail.Example.ORG.", "example.org"),
])
def test_organisational_domain(domain: str, org: str) -> None:
    assert au.org_domain(domain) == org


def test_relaxed_alignment_is_same_organisation_strict_is_same_name() -> None:
    assert au.aligned("mail.kent.gov.uk", "kent.gov.uk", "r")
    assert not au.aligned("mail.kent.gov.uk", "kent.gov.uk", "s")
    assert au.aligned("KENT.gov.uk", "kent.gov.uk", "s")
    # Two councils share gov.uk, but not an organisation.
    assert not au.aligned("evil.gov.uk", "kent.gov.uk", "r")
    assert not au.aligned(None, "kent.gov.uk")


def test_policy_record_parsing() -> None:
    assert au.parse_policy(["v=spf1 -all"]) is None
    pol = au.parse_policy(["v=DMARC1; p=quarantine; sp=reject; adkim=s; rua=mailto:x@example.org"])
    assert pol == au.Policy(p="quarantine", sp="reject", adkim="s", aspf="r")
    assert au.parse_policy(["v=DMARC1; p=bogus"]) == au.Policy(p="none")  # RFC 7489 6.6.3
    assert au.parse_policy(["v=DMARC1; p=none", "v=DMARC1; p=reject"]) == "permerror"


def test_aligned_dkim_pass_under_a_policy_is_verified() -> None:
    ev = au.Evidence("kent.gov.uk", signatures=(au.Signature("kent.gov.uk", "pass"),), policy=REJECT)
    assert au.assess(ev) == {"spf": "none", "dkim": "pass", "dmarc": "pass", "from_domain": "kent.gov.uk",
                             "verdict": "verified"}


def test_aligned_spf_pass_is_verified_and_strict_spf_alignment_is_honoured() -> None:
    ev = au.Evidence("kent.gov.uk", spf="pass", spf_domain="bounces.kent.gov.uk", policy=REJECT)
    assert au.assess(ev)["verdict"] == "verified"
    strict = au.Evidence("kent.gov.uk", spf="pass", spf_domain="bounces.kent.gov.uk",
                         policy=au.Policy("reject", aspf="s"))
    assert au.assess(strict)["dmarc"] == "fail" and au.assess(strict)["verdict"] == "failed"


def test_a_pass_for_another_domain_does_not_count() -> None:
    ev = au.Evidence("kent.gov.uk", spf="pass", spf_domain="mailer.example",
                     signatures=(au.Signature("mailer.example", "pass"),), policy=REJECT)
    assert au.assess(ev)["dmarc"] == "fail" and au.assess(ev)["verdict"] == "failed"


def test_a_policy_less_domain_is_unverified_not_failed() -> None:
    ev = au.Evidence("example.org", spf="fail", spf_domain="example.org")
    assert au.assess(ev) == {"spf": "fail", "dkim": "none", "dmarc": "none", "from_domain": "example.org",
                             "verdict": "unverified"}


def test_p_none_is_monitoring_so_a_failure_is_unverified() -> None:
    ev = au.Evidence("example.org", policy=au.Policy(p="none"))
    assert au.assess(ev)["dmarc"] == "fail" and au.assess(ev)["verdict"] == "unverified"


def test_subdomain_policy_applies_when_the_record_came_from_the_organisation() -> None:
    ev = au.Evidence("news.example.org", policy=au.Policy(p="reject", sp="none"), policy_is_subdomain=True)
    assert au.assess(ev)["verdict"] == "unverified"


def test_a_broken_signature_by_the_from_domain_fails_even_without_a_policy() -> None:
    ev = au.Evidence("example.org", signatures=(au.Signature("example.org", "fail"),))
    assert au.assess(ev)["verdict"] == "failed"
    other = au.Evidence("example.org", signatures=(au.Signature("mailer.example", "fail"),))
    assert au.assess(other)["verdict"] == "unverified"


def test_dns_trouble_is_temperror_and_never_failed() -> None:
    assert au.assess(au.Evidence("kent.gov.uk", policy="temperror")) == {
        "spf": "none", "dkim": "none", "dmarc": "temperror", "from_domain": "kent.gov.uk", "verdict": "unverified"}
    ev = au.Evidence("kent.gov.uk", signatures=(au.Signature("kent.gov.uk", "temperror"),), policy=REJECT)
    assert au.assess(ev)["dkim"] == "temperror" and au.assess(ev)["verdict"] == "unverified"


def test_dkim_summary_of_several_signatures() -> None:
    assert au.dkim_summary([au.Signature("a.example", "fail"), au.Signature("b.example", "pass")]) == "pass"
    assert au.dkim_summary([au.Signature("a.example", "permerror"), au.Signature("b.example", "fail")]) == "fail"
    assert au.dkim_summary([]) == "none"


def test_authentication_results_parsing() -> None:
    ar = au.parse_auth_results(
        "mx.Google.com; (comment (nested)) dkim=pass header.i=@kent.gov.uk header.s=sel; "
        "spf=pass (google.com: domain of ann@kent.gov.uk designates 192.0.2.1) smtp.mailfrom=ann@kent.gov.uk; "
        "dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=kent.gov.uk")
    assert ar is not None and ar.authserv_id == "mx.google.com"
    spf, spf_domain, dkim, sigs, dmarc = au.evidence_from_results(ar, "kent.gov.uk")
    assert (spf, spf_domain, dkim, dmarc) == ("pass", "kent.gov.uk", "pass", "pass")
    assert sigs == (au.Signature("kent.gov.uk", "pass"),)


def test_only_a_trusted_authserv_id_is_believed_and_the_newest_wins() -> None:
    headers = ["mx.attacker.example; dmarc=pass header.from=kent.gov.uk",
               "mx.trusted.example; dmarc=fail header.from=kent.gov.uk",
               "mx.trusted.example; dmarc=pass header.from=kent.gov.uk"]
    assert au.trusted_results(headers[:1], ["mx.trusted.example"]) is None
    found = au.trusted_results(headers, ["MX.Trusted.Example"])
    assert found is not None and found.results[0][:2] == ("dmarc", "fail")


def test_from_domain_needs_exactly_one_address() -> None:
    assert au.from_domain_of(["Ann <ann@Kent.gov.uk>"]) == "kent.gov.uk"
    assert au.from_domain_of(["a@x.example, b@y.example"]) is None
    assert au.from_domain_of(["a@x.example", "b@x.example"]) is None
    assert au.from_domain_of([]) is None


@pytest.mark.parametrize(("auth", "expect"), [
    ({"verdict": "verified", "dmarc": "pass", "from_domain": "kent.gov.uk"}, "Sender verified: kent.gov.uk"),
    ({"verdict": "failed", "dmarc": "fail", "from_domain": "kent.gov.uk"},
     "Sender NOT verified: the message fails kent.gov.uk's DMARC policy"),
    ({"verdict": "unverified", "dmarc": "none", "from_domain": "example.org"},
     "Sender not verified (example.org publishes no DMARC policy): treat the From address with care"),
])
def test_reviewers_see_the_verdict_plainly(auth: dict[str, str], expect: str) -> None:
    assert au.describe(auth) == expect
    rec = EvidenceRecord(reference="EV-000001", title="t", authenticity=auth)
    _, blocks = summary_blocks(rec)
    texts = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert any(t.endswith(expect) for t in texts)


def test_a_slack_submission_has_no_sender_line() -> None:
    _, blocks = summary_blocks(EvidenceRecord(reference="EV-000002", title="t", authenticity=None))
    assert not any("Sender" in str(b) for b in blocks)


def test_show_prints_the_verdict_line(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli.commands import _print_record

    _print_record(EvidenceRecord(reference="EV-000001", title="t", authenticity={
        "spf": "none", "dkim": "fail", "dmarc": "fail", "from_domain": "kent.gov.uk", "verdict": "failed"}))
    out = capsys.readouterr().out
    assert "Sender check         Sender NOT verified: the message fails kent.gov.uk's DMARC policy" in out
    assert "{'spf'" not in out  # the line, not the raw dict


def test_an_anonymous_contributors_domain_leaves_no_export() -> None:
    from bot.pack import redact_record

    auth = {"spf": "pass", "dkim": "pass", "dmarc": "pass", "from_domain": "kent.gov.uk", "verdict": "verified"}
    anon = redact_record(EvidenceRecord(publication="anonymous", authenticity=auth))
    assert anon.authenticity == {**auth, "from_domain": None}
    named = redact_record(EvidenceRecord(publication="named", authenticity=auth))
    assert named.authenticity == auth
