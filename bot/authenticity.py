"""Who really sent it: the decision rules, free of DNS, Slack, SMTP and the database.

bot.sender_check does the look-ups and feeds the answers in here; everything that decides
(DMARC alignment, the policy record, Authentication-Results headers, the verdict) is a plain
function of strings, so it is tested without servers. Result words are RFC 8601's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")
VERIFIED, UNVERIFIED, FAILED = "verified", "unverified", "failed"

# Second-level labels under which a country-code TLD registers names (kent.gov.uk, nhs.net is
# plain). Not the Public Suffix List: that is a large, changing download. Erring on the strict
# side is safe: a name treated as one label too long only makes relaxed alignment fail for it
# (unverified); one too short would let a.co.jp vouch for b.co.jp (a false "verified"). So the
# UK's own second levels are named, and any ccTLD's common ones (co, gov, ac, ...) count as
# public suffixes too.
_UK_SUFFIXES = frozenset({"gov.uk", "nhs.uk", "co.uk", "org.uk", "ac.uk", "police.uk", "sch.uk", "ltd.uk",
                          "plc.uk", "net.uk", "me.uk", "mod.uk"})
_CC_SECOND_LEVELS = frozenset({"co", "com", "net", "org", "gov", "govt", "gob", "gouv", "ac", "edu", "ltd", "plc",
                               "nhs", "police", "mil", "nic", "or", "ne", "go", "sch"})


def org_domain(domain: str) -> str:
    """The organisational domain, approximated (see _UK_SUFFIXES): mail.kent.gov.uk -> kent.gov.uk."""
    labels = domain.lower().rstrip(".").split(".")
    if len(labels) <= 2:
        return ".".join(labels)
    last_two = ".".join(labels[-2:])
    if last_two in _UK_SUFFIXES or (len(labels[-1]) == 2 and labels[-2] in _CC_SECOND_LEVELS):
        return ".".join(labels[-3:])
    return last_two


def aligned(domain: str | None, from_domain: str, mode: str = "r") -> bool:
    """DMARC identifier alignment: strict ("s") is the same name; relaxed the same organisation."""
    if not domain:
        return False
    a, b = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return a == b if mode == "s" else org_domain(a) == org_domain(b)


@dataclass(frozen=True)
class Policy:
    """A _dmarc TXT record: the policy for the domain (p) and for its subdomains (sp), alignment modes."""

    p: str = "none"
    sp: str | None = None
    adkim: str = "r"
    aspf: str = "r"


def parse_policy(records: Iterable[str]) -> Policy | str | None:
    """The DMARC record among a name's TXT records: a Policy, None when there is none, or
    "permerror" when there are several (RFC 7489 6.6.3: then no DMARC processing at all)."""
    found = [r for r in records if re.match(r"v\s*=\s*DMARC1\s*(;|$)", r.strip(), re.IGNORECASE)]
    if not found:
        return None
    if len(found) > 1:
        return "permerror"
    tags: dict[str, str] = {}
    for part in found[0].split(";")[1:]:
        k, sep, v = part.partition("=")
        if sep:
            tags.setdefault(k.strip().lower(), v.strip().lower())

    def pick(name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        return tags[name] if tags.get(name) in allowed else default

    # A bad or missing p= with a valid record is read as p=none (RFC 7489 6.6.3): monitoring only.
    return Policy(p=pick("p", ("none", "quarantine", "reject"), "none") or "none",
                  sp=pick("sp", ("none", "quarantine", "reject"), None),
                  adkim=pick("adkim", ("r", "s"), "r") or "r", aspf=pick("aspf", ("r", "s"), "r") or "r")


@dataclass(frozen=True)
class Signature:
    """One DKIM signature: its d= and whether it verified (pass, fail, permerror, temperror)."""

    domain: str
    result: str


def dkim_summary(sigs: Sequence[Signature]) -> str:
    """One word for every signature: any pass wins, then a DNS failure, then fail, then permerror."""
    for word in ("pass", "temperror", "fail", "permerror"):
        if any(s.result == word for s in sigs):
            return word
    return "none"


@dataclass(frozen=True)
class Evidence:
    """What was learnt about one message, by our look-ups or from a trusted Authentication-Results."""

    from_domain: str | None
    spf: str = "none"
    spf_domain: str | None = None  # MAIL FROM's domain (or HELO's when MAIL FROM was empty)
    signatures: tuple[Signature, ...] = ()
    policy: Policy | str | None = None  # the applicable DMARC record, "temperror"/"permerror", None
    policy_is_subdomain: bool = False  # found at the organisational domain: sp= applies
    dmarc: str | None = None  # a trusted Authentication-Results' own dmarc= result, believed as is


def dmarc_result(ev: Evidence) -> str:
    """RFC 7489: pass when SPF or DKIM passed for a domain aligned with From; fail otherwise,
    unless a look-up failed on the way (temperror) or the domain publishes no record (none)."""
    if ev.dmarc is not None:
        return ev.dmarc
    if not ev.from_domain:
        return "none"  # no single From domain to judge (RFC 7489 6.6.1 leaves this to the receiver)
    if isinstance(ev.policy, str):
        return ev.policy
    if ev.policy is None:
        return "none"
    pol, frm = ev.policy, ev.from_domain
    if ev.spf == "pass" and aligned(ev.spf_domain, frm, pol.aspf):
        return "pass"
    if any(s.result == "pass" and aligned(s.domain, frm, pol.adkim) for s in ev.signatures):
        return "pass"
    # A DNS failure on an aligned check could have hidden a pass: say so rather than "fail".
    if (ev.spf == "temperror" and aligned(ev.spf_domain, frm, pol.aspf)) or any(
        s.result == "temperror" and aligned(s.domain, frm, pol.adkim) for s in ev.signatures
    ):
        return "temperror"
    return "fail"


def enforced(ev: Evidence) -> bool:
    """Whether the domain asks receivers to act on failure (quarantine or reject; p=none is only
    monitoring, so its owner has said failures are expected)."""
    if not isinstance(ev.policy, Policy):
        return False
    p = ev.policy.sp if ev.policy_is_subdomain and ev.policy.sp else ev.policy.p
    return p in ("quarantine", "reject")


def verdict(ev: Evidence, dmarc: str) -> str:
    """verified: DMARC passed. failed: DMARC failed for a domain that enforces its policy, or a
    signature by the From domain does not verify. Anything else (no policy, DNS trouble): unverified."""
    if dmarc == "pass":
        return VERIFIED
    if dmarc == "fail" and enforced(ev):
        return FAILED
    if ev.from_domain and any(s.result == "fail" and aligned(s.domain, ev.from_domain) for s in ev.signatures):
        return FAILED
    return UNVERIFIED


def assess(ev: Evidence) -> dict[str, Any]:
    """The record's `authenticity` value."""
    dmarc = dmarc_result(ev)
    return {"spf": ev.spf, "dkim": dkim_summary(ev.signatures), "dmarc": dmarc, "from_domain": ev.from_domain,
            "verdict": verdict(ev, dmarc)}


def describe(auth: dict[str, Any] | None) -> str | None:
    """One plain line for reviewers (Slack summary, `show`); None when there was no e-mail."""
    if not auth:
        return None
    domain = auth.get("from_domain") or "the sender's domain"
    v, dmarc = auth.get("verdict"), auth.get("dmarc")
    if v == VERIFIED:
        return f"Sender verified: {domain}"
    if v == FAILED:
        if dmarc == "fail":
            return f"Sender NOT verified: the message fails {domain}'s DMARC policy"
        return f"Sender NOT verified: {domain}'s signature on the message does not verify"
    why = {"none": f"{domain} publishes no DMARC policy", "temperror": "a DNS look-up failed",
           "permerror": f"{domain}'s DMARC record is broken"}.get(str(dmarc), f"DMARC {dmarc}")
    return f"Sender not verified ({why}): treat the From address with care"


# Authentication-Results (RFC 8601) ------------------------------------------------------------

_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")


def _uncomment(text: str) -> str:
    prev = None
    while prev != text:  # nested comments, innermost first
        prev, text = text, _COMMENT.sub(" ", text)
    return text


@dataclass(frozen=True)
class AuthResults:
    """One Authentication-Results header: its authserv-id and, per method, result and properties."""

    authserv_id: str
    results: tuple[tuple[str, str, dict[str, str]], ...]  # (method, result, {"header.d": ...})


def parse_auth_results(value: str) -> AuthResults | None:
    """`mx.example; spf=pass smtp.mailfrom=a.example; dkim=pass header.d=a.example`; None if unreadable."""
    parts = [p.strip() for p in _uncomment(" ".join(value.split())).split(";")]
    head = parts[0].split()
    if not head:
        return None
    found = []
    for part in parts[1:]:
        words = part.split()
        if not words or "=" not in words[0]:
            continue
        method, _, result = words[0].partition("=")
        props = {}
        for w in words[1:]:
            k, sep, v = w.partition("=")
            if sep and "." in k:
                props[k.lower()] = v.strip('"').lower()
        found.append((method.split("/")[0].lower(), result.lower(), props))
    return AuthResults(head[0].lower().rstrip("."), tuple(found))


def trusted_results(header_values: Iterable[str], trusted_ids: Iterable[str]) -> AuthResults | None:
    """The topmost (newest) Authentication-Results from a trusted authserv-id; the others could
    have been written by anyone on the way, the sender included, and are ignored."""
    ids = {t.lower() for t in trusted_ids}
    for value in header_values:
        ar = parse_auth_results(value)
        if ar is not None and ar.authserv_id in ids:
            return ar
    return None


def evidence_from_results(ar: AuthResults, from_domain: str | None) -> tuple[str | None, str | None, str | None,
                                                                            tuple[Signature, ...] | None, str | None]:
    """(spf, spf_domain, dkim as a word, signatures, dmarc) as a trusted header states them;
    None for a method it does not mention (checked by us instead)."""
    spf = spf_domain = dkim = dmarc = None
    sigs: list[Signature] = []
    for method, result, props in ar.results:
        if result not in RESULTS:
            result = "permerror" if result == "policy" else result
        if method == "spf" and spf is None:
            spf = result
            sender = props.get("smtp.mailfrom") or props.get("smtp.helo") or ""
            spf_domain = sender.rpartition("@")[2] or None
        elif method == "dkim":
            dkim = dkim or result
            sigs.append(Signature(props.get("header.d") or props.get("header.i", "").rpartition("@")[2], result))
        elif method == "dmarc" and dmarc is None:
            dmarc = result
    return spf, spf_domain, dkim, (tuple(sigs) if sigs else None), dmarc


def from_domain_of(from_values: Sequence[str]) -> str | None:
    """The domain of the one address in the one From header; None when that is not what there is
    (DMARC cannot judge a message with no From, several, or several addresses in it)."""
    from email.utils import getaddresses

    if len(from_values) != 1:
        return None
    addrs = [a for _, a in getaddresses(list(from_values)) if a]
    if len(addrs) != 1 or "@" not in addrs[0]:
        return None
    return addrs[0].rpartition("@")[2].lower().rstrip(".") or None
