"""Near-identical evidence (campaigns): shingles, MinHash, LSH band keys, the threshold, the diff.

Pure: no Slack, SMTP or database imports. bot.campaigns stores the band keys and applies these
rules in the filing transaction; the bench and the tests call them directly.

A text becomes the set of its overlapping word triples ("shingles"), each hashed to 61 bits.
Two texts are near-identical when the Jaccard similarity of their shingle sets reaches THRESHOLD.
Comparing every record with every other is out of the question at 100,000 records, so each text
also gets a MinHash signature (PERMUTATIONS minimums of random hash permutations: the chance
that two signatures agree at one position is the Jaccard similarity) cut into BANDS bands of
ROWS rows. Texts that agree on all rows of any band share a band key; a new text looks its keys
up in an index and verifies only the few candidates it finds with the exact Jaccard.
"""

from __future__ import annotations

import difflib
import hashlib
import random
import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from bot.parsing.fields import prose_of

SHINGLE_WORDS = 3
# A template is a letter, not a line: below this many words, two texts alike are just short.
MIN_WORDS = 40
# The threshold, chosen from tests/test_campaigns.py's texts (Jaccard of word-triple sets; the
# template there is a 135-word campaign letter, the "different" texts evidence-shaped accounts
# about the same council and supplier). Measured:
#   name changed ................................ 0.96
#   name and signature (town, postcode) changed . 0.94
#   a personal sentence added ................... 0.86
#   one sentence rewritten ...................... 0.79
#   sentence rewritten, name and signature ...... 0.74
#   rewritten, a sentence added, another name ... 0.66
#   same contract, different accounts ........... 0.00 (corroboration, not a campaign)
#   same contract, the campaign's opening line .. 0.08
# Everything a campaign does to its template stays above 0.6, different evidence below 0.1:
# 0.5 sits in the wide gap, leaning to joining, since a missed member costs a reviewer one
# more card while a false join is visible on the campaign card (the differing lines) and the
# reviewer can still open and decide each member alone.
THRESHOLD = 0.5
PERMUTATIONS = 128
BANDS = 32
ROWS = PERMUTATIONS // BANDS  # 4: a pair at Jaccard 0.5 shares a band with chance 0.87, at 0.6 0.99,
# at 0.2 only 0.05, so candidates are few and almost all real.

_PRIME = (1 << 61) - 1
_MASK = (1 << 61) - 1
_rng = random.Random(20260101)  # fixed: band keys are stored, so the permutations never change
_PERMS = [(_rng.randrange(1, _PRIME), _rng.randrange(0, _PRIME)) for _ in range(PERMUTATIONS)]
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_QUOTED = re.compile(r"^[ \t]*>.*$", re.MULTILINE)


def words(text: str | None) -> list[str]:
    """The evidence's own words, lower case: template lines ("Supplier: X") and quoted reply lines
    are not part of what a campaign copies."""
    if not text:
        return []
    return _WORD.findall(_QUOTED.sub("", prose_of(text)).lower())


def _hash(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big") & _MASK


def shingles(text: str | None) -> frozenset[int]:
    """The hashed word triples of a text; empty when it is too short to be a template."""
    w = words(text)
    if len(w) < MIN_WORDS:
        return frozenset()
    if _np is not None:
        return frozenset(_hash_triples(w).tolist())
    return frozenset(_hash(" ".join(w[i:i + SHINGLE_WORDS])) for i in range(len(w) - SHINGLE_WORDS + 1))


_BLAKE8 = hashlib.blake2b(digest_size=8)  # copied for each shingle: setting one up costs twice as much


def _hash_triples(w: list[str]) -> Any:
    """_hash of each run of SHINGLE_WORDS (3) words, repeats included, as a numpy array: the
    digests joined and read as big-endian integers, with no Python int made for each (a call
    and an int per shingle was most of the time)."""
    joined = "\n".join(map(" ".join, zip(w, w[1:], w[2:], strict=False)))  # words hold no "\n"
    digests: list[bytes] = []
    keep, fresh = digests.append, _BLAKE8.copy
    for part in joined.encode().split(b"\n"):
        h = fresh()
        h.update(part)
        keep(h.digest())
    return _np.frombuffer(b"".join(digests), dtype=">u8").astype(_np.uint64) & _np.uint64(_MASK)


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def signature(sh: Iterable[int]) -> list[int]:
    """The MinHash signature: per permutation, the least (a·x + b) mod p over the shingles."""
    return signatures([list(sh)])[0]


def signatures(sets: Sequence[Collection[int]]) -> list[list[int]]:
    """signature() of each set, worked out together (the same numbers): one pass of numpy calls
    for a batch of texts instead of one per text, whose overhead was a third of the time."""
    out: list[list[int]] = [[] for _ in sets]
    if _np is None:
        for i, sh in enumerate(sets):
            out[i] = signature_py(list(sh)) if len(sh) else []
        return out
    group: list[int] = []
    size = 0
    for i, sh in enumerate(sets):
        if not len(sh):  # (a numpy array has no truth value)
            continue
        group.append(i)
        size += len(sh)
        if size >= _BATCH_VALUES:
            _signatures_np(sets, group, out)
            group, size = [], 0
    if group:
        _signatures_np(sets, group, out)
    return out


def signature_py(xs: Sequence[int]) -> list[int]:
    """The definition, in plain Python integers (128 x N big-integer products: about 25 ms for a
    5 KB text); `signature` computes the same numbers with numpy when it is installed."""
    return [min([(a * x + b) % _PRIME for x in xs]) for a, b in _PERMS]


try:
    import numpy as _np
except ImportError:  # pragma: no cover - numpy is a dependency; the plain path stays the reference
    _np = None  # type: ignore[assignment]

if _np is not None:
    _A = _np.array([a for a, _ in _PERMS], dtype=_np.uint64)[:, None]
    _B = _np.array([b for _, b in _PERMS], dtype=_np.uint64)[:, None]
    _A_HI, _A_LO = _A >> _np.uint64(32), _A & _np.uint64(0xFFFFFFFF)
    _P = _np.uint64(_PRIME)


_BATCH_VALUES = 1 << 16  # shingles of the texts worked out together, at most (and one text more)
_LANES = 1 << 18  # permutations x shingles per pass: three scratch arrays of this stay in the cache


def _signatures_np(sets: Sequence[Collection[int]], which: list[int], out: list[list[int]]) -> None:
    """out[i] = signature of sets[i] for each i in `which` (none empty), all in one array.

    (a·x + b) mod p exactly, in 64-bit lanes: a and x split at bit 32 (a, x < 2^61), each
    partial product fits 64 bits, and the powers of two fold down with 2^61 = 1 (mod p). A few
    permutations at a time, into three scratch arrays reused in place (a 128 x N temporary per
    step cost four times as much: memory traffic and page faults rather than arithmetic); then
    the least value of each text's own stretch of the row (reduceat)."""
    lens = [len(sets[i]) for i in which]
    x = _np.concatenate([_np.asarray(sets[i], dtype=_np.uint64) if isinstance(sets[i], _np.ndarray)
                         else _np.fromiter(sets[i], dtype=_np.uint64, count=len(sets[i])) for i in which])[None, :]
    starts = _np.cumsum([0, *lens[:-1]])
    u = _np.uint64
    x_hi, x_lo = x >> u(32), x & u(0xFFFFFFFF)
    m29, p = u((1 << 29) - 1), _P
    chunk = max(1, min(16, 1 << max(0, (_LANES // x.shape[1]).bit_length() - 1)))
    t1, t2, t3 = (_np.empty((chunk, x.shape[1]), dtype=_np.uint64) for _ in range(3))
    sig = _np.empty((PERMUTATIONS, len(which)), dtype=_np.uint64)

    def fold(v: Any) -> None:  # v = v mod p, up to one subtraction (2^61 = 1 mod p), in place
        _np.right_shift(v, u(61), out=t3)
        _np.bitwise_and(v, p, out=v)
        _np.add(v, t3, out=v)

    for k in range(0, PERMUTATIONS, chunk):
        a_hi, a_lo, b = _A_HI[k:k + chunk], _A_LO[k:k + chunk], _B[k:k + chunk]
        n = a_hi.shape[0]  # the last pass may be shorter
        r1, r2, r3 = t1[:n], t2[:n], t3[:n]
        _np.multiply(a_hi, x_hi, out=r1)
        _np.left_shift(r1, u(3), out=r1)  # hi: a_hi·x_hi·2^64 = 8·a_hi·x_hi (mod p), < 2^61
        _np.multiply(a_hi, x_lo, out=r2)  # mid = a_hi·x_lo + a_lo·x_hi < 2^62
        _np.multiply(a_lo, x_hi, out=r3)
        _np.add(r2, r3, out=r2)
        _np.bitwise_and(r2, m29, out=r3)  # mid·2^32 = (mid >> 29) + (mid mod 2^29)·2^32, < 2^62
        _np.left_shift(r3, u(32), out=r3)
        _np.right_shift(r2, u(29), out=r2)
        _np.add(r2, r3, out=r2)
        _np.add(r1, r2, out=r1)
        _np.multiply(a_lo, x_lo, out=r2)  # low = a_lo·x_lo < 2^64, folded below 2^61 + 8
        fold(r2)
        _np.add(r1, r2, out=r1)
        _np.add(r1, b, out=r1)  # hi + mid + low + b < 2^61 + 2^62 + (2^61 + 8) + 2^61 < 2^64
        fold(r1)
        # Now < p + 8; the wrapped v - p is the reduced value where v >= p and huge elsewhere.
        _np.subtract(r1, p, out=r2)
        _np.minimum(r1, r2, out=r1)
        sig[k:k + n] = _np.minimum.reduceat(r1, starts, axis=1)
    for j, i in enumerate(which):
        out[i] = sig[:, j].tolist()


def band_keys(sig: Sequence[int]) -> list[int]:
    """One signed 64-bit key per band (band number included, so equal rows in different bands differ)."""
    out = []
    for band in range(BANDS if sig else 0):
        rows = sig[band * ROWS:(band + 1) * ROWS]
        digest = hashlib.blake2b(f"{band}:{','.join(map(str, rows))}".encode(), digest_size=8).digest()
        out.append(int.from_bytes(digest, "big", signed=True))
    return out


def keys_of(text: str | None) -> tuple[frozenset[int], list[int]]:
    """(shingles, band keys) of a text; both empty when it is too short to join a campaign."""
    return keys_of_many([text])[0]


def keys_of_many(texts: Sequence[str | None]) -> list[tuple[frozenset[int], list[int]]]:
    """keys_of for each text, the signatures worked out together (signatures)."""
    if _np is None:
        sets = [shingles(t) for t in texts]
        return [(sh, band_keys(sig)) for sh, sig in zip(sets, signatures(sets), strict=True)]
    hashed = [_hash_triples(w) if len(w := words(t)) >= MIN_WORDS else _np.empty(0, dtype=_np.uint64)
              for t in texts]
    return [(frozenset(h.tolist()), band_keys(sig)) for h, sig in zip(hashed, signatures(hashed), strict=True)]


def same_campaign(a: frozenset[int], b: frozenset[int]) -> bool:
    return jaccard(a, b) >= THRESHOLD


def _lines(text: str | None) -> list[str]:
    return [" ".join(line.split()) for line in _QUOTED.sub("", prose_of(text or "")).splitlines() if line.strip()]


def differing_lines(template: str | None, member: str | None, *, limit: int = 3) -> list[str]:
    """The lines of `member` that are not in `template` (a changed name, an added sentence), at most
    `limit`, in the member's order: what the campaign card shows of a member."""
    base, mine = _lines(template), _lines(member)
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=base, b=mine, autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            out.extend(mine[j1:j2])
    return out[:limit]
