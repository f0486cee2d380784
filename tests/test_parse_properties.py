"""Property tests: whatever mail arrives, the parser returns a record of the pinned shape.

Generated and mutated mail (truncations, flipped bytes, bad charsets, broken MIME boundaries, deep
nesting, huge lines) must never raise, and must give a record whose JSON has exactly the pinned
keys, a summary of at most 600 characters, and money that is a non-negative whole number or null.
Examples are derandomized and few, so the run is reproducible and takes seconds.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.parsing.email_message import parse_email
from bot.parsing.fields import extract_fields, infer_outcome
from bot.parsing.money import find_money, parse_money
from bot.record import JSON_KEYS, SUMMARY_MAX, EvidenceRecord, Outcome

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.eml"))
SEEDS = [p.read_bytes() for p in CORPUS]

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_PROSE_WORDS = [
    "Kent CC", "the MoJ", "DWP", "worth", "£3.25", "million", "£30m", "£450k a year", "GBP 1.2bn", "saved",
    "savings of", "cut costs by", "thirty million pounds", "half a", "not", "far from", "a success", "a failure",
    "mixed", "went back to paper", "Overall,", "Dear reviewers,", "Kind regards,", "Thanks,", "Capita", "\n",
    "\n\n", ".", ",", "£", "-", "1,200,", "000", "Outcome:", "Supplier:", "Contract value:", "the project was",
]  # fmt: skip


def assert_pinned_shape(rec: EvidenceRecord) -> None:
    data = rec.to_json()
    assert tuple(data) == JSON_KEYS
    assert data["summary"] is None or (isinstance(data["summary"], str) and len(data["summary"]) <= SUMMARY_MAX)
    for key in ("contract_value_gbp", "savings_gbp"):
        value = data[key]
        assert value is None or (type(value) is int and value >= 0), (key, value)
    assert data["outcome"] in {o.value for o in Outcome}
    assert not any(w.startswith("parser error") for w in rec.parse_warnings), rec.parse_warnings


def _mutate(seed: bytes, how: str, at: float, payload: bytes) -> bytes:
    cut = int(len(seed) * at)
    if how == "truncate":
        return seed[:cut]
    if how == "flip":
        out = bytearray(seed)
        for i, b in enumerate(payload[:64]):
            out[(cut + i * 97) % max(1, len(out))] ^= b or 0xFF
        return bytes(out)
    if how == "charset":
        return seed.replace(b"charset=", b"charset=" + (payload[:12] or b"x-bogus") + b"-", 3)
    if how == "boundary":
        return seed.replace(b"--", b"-" + payload[:3], 5)
    if how == "insert":
        return seed[:cut] + payload + seed[cut:]
    if how == "huge_line":
        return seed[:cut] + (payload or b"x") * (200_000 // max(1, len(payload))) + seed[cut:]
    return seed


@PROPERTY
@given(
    seed=st.sampled_from(SEEDS),
    how=st.sampled_from(["truncate", "flip", "charset", "boundary", "insert", "huge_line"]),
    at=st.floats(min_value=0.0, max_value=1.0),
    payload=st.binary(max_size=200),
)
def test_mutated_corpus_mail(seed: bytes, how: str, at: float, payload: bytes) -> None:
    assert_pinned_shape(parse_email(_mutate(seed, how, at, payload)))


_HEADER = st.sampled_from([
    b"From: a@b.org", b"From: =?utf-8?b?w6k=?= <x@y>", b"Subject: =?bogus?q?=E9?=", b"Subject: Re: [EV-000042] hi",
    b"Content-Type: text/html; charset=latin-1", b"Content-Type: multipart/mixed; boundary=B",
    b"Content-Type: multipart/alternative; boundary=\"", b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable", b"In-Reply-To: <ack.EV-000001.x@h>", b"Date: Mon, 99 Foo 2026",
    b"Content-Type: message/rfc822",
])  # fmt: skip


@PROPERTY
@given(
    headers=st.lists(_HEADER, max_size=6),
    words=st.lists(st.sampled_from(_PROSE_WORDS), max_size=80),
    depth=st.integers(min_value=0, max_value=60),
    tail=st.binary(max_size=300),
)
def test_generated_mail(headers: list[bytes], words: list[str], depth: int, tail: bytes) -> None:
    body = " ".join(words).encode("utf-8")
    nest = b"".join(b"--B\nContent-Type: multipart/mixed; boundary=B\n\n" for _ in range(depth))
    raw = b"\n".join(headers) + b"\n\n" + nest + body + b"\n--B\n" + tail
    assert_pinned_shape(parse_email(raw))


@PROPERTY
@given(st.lists(st.sampled_from(_PROSE_WORDS), max_size=120), st.text(max_size=300))
def test_prose_inference_is_total(words: list[str], noise: str) -> None:
    text = " ".join(words) + noise
    fields = extract_fields(text, subject=noise[:80])
    for value in (fields.contract_value_gbp, fields.savings_gbp):
        assert value is None or (type(value) is int and value >= 0)
    assert isinstance(infer_outcome(text), Outcome)
    assert all(type(m.value) is int and m.value >= 0 for m in find_money(text))
    value = parse_money(noise)
    assert value is None or value >= 0
