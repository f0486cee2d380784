"""Who really sent it: the SPF, DKIM and DMARC look-ups for one stored message.

Runs after the raw copy is committed (in the parser's worker, bot.intake.process_inbound), so it
never delays a door's answer. Each look-up has a short timeout and the whole check a budget; a
DNS failure gives `temperror`, never a lost message. Answers are cached for a minute per name,
so a batch of mail from one domain asks once. What the answers mean is bot.authenticity's job.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import compat32
from ipaddress import ip_address
from typing import Any

import dkim
import dkim.util
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
import spf

from bot import authenticity as au
from bot.settings import Settings

log = logging.getLogger(__name__)
# dkimpy logs each bad signature as an error; here a bad signature is a result, not a fault.
_DKIM_LOG = logging.getLogger(__name__ + ".dkimpy")
_DKIM_LOG.setLevel(logging.CRITICAL)

LOOKUP_SECONDS = 2.0  # one DNS question
BUDGET_SECONDS = 5.0  # every question about one message together
CACHE_SECONDS = 60.0


class DnsTempError(Exception):
    """No answer in time (or SERVFAIL): the result is temperror."""


class Resolver:
    """dnspython, pointed at EVIDENCE_DNS_SERVERS (or the system's), with a small shared cache."""

    def __init__(self, servers: list[tuple[str, int]], *, timeout: float = LOOKUP_SECONDS,
                 cache_seconds: float = CACHE_SECONDS) -> None:
        self.timeout, self.cache_seconds = timeout, cache_seconds
        self._res: dns.resolver.Resolver | None
        try:
            self._res = dns.resolver.Resolver(configure=not servers)
        except dns.resolver.NoResolverConfiguration:
            log.warning("no system resolver configured: sender checks will say temperror")
            self._res = None
        if self._res is not None and servers:
            self._res.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in servers]
        self._cache: dict[tuple[str, str], tuple[float, list[Any] | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, name: str, qtype: str, deadline: float) -> list[Any]:
        """The records (dnspython rdata); [] for none or NXDOMAIN; DnsTempError when DNS failed."""
        key = (name.lower().rstrip("."), qtype)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            if hit[1] is None:
                raise DnsTempError(f"{name} {qtype}: failed a moment ago")
            return hit[1]
        remaining = deadline - now
        if self._res is None or remaining <= 0:
            raise DnsTempError(f"{name} {qtype}: no time or resolver left")
        found: list[Any] | None
        try:
            ans = self._res.resolve(key[0] + ".", qtype, lifetime=min(self.timeout, remaining), search=False,
                                    raise_on_no_answer=False)
            found = list(ans.rrset) if ans.rrset is not None else []
        except dns.resolver.NXDOMAIN:
            found = []
        except (dns.exception.Timeout, dns.resolver.NoNameservers):
            found = None  # remembered too: a domain whose DNS is down costs one timeout, not one per message
        except dns.exception.DNSException:
            found = []  # a name DNS cannot even ask about (too long, bad label): nothing published
        with self._lock:
            self._cache[key] = (time.monotonic() + self.cache_seconds, found)
        if found is None:
            raise DnsTempError(f"{name} {qtype}: no answer")
        return found

    def txt(self, name: str, deadline: float) -> list[str]:
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self.lookup(name, "TXT", deadline)]


# pyspf asks DNS through its module-level DNSLookup (its own default uses dnspython's deprecated
# query() and the system's resolvers), with no per-query hook: it is pointed here once, and this
# function answers with the resolver and deadline of the check running in this context.
_current: contextvars.ContextVar[tuple[Resolver, float]] = contextvars.ContextVar("sender_check")


def _spf_lookup(name: str, qtype: str, strict: object = True, timeout: object = None) -> list[Any]:
    resolver, deadline = _current.get()
    try:
        recs = resolver.lookup(name, qtype, deadline)
    except DnsTempError as e:
        raise spf.TempError(f"DNS {e}") from None
    out: list[Any] = []
    for r in recs:
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), r.address))
        elif qtype == "MX":
            out.append(((name, qtype), (r.preference, r.exchange)))
        elif qtype == "PTR":
            out.append(((name, qtype), r.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), r.strings))
    return out


spf.DNSLookup = _spf_lookup


def _is_ip(peer: str | None) -> bool:
    try:
        ip_address(peer or "")
    except ValueError:
        return False
    return True


class SenderCheck:
    """Checks messages with one resolver; `check` never raises."""

    def __init__(self, settings: Settings, resolver: Resolver | None = None, *,
                 budget: float = BUDGET_SECONDS) -> None:
        self.settings = settings
        self.resolver = resolver or Resolver(settings.dns_servers)
        self.budget = budget

    def check(self, raw: bytes, *, peer: str | None, helo: str | None, envelope_from: str | None) -> dict[str, Any]:
        """The record's `authenticity` for one e-mail as stored."""
        deadline = time.monotonic() + self.budget
        token = _current.set((self.resolver, deadline))
        try:
            return au.assess(self._evidence(raw, peer, helo, envelope_from, deadline))
        except Exception:  # a checker bug must not lose or hold up the message: it is filed unverified
            log.exception("sender check failed")
            return {"spf": "temperror", "dkim": "temperror", "dmarc": "temperror", "from_domain": None,
                    "verdict": au.UNVERIFIED}
        finally:
            _current.reset(token)

    def _evidence(self, raw: bytes, peer: str | None, helo: str | None, envelope_from: str | None,
                  deadline: float) -> au.Evidence:
        # The header block only: parsing the whole message would decode a 25 MB one to text.
        ends = [i for sep in (b"\r\n\r\n", b"\n\n") if (i := raw.find(sep)) >= 0]
        head_bytes = raw[: min(ends)] if ends else raw
        head = BytesHeaderParser(policy=compat32).parsebytes(head_bytes)
        from_domain = au.from_domain_of([str(v) for v in head.get_all("From") or []])
        # Authentication-Results are believed only from a hop we trust to have written or
        # scrubbed them: a provider's webhook, our IMAP mailbox, an import, or our own relay.
        # From any other SMTP client they are whatever the sender chose to write.
        smtp_peer = _is_ip(peer)
        hop_trusted = not smtp_peer or self.settings.is_trusted_client(peer or "")
        ar = au.trusted_results([str(v) for v in head.get_all("Authentication-Results") or []],
                                self.settings.trusted_authserv_ids) if hop_trusted else None
        spf_res, spf_domain, _, sigs, dmarc = (au.evidence_from_results(ar, from_domain) if ar
                                               else (None, None, None, None, None))
        if spf_res is None:
            spf_res, spf_domain = "none", None
            if smtp_peer and not self.settings.is_trusted_client(peer or ""):
                spf_res, spf_domain = self._spf(peer or "", helo, envelope_from)
        if sigs is None:
            # No signature, nothing to verify: dkimpy would still copy the body to look.
            sigs = self._dkim(raw, deadline) if b"dkim-signature" in head_bytes.lower() else ()
        policy: au.Policy | str | None = None
        sub = False
        if from_domain and dmarc != "pass":
            policy, sub = self._policy(from_domain, deadline)
        return au.Evidence(from_domain=from_domain, spf=spf_res, spf_domain=spf_domain, signatures=sigs,
                           policy=policy, policy_is_subdomain=sub, dmarc=dmarc)

    def _spf(self, ip: str, helo: str | None, envelope_from: str | None) -> tuple[str, str | None]:
        """SPF for MAIL FROM, or for HELO when MAIL FROM was empty (a bounce), as RFC 7208 2.4 says."""
        sender = (envelope_from or "").strip("<> ")
        domain = sender.rpartition("@")[2] if sender else (helo or "")
        if not domain:
            return "none", None
        result, _, _ = spf.query(i=ip, s=sender, h=helo or "", timeout=LOOKUP_SECONDS).check()
        return (result if result in au.RESULTS else "permerror"), domain.lower()

    def _dkim(self, raw: bytes, deadline: float) -> tuple[au.Signature, ...]:
        """Every DKIM-Signature, top to bottom, each verified on its own."""
        try:
            d = dkim.DKIM(raw, logger=_DKIM_LOG, timeout=LOOKUP_SECONDS)
        except Exception:  # dkimpy could not read the headers: no signature we can judge
            return ()
        values = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
        sigs = []
        for idx, value in enumerate(values):
            try:
                domain = dkim.util.parse_tag_value(value).get(b"d", b"").decode("ascii", "replace").strip().lower()
            except Exception:
                domain = ""
            key_missing = [False]
            try:
                ok = d.verify(idx=idx, dnsfunc=self._key_lookup(deadline, key_missing))
                # A signature whose key is not published cannot be checked: permerror, not fail.
                result = "pass" if ok else ("permerror" if key_missing[0] else "fail")
            except DnsTempError:
                result = "temperror"
            except dkim.ValidationError:  # the body hash or signature does not match: altered or forged
                result = "fail"
            except Exception:  # dkim.DKIMException and the like: a malformed signature or key
                result = "permerror"
            sigs.append(au.Signature(domain, result))
        return tuple(sigs)

    def _key_lookup(self, deadline: float, missing: list[bool]) -> Callable[..., bytes | None]:
        def dnsfunc(name: bytes | str, timeout: float = LOOKUP_SECONDS) -> bytes | None:
            text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
            recs = self.resolver.txt(text, deadline)
            keys = [r for r in recs if "p=" in r] or recs
            if not keys:
                missing[0] = True
                return None
            return keys[0].encode()

        return dnsfunc

    def _policy(self, from_domain: str, deadline: float) -> tuple[au.Policy | str | None, bool]:
        """The DMARC record of the From domain, else of its organisational domain (then sp= applies)."""
        try:
            pol = au.parse_policy(self.resolver.txt(f"_dmarc.{from_domain}", deadline))
            org = au.org_domain(from_domain)
            if pol is None and org != from_domain:
                return au.parse_policy(self.resolver.txt(f"_dmarc.{org}", deadline)), True
            return pol, False
        except DnsTempError:
            return "temperror", False


_CHECKERS: dict[tuple[tuple[str, int], ...], SenderCheck] = {}


def checker_for(settings: Settings) -> SenderCheck:
    """One checker (and so one cache) per process and resolver list: the worker keeps it between messages."""
    key = tuple(settings.dns_servers)
    found = _CHECKERS.get(key)
    if found is None or found.settings is not settings:
        found = _CHECKERS[key] = SenderCheck(settings, found.resolver if found else None)
    return found
