"""The inbound-mail webhooks, driven over real HTTP against the running service and database.

Unsupported content types answer 415 (not 400): the request may be well formed, just not in a
form the endpoint takes, and 415 tells the operator which setting to look at.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import smtplib
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot.runtime.service import Service
from handlers import webhooks
from storage.db import make_engine, unit_of_work
from storage.models import Inbound, InboundToken, Submission
from storage.writer import GroupCommitter
from tests.conftest import make_settings
from tests.support.full_disk import nearly_full_engine
from tests.support.waiting import wait_for

MG_KEY = "key-mailgun-test"
USER, PASSWORD = "hook", "s3cret pass"
SECRET = "raw-door-secret"
DOORS = {
    "MAILGUN_WEBHOOK_SIGNING_KEY": MG_KEY,
    "EVIDENCE_INBOUND_USER": USER,
    "EVIDENCE_INBOUND_PASSWORD": PASSWORD,
    "EVIDENCE_INBOUND_SECRET": SECRET,
}
AUTH = (USER, PASSWORD)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


def evidence(i: int = 1, *, to: str = "evidence@localhost", extra: str = "") -> bytes:
    m = EmailMessage()
    m["From"] = "Ann Example <ann@example.org>"
    m["To"] = to
    m["Subject"] = f"Evidence: payroll contract {i}"
    m["Message-ID"] = f"<hook-{i}-{uuid.uuid4().hex[:8]}@example.org>"
    m.set_content(
        f"Project: Payroll {i}\nPublic body: Exampleton Borough Council\nSupplier: Example Services Ltd\n"
        f"Contract value: £2m\nOutcome: Success\n\nThe service improved after the move.{extra}\n"
    )
    return bytes(m)


def count(engine: Engine, model: type, *where: Any) -> int:
    with unit_of_work(engine) as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def inbound_rows(engine: Engine) -> list[Inbound]:
    with unit_of_work(engine) as s:
        return list(s.execute(select(Inbound).order_by(Inbound.id)).scalars())  # type: ignore[arg-type]


def mailgun_fields(raw: bytes | str, *, recipient: str = "evidence@localhost", key: str = MG_KEY,
                   timestamp: float | None = None, token: str | None = None) -> dict[str, Any]:
    ts = str(int(timestamp if timestamp is not None else time.time()))
    tok = token or uuid.uuid4().hex + uuid.uuid4().hex[:18]  # Mailgun's tokens are 50 characters
    sig = hmac.new(key.encode(), (ts + tok).encode(), hashlib.sha256).hexdigest()
    return {"body-mime": raw, "recipient": recipient, "sender": "ann@example.org",
            "timestamp": ts, "token": tok, "signature": sig}


def multipart(fields: dict[str, Any]) -> aiohttp.BytesPayload:
    """A multipart/form-data body of plain fields, as the providers send (the message's bytes as
    they are, no filename, no transfer encoding)."""
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
        + (v if isinstance(v, bytes) else str(v).encode()) + b"\r\n"
        for k, v in fields.items()
    ) + f"--{boundary}--\r\n".encode()
    return aiohttp.BytesPayload(body, content_type=f"multipart/form-data; boundary={boundary}")


def raw_headers(body: bytes, *, secret: str = SECRET, timestamp: float | None = None,
                recipient: str | None = "evidence@localhost") -> dict[str, str]:
    ts = str(int(timestamp if timestamp is not None else time.time()))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    h = {"Content-Type": "message/rfc822", "X-Evidence-Timestamp": ts, "X-Evidence-Signature": f"sha256={sig}",
         "X-Evidence-Envelope-From": "Ann <ann@example.org>"}
    if recipient is not None:
        h["X-Evidence-Recipient"] = recipient
    return h


def sendgrid_form(raw: bytes | str, *, to: str = "evidence@localhost", envelope: bool = True) -> aiohttp.BytesPayload:
    fields: dict[str, Any] = {"email": raw, "to": f"Evidence <{to}>", "from": "Ann Example <ann@example.org>"}
    if envelope:
        fields["envelope"] = json.dumps({"to": [to], "from": "bounce+ann@example.org"})
    return multipart(fields)


def postmark_json(raw: bytes, *, recipient: str = "evidence@localhost", with_raw: bool = True) -> dict[str, Any]:
    payload: dict[str, Any] = {"From": "ann@example.org", "FromFull": {"Email": "ann@example.org"},
                               "OriginalRecipient": recipient, "Subject": "Evidence", "TextBody": "…"}
    if with_raw:
        payload["RawEmail"] = raw.decode("utf-8")
    return payload


@pytest.fixture
async def svc(db_url: str) -> AsyncIterator[Service]:
    async with Service(make_settings(db_url, **DOORS), smtp=False) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def url(svc: Service, path: str) -> str:
    return f"http://127.0.0.1:{svc.web_port}{path}"


async def post(http: aiohttp.ClientSession, svc: Service, path: str, *, auth: tuple[str, str] | None = None,
               **kw: Any) -> tuple[int, dict[str, Any]]:
    if auth is not None:
        kw["headers"] = {**kw.get("headers", {}), **basic(*auth)}
    async with http.post(url(svc, path), **kw) as r:
        return r.status, await r.json()


# ---------------------------------------------------------------- success on every endpoint


async def test_every_door_stores_then_files_with_its_envelope(svc: Service, http: aiohttp.ClientSession) -> None:
    raws = {name: evidence(i) for i, name in enumerate(("mailgun", "sendgrid", "postmark", "raw"))}
    assert await post(http, svc, "/inbound/mailgun/mime", data=multipart(mailgun_fields(raws["mailgun"])))\
        == (200, {"status": "stored"})
    assert (await post(http, svc, "/inbound/sendgrid", data=sendgrid_form(raws["sendgrid"]), auth=AUTH))[0] == 200
    assert (await post(http, svc, "/inbound/postmark", json=postmark_json(raws["postmark"]), auth=AUTH))[0] == 200
    body = raws["raw"]
    assert (await post(http, svc, "/inbound/raw", data=body, headers=raw_headers(body)))[0] == 200

    rows = {r.peer: r for r in inbound_rows(svc.engine)}
    assert set(rows) == {"webhook:mailgun", "webhook:sendgrid", "webhook:postmark", "webhook:raw"}
    for name, raw in raws.items():
        row = rows[f"webhook:{name}"]
        assert row.raw == raw and row.channel == "email"
        assert row.envelope_to == "evidence@localhost"
    assert rows["webhook:sendgrid"].envelope_from == "bounce+ann@example.org"  # the envelope's, not From:
    assert {rows[f"webhook:{n}"].envelope_from for n in ("mailgun", "postmark", "raw")} == {"ann@example.org"}

    await wait_for(lambda: count(svc.engine, Submission) == 4)
    with unit_of_work(svc.engine) as s:
        subs = list(s.execute(select(Submission)).scalars())
    assert sorted(str(sub.reference) for sub in subs) == [f"EV-00000{i}" for i in range(1, 5)]
    assert all(sub.public_body == "Exampleton Borough Council" for sub in subs)

    async with http.get(url(svc, "/healthz")) as r:
        health = await r.json()
    assert {k: v for k, v in health.items() if k.startswith("inbound_")} == {
        "inbound_mailgun": "ok", "inbound_sendgrid": "ok", "inbound_postmark": "ok", "inbound_raw": "ok"}


async def test_mailgun_urlencoded_keeps_the_bytes_exactly(svc: Service, http: aiohttp.ClientSession) -> None:
    # An 8-bit Latin-1 body: not UTF-8, so any decoding on the way would change it.
    raw = evidence(1).replace(b"The service improved", b"Le service s'est am\xe9lior\xe9 + 100% &=")
    body = urlencode(mailgun_fields(raw, recipient="Evidence <Evidence@Example.org>")).encode()
    status, _ = await post(http, svc, "/inbound/mailgun/mime", data=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    (row,) = inbound_rows(svc.engine)
    assert row.raw == raw
    assert row.envelope_to == "evidence@example.org"  # compared case-insensitively, stored as ours
    await wait_for(lambda: count(svc.engine, Submission) == 1)


async def test_the_same_message_through_smtp_and_a_webhook_is_stored_once(db_url: str,
                                                                          http: aiohttp.ClientSession) -> None:
    async with Service(make_settings(db_url, **DOORS)) as svc:
        raw = evidence(5)

        def _smtp() -> Any:
            with smtplib.SMTP("127.0.0.1", svc.smtp_port, timeout=30) as c:
                return c.sendmail("ann@example.org", ["evidence@localhost"], raw)

        assert await asyncio.to_thread(_smtp) == {}
        relayed = b"Received: from mx.mailgun.example by us; Tue, 1 Dec 2026\r\n" + raw
        assert await post(http, svc, "/inbound/mailgun/mime", data=multipart(mailgun_fields(relayed))) \
            == (200, {"status": "already stored"})
        assert await post(http, svc, "/inbound/raw", data=raw, headers=raw_headers(raw)) \
            == (200, {"status": "already stored"})
        await wait_for(lambda: count(svc.engine, Submission) == 1)
        assert count(svc.engine, Inbound) == 1
        assert inbound_rows(svc.engine)[0].peer == "127.0.0.1"  # the first door's copy is the one kept


# ---------------------------------------------------------------- authentication and replay


async def test_mailgun_refuses_bad_missing_and_stale_signatures(svc: Service, http: aiohttp.ClientSession) -> None:
    path = "/inbound/mailgun/mime"
    bad = mailgun_fields(evidence(1), key="not-the-key")
    missing = {k: v for k, v in mailgun_fields(evidence(2)).items() if k != "signature"}
    stale = mailgun_fields(evidence(3), timestamp=time.time() - 360)
    future = mailgun_fields(evidence(4), timestamp=time.time() + 360)
    for fields in (bad, missing, stale, future):
        status, answer = await post(http, svc, path, data=multipart(fields))
        assert status == 401 and answer["error"]
    assert count(svc.engine, Inbound) == 0
    assert count(svc.engine, InboundToken) == 0


async def test_mailgun_token_replayed_with_another_message_is_refused(svc: Service,
                                                                      http: aiohttp.ClientSession) -> None:
    path = "/inbound/mailgun/mime"
    first = mailgun_fields(evidence(1))
    assert (await post(http, svc, path, data=multipart(first)))[0] == 200
    # The provider retries after losing our answer: same token, same message.
    assert await post(http, svc, path, data=multipart(first)) == (200, {"status": "already stored"})
    # Someone replays the captured signature with a message of their own.
    forged = {**first, "body-mime": evidence(2)}
    status, answer = await post(http, svc, path, data=multipart(forged))
    assert status == 401 and "already been used" in answer["error"]
    assert count(svc.engine, Inbound) == 1
    with unit_of_work(svc.engine) as s:
        (tok,) = s.execute(select(InboundToken)).scalars()
    assert (tok.token, tok.provider) == (f"mailgun:{first['token']}", "mailgun")
    assert tok.dedupe_key == inbound_rows(svc.engine)[0].dedupe_key


async def test_basic_auth_doors_refuse_without_the_right_credentials(svc: Service,
                                                                     http: aiohttp.ClientSession) -> None:
    for path, kw in (("/inbound/sendgrid", {"data": sendgrid_form(evidence(1))}),
                     ("/inbound/postmark", {"json": postmark_json(evidence(1))})):
        for headers in ({}, basic(USER, "wrong"), basic("other", PASSWORD), basic(USER, PASSWORD + "x")):
            async with http.post(url(svc, path), headers=headers, **kw) as r:
                assert r.status == 401
                assert r.headers["WWW-Authenticate"].startswith("Basic")
                assert (await r.json())["error"]
        async with http.post(url(svc, path), headers={"Authorization": "Basic !!notbase64"}, **kw) as r:
            assert r.status == 401
    assert count(svc.engine, Inbound) == 0


async def test_raw_door_signature_freshness_and_retry(svc: Service, http: aiohttp.ClientSession) -> None:
    path = "/inbound/raw"
    raw = evidence(1)
    cases = [
        raw_headers(raw, secret="wrong"),
        raw_headers(raw, timestamp=time.time() - 400),
        {**raw_headers(raw), "X-Evidence-Signature": "deadbeef"},
        {k: v for k, v in raw_headers(raw).items() if k != "X-Evidence-Timestamp"},
        raw_headers(raw + b"tampered"),  # signed another body
    ]
    for headers in cases:
        status, answer = await post(http, svc, path, data=raw, headers=headers)
        assert status == 401, headers
    assert count(svc.engine, Inbound) == 0
    headers = raw_headers(raw, recipient=None)  # no recipient header: for us
    assert await post(http, svc, path, data=raw, headers=headers) == (200, {"status": "stored"})
    assert await post(http, svc, path, data=raw, headers=headers) == (200, {"status": "already stored"})
    assert count(svc.engine, Inbound) == 1
    # A replay can only be the same message (the signature covers the body): no token is kept.
    assert count(svc.engine, InboundToken) == 0
    (row,) = inbound_rows(svc.engine)
    assert (row.envelope_from, row.envelope_to) == ("ann@example.org", "")
    await wait_for(lambda: count(svc.engine, Submission) == 1)


async def test_old_tokens_are_pruned(svc: Service, http: aiohttp.ClientSession) -> None:
    from datetime import timedelta

    from storage.models import utcnow

    with unit_of_work(svc.engine) as s:
        s.add(InboundToken(token="mailgun:old", provider="mailgun", dedupe_key="x" * 64,
                           used_at=utcnow() - timedelta(minutes=30)))
    raw = evidence(1)
    assert (await post(http, svc, "/inbound/mailgun/mime", data=multipart(mailgun_fields(raw))))[0] == 200
    with unit_of_work(svc.engine) as s:
        tokens = list(s.execute(select(InboundToken.token)).scalars())  # type: ignore[call-overload]
    assert len(tokens) == 1 and tokens[0].startswith("mailgun:")


# ---------------------------------------------------------------- malformed, foreign, wrong kind


async def test_malformed_requests_answer_400_415_and_422(svc: Service, http: aiohttp.ClientSession) -> None:
    mg = "/inbound/mailgun/mime"
    no_body = {k: v for k, v in mailgun_fields(evidence(1)).items() if k != "body-mime"}
    status, answer = await post(http, svc, mg, data=multipart(no_body))
    assert status == 400 and "mime" in answer["error"]
    assert (await post(http, svc, mg, data=b"hello", headers={"Content-Type": "text/plain"}))[0] == 415
    broken = {"Content-Type": "multipart/form-data; boundary=xyz"}
    assert (await post(http, svc, mg, data=b"--xyz\r\nno headers end", headers=broken))[0] == 400

    status, answer = await post(http, svc, "/inbound/sendgrid", auth=AUTH,
                                data=multipart({"text": "parsed text", "to": "evidence@localhost"}))
    assert status == 400 and "raw, full MIME" in answer["error"]
    status, _ = await post(http, svc, "/inbound/sendgrid", auth=AUTH, data={"email": "x", "to": "y"})  # urlencoded
    assert status == 415
    bad_envelope = multipart({"email": evidence(2), "to": "evidence@localhost", "envelope": "{not json"})
    assert (await post(http, svc, "/inbound/sendgrid", auth=AUTH, data=bad_envelope))[0] == 400

    status, answer = await post(http, svc, "/inbound/postmark", auth=AUTH,
                                json=postmark_json(evidence(3), with_raw=False))
    assert status == 422 and "Include raw email content" in answer["error"]
    assert (await post(http, svc, "/inbound/postmark", auth=AUTH, data=b"{oops",
                       headers={"Content-Type": "application/json"}))[0] == 400
    assert (await post(http, svc, "/inbound/postmark", auth=AUTH, data=b"x",
                       headers={"Content-Type": "text/plain"}))[0] == 415

    raw = evidence(4)
    assert (await post(http, svc, "/inbound/raw", data=raw,
                       headers={**raw_headers(raw), "Content-Type": "text/plain"}))[0] == 415
    assert (await post(http, svc, "/inbound/raw", data=b"", headers=raw_headers(b"")))[0] == 400
    assert count(svc.engine, Inbound) == 0


async def test_foreign_recipients_get_406_and_nothing_is_stored(svc: Service, http: aiohttp.ClientSession) -> None:
    other = "someone@elsewhere.example"
    raw = evidence(1, to=other)
    answers = [
        await post(http, svc, "/inbound/mailgun/mime", data=multipart(mailgun_fields(raw, recipient=other))),
        await post(http, svc, "/inbound/sendgrid", data=sendgrid_form(raw, to=other), auth=AUTH),
        await post(http, svc, "/inbound/postmark", json=postmark_json(raw, recipient=other), auth=AUTH),
        await post(http, svc, "/inbound/raw", data=raw, headers=raw_headers(raw, recipient=other)),
    ]
    assert [a[0] for a in answers] == [406] * 4
    assert count(svc.engine, Inbound) == 0 and count(svc.engine, InboundToken) == 0
    # SendGrid without an envelope falls back to its `to` field ("Name <address>", any case).
    ok = await post(http, svc, "/inbound/sendgrid", data=sendgrid_form(evidence(2, to="EVIDENCE@localhost"),
                                                                      to="EVIDENCE@localhost", envelope=False),
                    auth=AUTH)
    assert ok[0] == 200
    assert inbound_rows(svc.engine)[0].envelope_to == "evidence@localhost"


async def test_disabled_doors_answer_404(db_url: str, http: aiohttp.ClientSession) -> None:
    async with Service(make_settings(db_url, EVIDENCE_INBOUND_SECRET=SECRET), smtp=False) as svc:
        for path in ("/inbound/mailgun/mime", "/inbound/sendgrid", "/inbound/postmark"):
            async with http.post(url(svc, path), data=b"x", headers=basic(*AUTH)) as r:
                assert r.status == 404
        raw = evidence(1)
        assert (await post(http, svc, "/inbound/raw", data=raw, headers=raw_headers(raw)))[0] == 200
        async with http.get(url(svc, "/healthz")) as r:
            health = await r.json()
        # /healthz lists every door that is on, and only those.
        assert health["inbound_raw"] == "ok"
        assert not {"inbound_mailgun", "inbound_sendgrid", "inbound_postmark"} & set(health)


# ---------------------------------------------------------------- size limits

LIMIT = 64 * 1024


@pytest.fixture
async def small(db_url: str) -> AsyncIterator[Service]:
    async with Service(make_settings(db_url, EVIDENCE_MAX_MESSAGE_BYTES=LIMIT, **DOORS), smtp=False) as s:
        yield s


async def _declared_only(port: int, path: str, content_type: str, length: int) -> bytes:
    """Sends headers announcing `length` bytes and none of them; the answer must come anyway."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    # Basic auth for SendGrid and Postmark; the raw door checks its signature once it has the body.
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
                 f"Authorization: Basic {auth}\r\nX-Evidence-Timestamp: {int(time.time())}\r\n"
                 "X-Evidence-Signature: sha256=00\r\n\r\n".encode())
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("path,ctype", [
    ("/inbound/mailgun/mime", "multipart/form-data; boundary=b"),
    ("/inbound/mailgun/mime", "application/x-www-form-urlencoded"),
    ("/inbound/sendgrid", "multipart/form-data; boundary=b"),
    ("/inbound/postmark", "application/json"),
    ("/inbound/raw", "message/rfc822"),
])
async def test_a_declared_length_over_the_limit_is_refused_before_reading(small: Service, path: str,
                                                                          ctype: str) -> None:
    status_line = await _declared_only(small.web_port, path, ctype, 100 * LIMIT)
    assert status_line.startswith(b"HTTP/1.1 413"), status_line


async def _streamed(total: int, head: bytes = b"", filler: bytes = b"A" * 8192) -> AsyncIterator[bytes]:
    yield head
    sent = len(head)
    while sent < total:
        yield filler  # the same object each time: the client side allocates nothing per chunk
        sent += len(filler)


@pytest.mark.parametrize("door", ["mailgun-multipart", "mailgun-urlencoded", "sendgrid", "raw"])
async def test_a_streamed_body_far_over_the_limit_is_refused_without_buffering(
        small: Service, http: aiohttp.ClientSession, door: str) -> None:
    total = 400 * LIMIT  # 25 MiB, sent chunked: no Content-Length to refuse it by
    fields = mailgun_fields("")
    head_fields = "".join(f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                          for k, v in fields.items() if k != "body-mime")
    if door == "mailgun-urlencoded":
        path, headers = "/inbound/mailgun/mime", {"Content-Type": "application/x-www-form-urlencoded"}
        head, filler = urlencode({k: v for k, v in fields.items() if k != "body-mime"}).encode() + b"&body-mime=", \
            b"%41" * 4096
    elif door == "raw":
        path, headers, filler = "/inbound/raw", raw_headers(b""), b"A" * 8192
        head = b""
    else:
        path = "/inbound/mailgun/mime" if door.startswith("mailgun") else "/inbound/sendgrid"
        name = "body-mime" if door.startswith("mailgun") else "email"
        headers = {"Content-Type": "multipart/form-data; boundary=b"}
        head = (head_fields + f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n').encode()
        filler = b"A" * 8192
    tracemalloc.start()
    try:
        async with http.post(url(small, path), data=_streamed(total, head, filler),
                             headers={**headers, **basic(*AUTH)}) as r:
            status = r.status
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 413
    # The peak of everything this process allocated meanwhile, server and client: the part read
    # so far (the limit and the form allowance), chunks, and asyncio's 256 KiB socket reads;
    # nowhere near the 25 MiB that was sent.
    assert peak < 3 * 1024 * 1024, peak
    assert count(small.engine, Inbound) == 0


async def test_a_message_over_the_limit_inside_a_small_form_is_refused(small: Service,
                                                                       http: aiohttp.ClientSession) -> None:
    big = evidence(1, extra="x" * (LIMIT + 10))  # within the form allowance, over the message limit
    status, answer = await post(http, small, "/inbound/mailgun/mime", data=multipart(mailgun_fields(big)))
    assert status == 413 and answer["error"]
    status, _ = await post(http, small, "/inbound/postmark", json=postmark_json(big), auth=AUTH)
    assert status == 413
    fits = evidence(2, extra="x" * (LIMIT // 2))
    assert (await post(http, small, "/inbound/postmark", json=postmark_json(fits), auth=AUTH))[0] == 200
    assert count(small.engine, Inbound) == 1


# ---------------------------------------------------------------- the database fails


async def test_database_outage_answers_503(http: aiohttp.ClientSession) -> None:
    """The doors against a database that refuses connections: 503 (the provider retries), never 200."""
    from bot.settings import Settings

    # Port 9 (discard) has no server here: every connection attempt is refused, as in an outage.
    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:9/none")
    settings = Settings.model_validate({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/none",
                                        "EVIDENCE_ADDRESSES": "evidence@localhost", **DOORS})
    committer = GroupCommitter(dead)
    committer.start()
    app = web.Application()
    webhooks.register(app, settings=settings, intake=committer.store, engine=dead)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        raw = evidence(1)
        for path, kw in (
            ("/inbound/mailgun/mime", {"data": multipart(mailgun_fields(raw))}),
            ("/inbound/sendgrid", {"data": sendgrid_form(raw), "headers": basic(*AUTH)}),
            ("/inbound/postmark", {"json": postmark_json(raw), "headers": basic(*AUTH)}),
            ("/inbound/raw", {"data": raw, "headers": raw_headers(raw)}),
        ):
            async with http.post(base + path, **kw) as r:
                assert r.status == 503, path
                assert "try again" in (await r.json())["error"]
    finally:
        await runner.cleanup()
        await committer.stop()
        dead.dispose()


async def test_database_full_answers_503_and_stores_nothing(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """SQLite's max_page_count makes a real "database or disk is full" error, as a full disk would."""
    db_url, engine = nearly_full_engine(tmp_path / "full.db")

    async with Service(make_settings(db_url, **DOORS), engine=engine, smtp=False) as svc:
        big = evidence(1, extra="\n" + "A" * 76 * 5000)
        status, answer = await post(http, svc, "/inbound/raw", data=big, headers=raw_headers(big))
        assert status == 503 and "full" not in answer["error"]  # no internal detail leaks
        assert count(svc.engine, Inbound) == 0
        small = evidence(2)
        assert (await post(http, svc, "/inbound/raw", data=small, headers=raw_headers(small)))[0] == 200
        assert count(svc.engine, Inbound) == 1


@pytest.fixture(autouse=True)
def _no_leaked_tracing() -> Iterator[None]:
    yield
    if tracemalloc.is_tracing():
        tracemalloc.stop()


async def test_postmark_raw_email_with_a_lone_surrogate_is_stored(svc: Service, http: aiohttp.ClientSession) -> None:
    """JSON may spell a lone surrogate ("\\ud800"), which no encoding takes: the message is stored
    with "?" in its place, not answered 503 (which Postmark would retry for ever)."""
    raw = evidence(7)
    body = json.dumps(postmark_json(raw)).replace("Public body", "Public\\ud800 body", 1).encode()
    status, answer = await post(http, svc, "/inbound/postmark", auth=AUTH, data=body,
                                headers={"Content-Type": "application/json"})
    assert (status, answer) == (200, {"status": "stored"})
    with unit_of_work(svc.engine, read_only=True) as s:
        stored = s.execute(select(col(Inbound.raw))).scalar_one()
    assert bytes(stored) == raw.replace(b"Public body", b"Public? body", 1)
