"""Inbound mail over HTTP: Mailgun, SendGrid and Postmark webhooks, and a signed raw endpoint.

Every endpoint feeds `Service.intake`, the SMTP door's way in: a `200` means the raw message is
committed (parsing runs later from the stored copy), and the dedupe key stores a message that
arrives twice, through two doors or a provider's retry, once. The answers are what providers act
on: 401 bad or missing authentication, 400 a malformed request, 406 a recipient that is not ours
(Mailgun: "rejected, do not retry"), 413 over EVIDENCE_MAX_MESSAGE_BYTES, 415 a content type the
endpoint does not take, 422 Postmark without its raw content, 503 anything that failed on our side
(the provider retries). Nothing that is not stored ever gets a 200.

Bodies are read from the stream in chunks and never buffered past the message limit plus a small
allowance for the other form fields (a Content-Length over that is refused before reading), so
aiohttp's `client_max_size` (1 MiB, for `request.read()`/`post()`) never comes into play here.

Replay. Mailgun signs only `timestamp + token`, not the message, so a captured signature could
carry another message within the 5-minute freshness window. Each used token goes into
`inbound_token` with the dedupe key of its message, written only after the message is committed: a
token row always means "this message is stored". Before storing, a Mailgun token already in the
table with a *different* message is a replay (401); with the same message it is the provider
retrying after a lost answer (200, nothing new stored). After the commit the token is claimed with
INSERT ... ON CONFLICT DO NOTHING and read back: the check runs in the database, so several
`serve` processes sharing one PostgreSQL database agree. The remaining window is two requests with
one token racing each other: the loser hears 401 but its message, committed first, stays (it
reaches the reviewers like any mail, and the race needs a signature captured in flight). Claims
from concurrent requests share one transaction (`TokenBook`), and rows older than twice the
freshness window are pruned now and then. /inbound/raw needs none of this: its signature covers
the body, so a replayed request can only carry the same message, which the dedupe key stores once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import math
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from email.utils import getaddresses, parseaddr
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Engine

from bot.drafts import draft
from bot.settings import Settings
from handlers.webhooks.bodies import Refuse, form, read_body
from handlers.webhooks.tokens import FRESHNESS_SECONDS, TokenBook
from storage.repo import InboundDraft
from storage.writer import Stored

log = logging.getLogger(__name__)

FORM_ALLOWANCE = 64 * 1024  # the form fields besides the message: addresses, envelope, signature
# Postmark's JSON carries the message twice (RawEmail, and decoded into TextBody, HtmlBody and
# base64 Attachments), so its body may be about twice the message; no stdlib parser streams JSON.
POSTMARK_FACTOR = 2.5

Intake = Callable[[InboundDraft], Awaitable[Stored]]


# The two success answers, made once: json.dumps and a json_response per request were a tenth
# of the raw endpoint's own time (py-spy, bench/webhook_bench.py).
_ANSWERS = {True: json.dumps({"status": "stored"}).encode(), False: json.dumps({"status": "already stored"}).encode()}


def _ok(created: bool) -> web.Response:
    return web.Response(body=_ANSWERS[created], content_type="application/json", charset="utf-8")


def _fail(status: int, message: str) -> web.Response:
    resp = web.json_response({"error": message}, status=status)
    if status == 401:
        # Some clients send the user:pass of a URL only once challenged.
        resp.headers["WWW-Authenticate"] = 'Basic realm="evidence", charset="UTF-8"'
    if status == 413:
        resp.force_close()  # the rest of an oversized body is not worth a keep-alive
    return resp


def _fresh(timestamp: str) -> None:
    try:
        ts = float(timestamp)
    except ValueError:
        raise Refuse(401, "the timestamp is not a number of seconds") from None
    if not math.isfinite(ts) or abs(time.time() - ts) > FRESHNESS_SECONDS:
        raise Refuse(401, "the timestamp is more than 5 minutes from now")


def _basic_auth_ok(request: web.Request, user: str, password: str) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given_user, sep, given_password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return False
    # Both compared in constant time, and both always compared (no early exit on the user).
    ok_user = hmac.compare_digest(given_user, user.encode())
    ok_password = hmac.compare_digest(given_password, password.encode())
    return bool(sep) and ok_user and ok_password


# An address with nothing around it ("a@b.org"), which is what providers and relays send: taken
# as it is. email.utils parses anything else (names, angle brackets, comments, lists); at ~30 us a
# call it was a tenth of the raw endpoint's time under load.
_BARE = re.compile(r"[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+")


def addresses(values: Iterable[str]) -> list[str]:
    """The addresses in header-like values ("Name <a@b>, c@d" or bare), as email.utils finds them."""
    values = list(values)
    stripped = [v.strip() for v in values]
    if all(_BARE.fullmatch(v) for v in stripped):
        return stripped
    return [addr for _, addr in getaddresses(values)]


def address(value: str) -> str:
    """The one address in `value`, as parseaddr finds it ("" if none)."""
    value = value.strip()
    return value if _BARE.fullmatch(value) else parseaddr(value)[1]


def _text(fields: dict[str, bytes], name: str) -> str:
    return fields.get(name, b"").decode("utf-8", "replace").strip()


class Doors:
    """The endpoints, each an aiohttp handler that raises Refuse for any answer but 200."""

    def __init__(self, settings: Settings, intake: Intake, engine: Engine) -> None:
        self.settings = settings
        self.intake = intake
        self.tokens = TokenBook(engine)
        self.addresses = {a.lower() for a in settings.evidence_addresses}
        self.limit = settings.max_message_bytes

    def ours(self, values: Iterable[str]) -> list[str]:
        """The addresses among `values` ("Name <a@b>, c@d" or bare) that we receive for; 406 if none."""
        found = [a.lower() for a in addresses(values) if a.lower() in self.addresses]
        if not found:
            raise Refuse(406, "this service does not receive mail for that recipient")
        return list(dict.fromkeys(found))

    def message(self, raw: bytes | None, missing: str) -> bytes:
        if not raw or not raw.strip():
            raise Refuse(400, missing)
        if len(raw) > self.limit:
            raise Refuse(413, "the message is larger than this service accepts")
        return raw

    async def store(self, d: InboundDraft, *, token: str | None = None, provider: str = "") -> web.Response:
        try:
            stored = await self.intake(d)
        except asyncio.CancelledError:
            raise  # the provider hung up; the commit itself carries on (GroupCommitter.store)
        except Exception as exc:
            log.error("%s: storing a message failed (%s); answered 503", d.peer, type(exc).__name__)
            return _fail(503, "the message could not be stored just now; try again later")
        if token is not None and not await self.tokens.claim(token, provider, d.dedupe_key):
            log.warning("%s: a token already used for another message (replay); answered 401", d.peer)
            return _fail(401, "this signature has already been used")
        return _ok(stored.created)

    async def mailgun(self, request: web.Request) -> web.Response:
        key = self.settings.mailgun_signing_key
        assert key is not None
        wanted = ("body-mime", "recipient", "sender", "timestamp", "token", "signature")
        fields = await form(request, wanted, self.limit + FORM_ALLOWANCE, urlencoded=True)
        timestamp, token, signature = (_text(fields, n) for n in ("timestamp", "token", "signature"))
        if not (timestamp and token and signature):
            raise Refuse(401, "timestamp, token and signature are required")
        expected = hmac.digest(key.encode(), (timestamp + token).encode(), "sha256").hex()
        if not hmac.compare_digest(expected, signature.lower()):
            raise Refuse(401, "the signature does not match MAILGUN_WEBHOOK_SIGNING_KEY")
        _fresh(timestamp)
        if len(token) > 150:
            raise Refuse(400, "the token is too long")
        raw = self.message(fields.get("body-mime"), "no body-mime field: forward the route to a URL ending in mime")
        rcpts = self.ours([_text(fields, "recipient")])
        d = draft(raw, envelope_from=_text(fields, "sender"), rcpts=rcpts, peer="webhook:mailgun")
        claimed = f"mailgun:{token}"
        owner = await self.tokens.seen(claimed)
        if owner is not None and owner != d.dedupe_key:
            log.warning("webhook:mailgun: a token already used for another message (replay); answered 401")
            raise Refuse(401, "this token has already been used")
        if owner is not None:
            return _ok(False)  # a retry: the token row means stored
        return await self.store(d, token=claimed, provider="mailgun")

    def basic_auth(self, request: web.Request) -> None:
        user, password = self.settings.inbound_user, self.settings.inbound_password
        assert user is not None and password is not None
        if not _basic_auth_ok(request, user, password):
            raise Refuse(401, "HTTP Basic authentication with EVIDENCE_INBOUND_USER/PASSWORD is required")

    async def sendgrid(self, request: web.Request) -> web.Response:
        self.basic_auth(request)  # before reading a byte of the body
        fields = await form(request, ("email", "to", "from", "envelope"), self.limit + FORM_ALLOWANCE,
                             urlencoded=False)
        raw = self.message(fields.get("email"),
                           'no email field: tick "POST the raw, full MIME message" in Inbound Parse')
        envelope: dict[str, Any] = {}
        if fields.get("envelope"):
            try:
                parsed = json.loads(fields["envelope"])
            except ValueError:
                raise Refuse(400, "the envelope field is not JSON") from None
            if not isinstance(parsed, dict):
                raise Refuse(400, "the envelope field is not a JSON object")
            envelope = parsed
        to = envelope.get("to")
        recipients = [str(a) for a in to] if isinstance(to, list) else [str(to)] if to else [_text(fields, "to")]
        rcpts = self.ours(recipients)
        sender = str(envelope.get("from") or address(_text(fields, "from")))
        return await self.store(draft(raw, envelope_from=sender, rcpts=rcpts, peer="webhook:sendgrid"))

    async def postmark(self, request: web.Request) -> web.Response:
        self.basic_auth(request)
        if request.content_type != "application/json":
            raise Refuse(415, "expected application/json")
        body = await read_body(request, int(self.limit * POSTMARK_FACTOR) + FORM_ALLOWANCE)
        try:
            payload = json.loads(body)
        except ValueError:
            raise Refuse(400, "the body is not JSON") from None
        del body
        if not isinstance(payload, dict):
            raise Refuse(400, "the body is not a JSON object")
        raw_text = payload.get("RawEmail")
        if not isinstance(raw_text, str) or not raw_text:
            raise Refuse(422, 'no RawEmail: enable "Include raw email content in JSON payload" '
                              "in the Postmark inbound settings")
        # JSON text is Unicode; Postmark's raw content is the message's bytes read as UTF-8. JSON
        # can also spell a lone surrogate ("\ud800"), which no encoding takes: it becomes "?" rather
        # than a 503 the provider would retry for ever.
        try:
            encoded = raw_text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            encoded = raw_text.encode("utf-8", "replace")
        raw = self.message(encoded, "RawEmail is empty")
        recipient = payload.get("OriginalRecipient")
        if not isinstance(recipient, str) or not recipient:
            raise Refuse(400, "no OriginalRecipient")
        rcpts = self.ours([recipient])
        sender = address(str(payload.get("From") or ""))
        return await self.store(draft(raw, envelope_from=sender, rcpts=rcpts, peer="webhook:postmark"))

    async def raw(self, request: web.Request) -> web.Response:
        secret = self.settings.inbound_secret
        assert secret is not None
        timestamp = request.headers.get("X-Evidence-Timestamp", "").strip()
        signature = request.headers.get("X-Evidence-Signature", "").strip()
        if not (timestamp and signature.startswith("sha256=")):
            raise Refuse(401, "X-Evidence-Timestamp and X-Evidence-Signature: sha256=<hex> are required")
        _fresh(timestamp)  # before reading the body: a stale request costs nothing
        if request.content_type != "message/rfc822":
            raise Refuse(415, "expected Content-Type: message/rfc822")
        body = await read_body(request, self.limit)
        # One-shot hmac.digest (C) rather than an HMAC object: a few microseconds a request.
        mac = hmac.digest(secret.encode(), timestamp.encode() + b"." + body, "sha256").hex()
        if not hmac.compare_digest(mac, signature[len("sha256="):].lower()):
            raise Refuse(401, "the signature does not match EVIDENCE_INBOUND_SECRET")
        raw = self.message(body, "the body is empty")
        recipient = request.headers.get("X-Evidence-Recipient")
        rcpts = self.ours([recipient]) if recipient else []
        envelope_from = address(request.headers.get("X-Evidence-Envelope-From", ""))
        # The signature covers the body, so a replayed request can only carry the same message,
        # which the dedupe key stores once (200, nothing new): it needs no token bookkeeping, and
        # the freshness rule bounds how long a captured request is good for.
        return await self.store(draft(raw, envelope_from=envelope_from, rcpts=rcpts, peer="webhook:raw"))


def _guarded(name: str, handler: Callable[[web.Request], Awaitable[web.Response]]) -> Any:
    async def run(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except Refuse as r:
            log.info("%s: answered %d: %s", name, r.status, r.message)
            return _fail(r.status, r.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The frames, not the exception's text: that may quote the request (addresses, mail).
            log.error("%s: internal error %s; answered 503\n%s", name, type(exc).__name__,
                      "".join(traceback.format_tb(exc.__traceback__)))
            return _fail(503, "the message could not be stored just now; try again later")

    return run


def register(web_app: web.Application, *, settings: Settings, intake: Intake,
             engine: Engine) -> dict[str, Callable[[], str]]:
    """Adds the enabled endpoints to `web_app`; returns their /healthz reports.

    An endpoint whose secret is not set is not routed at all, so it answers 404."""
    doors = Doors(settings, intake, engine)
    web_app.on_cleanup.append(doors.tokens.close)
    enabled = {
        "mailgun": ("/inbound/mailgun/mime", doors.mailgun, bool(settings.mailgun_signing_key)),
        "sendgrid": ("/inbound/sendgrid", doors.sendgrid, bool(settings.inbound_user and settings.inbound_password)),
        "postmark": ("/inbound/postmark", doors.postmark, bool(settings.inbound_user and settings.inbound_password)),
        "raw": ("/inbound/raw", doors.raw, bool(settings.inbound_secret)),
    }
    health: dict[str, Callable[[], str]] = {}
    for name, (path, handler, on) in enabled.items():
        if on:  # /healthz lists the doors that are on
            web_app.router.add_post(path, _guarded(f"webhook:{name}", handler))
            health[f"inbound_{name}"] = _report("ok")
    routed = [path for path, _, is_on in enabled.values() if is_on]
    if routed:
        log.info("inbound webhooks: %s", ", ".join(routed))
    return health


def _report(state: str) -> Callable[[], str]:
    return lambda: state
