"""The parser's fast paths (issue 11) give exactly what the plain ones give.

* bot.parsing.scan: a pattern tried only at candidate positions finds what `finditer` finds;
* the gazetteer's walk from capitals finds what a walk from every word finds;
* money's cheap pre-checks drop no amount;
* bot.parsing.lean: a big message parses the same with its big attachments taken out first;
* bot.similarity: the numpy MinHash equals the plain-integer definition.
"""

from __future__ import annotations

import base64
import email
import random
import re
from email import policy
from pathlib import Path

import pytest

from bot import similarity
from bot.parsing import bodies, fields, gazetteer, lean, money, scan
from bot.parsing.email_message import parse_email

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.eml"))


def _texts() -> list[str]:
    out: list[str] = []
    for p in CORPUS:
        rec = parse_email(p.read_bytes())
        out.append(rec.body or "")
        out += [a.text for a in rec.attachments if a.text]
    rnd = random.Random(11)
    words = " ".join(out).split()
    for _ in range(150):
        k = rnd.randint(5, 60)
        i = rnd.randint(0, max(0, len(words) - k))
        out.append(" ".join(words[i : i + k]))
        out.append(" ".join(rnd.choice(words) for _ in range(k)))
    out += [
        "The project was not a success. Overall, it was a failure; a success fee was paid. Kent CC and the DWP.",
        "We would like to remain anonymous. Not for publication. Off the record, the MoJ went back to paper.",
        "A 10-year contract starting in 2014, from April 2019 to March 2021, and 2018-23 too. £3.25 million saved.",
        "the Christie NHS Foundation Trust, The Walton Centre; theatre, there the. Capita and Barnet Council's ICB.",
    ]
    return out + [t.upper() for t in out[:40]] + [t.lower() for t in out[:40]]


TEXTS = _texts()


def _spans(it: object) -> list[tuple[int, int]]:
    return [m.span() for m in it]  # type: ignore[attr-defined]


def _gazetteer_reference(g: gazetteer.Gazetteer, text: str) -> list[gazetteer.Hit]:
    """The walk from every word of the text, as the gazetteer did before it looked at capitals."""
    text = text[: gazetteer.MAX_CHARS]
    words = list(gazetteer._WORD.finditer(text))
    keys = [gazetteer._key(m.group(0)) for m in words]
    hits, i = [], 0
    while i < len(words):
        best = None
        node: object = g._root
        j = i
        while j < len(words) and isinstance(node, dict) and keys[j] in node:
            node = node[keys[j]]
            j += 1
            for entry in node.get("", ()) if isinstance(node, dict) else ():
                if g._written_so(entry, words[i:j]):
                    best = (j, entry)
                    break
        if best is None:
            i += 1
            continue
        j, entry = best
        start, end = words[i].start(), words[j - 1].end()
        as_written = re.sub(r"['’]s?$", "", text[start:end]) if not entry.exact else text[start:end]
        initials = entry.exact is not None
        name = as_written if (initials or not entry.is_short_form) else entry.name
        hits.append(gazetteer.Hit(start, start + len(as_written), as_written, name, initials))
        i = j
    return hits


def test_anchored_patterns_find_what_finditer_finds() -> None:
    g = gazetteer.gazetteer()
    for t in TEXTS:
        caps = scan.upper_positions(t)
        assert _spans(fields._OUTCOME.finditer(t)) == _spans(fields._OUTCOME_RE.finditer(t)), t
        assert _spans(fields._CONFIDENTIAL.finditer(t)) == _spans(fields._CONFIDENTIAL_REQUESTS.finditer(t)), t
        assert _spans(fields._NOT_PUBLISHED.finditer(t)) == _spans(fields._NOT_FOR_PUBLICATION.finditer(t)), t
        for rx, kw in ((fields._PERIOD_RANGE, {}), (fields._PERIOD_DURATION, {"before": 200, "after": 10})):
            near, plain = scan.search_near_years(rx, t, **kw), rx.search(t)
            assert (near and near.span()) == (plain and plain.span()), t
        assert _spans(bodies._suffixed(t, caps)) == _spans(bodies._SUFFIXED_BODY.finditer(t)), t
        for rx in bodies._FIRSTS:
            assert _spans(bodies._at(rx, t, caps)) == _spans(rx.finditer(t)), (rx.pattern[:40], t)
        starts = (m.start() for m in bodies._INTRODUCED_STARTS.finditer(t))
        assert _spans(scan.finditer_at(bodies._INTRODUCED_RE, t, starts)) == _spans(bodies._INTRODUCED_RE.finditer(t))
        assert g.find(t) == _gazetteer_reference(g, t), t


def test_money_prechecks_drop_nothing() -> None:
    for t in TEXTS:
        found = money._matches(money._PREFIXED, t) + money._matches(money._SUFFIXED, t) + money._worded(t)
        found.sort(key=lambda c: (c.start, -(c.end - c.start)))
        kept: list[money.MoneyMatch] = []
        for c in found:
            if not kept or c.start >= kept[-1].end:
                kept.append(c)
        assert money.find_money(t) == kept, t


def test_upper_positions_match_isupper() -> None:
    for t in [*TEXTS[:50], "Ŵyŷ ÆØ ǅ \U0001d400 Ωmega"]:
        assert scan.upper_positions(t) == [i for i, ch in enumerate(t) if ch.isupper()]


def _b64(data: bytes, width: int = 76) -> bytes:
    s = base64.b64encode(data)
    return b"\n".join(s[i : i + width] for i in range(0, len(s), width))


def _big_message(eol: bytes) -> bytes:
    rnd = random.Random(3)
    pdf_msg = email.message_from_bytes(next(p for p in CORPUS if "pdf" in p.name).read_bytes(),
                                       policy=policy.default)
    pdf = next(p for p in pdf_msg.walk() if p.get_content_type() == "application/pdf").get_payload(decode=True)
    assert isinstance(pdf, bytes)
    parts = [
        b'Content-Type: multipart/alternative; boundary="alt"\n\n--alt\nContent-Type: text/plain\n\n'
        b"Project: Payroll\nThe council's contract was a failure from 2019 to 2021.\n--alt\n"
        b"Content-Type: text/html\n\n<p>Project: Payroll</p>\n--alt--",
        b'Content-Type: application/pdf; name="a.pdf"\nContent-Disposition: attachment; filename="a.pdf"\n'
        b"Content-Transfer-Encoding: base64\n\n" + _b64(pdf + rnd.randbytes(400_000)),
        b'Content-Type: application/octet-stream; name="scan.bin"\nContent-Disposition: attachment; '
        b'filename="scan.bin"\nContent-Transfer-Encoding: base64\n\n' + _b64(rnd.randbytes(2_500_000)),
        b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + _b64(pdf * 200),
        b'Content-Type: image/png; name="x.png"\nContent-Transfer-Encoding: base64\n\n'
        + _b64(rnd.randbytes(300_001), 64),
        b'Content-Type: text/plain; name="notes.txt"\nContent-Disposition: attachment; filename="notes.txt"\n'
        b"Content-Transfer-Encoding: base64\n\n" + _b64(b"Supplier: Capita\n" * 20000),
        b'Content-Type: application/octet-stream; name="broken.bin"\nContent-Transfer-Encoding: base64\n\n'
        + _b64(rnd.randbytes(300_000))[:-3] + b"=A=\n",
    ]
    head = (b'From: A <a@example.org>\nTo: e@x\nSubject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; '
            b'boundary="b1"\n\npreamble\n')
    raw = head + b"".join(b"--b1\n" + p + b"\n" for p in parts) + b"--b1--\nepilogue\n"
    return raw.replace(b"\n", eol)


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_a_big_message_parses_the_same_with_its_attachments_taken_out(
    eol: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _big_message(eol)
    slim = lean.lean(raw)
    assert slim is not None and len(slim.stubs) >= 3 and len(slim.raw) < len(raw) // 4
    fast = parse_email(raw).to_json()
    monkeypatch.setattr(lean, "LEAN_FROM_BYTES", 1 << 62)
    assert parse_email(raw).to_json() == fast


def test_numpy_minhash_is_the_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(5)
    for n in (1, 2, 3, 17, 500, 3000):
        xs = [rnd.randrange(0, 1 << 61) for _ in range(n)] + [0, (1 << 61) - 1, (1 << 61) - 2, 1 << 32, (1 << 32) - 1]
        assert similarity.signature(xs) == similarity.signature_py(xs)
    # Values just below p and multipliers near their largest, where every partial sum is biggest.
    top = [(1 << 61) - 1 - k for k in range(64)] + [((1 << 29) - 1) << 32 | k for k in range(64)]
    assert similarity.signature(top) == similarity.signature_py(top)
    # Many texts worked out together, empty ones among them, in more than one batch.
    monkeypatch.setattr(similarity, "_BATCH_VALUES", 1000)
    sets = [[rnd.randrange(0, 1 << 61) for _ in range(n)] for n in (3, 0, 700, 1, 0, 2500, 40, 900)] + [top]
    assert similarity.signatures(sets) == [similarity.signature_py(xs) if xs else [] for xs in sets]


def test_shingles_are_the_hashed_word_triples(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts()
    many = similarity.keys_of_many(texts)
    for text, (sh, bands) in zip(texts, many, strict=True):
        w = similarity.words(text)
        wanted = (frozenset(similarity._hash(" ".join(w[i:i + 3])) for i in range(len(w) - 2))
                  if len(w) >= similarity.MIN_WORDS else frozenset())
        assert similarity.shingles(text) == sh == wanted
        assert bands == similarity.band_keys(similarity.signature_py(list(wanted)) if wanted else [])
    monkeypatch.setattr(similarity, "_np", None)  # without numpy: the plain definitions, same keys
    assert similarity.keys_of_many(texts[:20]) == many[:20]
