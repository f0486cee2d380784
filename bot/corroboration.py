"""Corroboration: records about the same public body and the same supplier find each other.

People write the same council or company many ways ("Kent CC", "Kent County Council", "KENT COUNTY
COUNCIL."; "Capita plc", "Capita Ltd", "capita"). `normalise_body` and `normalise_supplier` are pure
and map such spellings to one key; the keys are stored on the record (body_key, supplier_key) when
it is filed or edited, so `corroborating` is an index lookup, not a scan with fuzzy matching.

The rules are deliberately conservative: a false link shown to a reviewer ("also reported in") is
worse than a missed one, so words are expanded or dropped only where the meaning is certain.
"""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from storage.models import Submission

KEY_MAX = 255
# Records that no longer stand as evidence do not corroborate anything.
NOT_EVIDENCE = ("withdrawn", "rejected")

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")

# Whole-word abbreviations in public bodies' names, as written in the UK public sector.
_BODY_ABBREVIATIONS = {
    "cc": "county council",
    "bc": "borough council",
    "mbc": "metropolitan borough council",
    "dc": "district council",
    "lbc": "london borough council",
    "rbc": "royal borough council",
    "ccg": "clinical commissioning group",
    "icb": "integrated care board",
    "govt": "government",
    "dept": "department",
    "nhsft": "nhs foundation trust",
    "nhsfoundationtrust": "nhs foundation trust",
}
# Multi-word forms, applied after single words are expanded (order matters: longest first).
_BODY_PHRASES = (
    (re.compile(r"\bnhs ft\b"), "nhs foundation trust"),
    (re.compile(r"\bnhs f t\b"), "nhs foundation trust"),
    (re.compile(r"\bfoundation trust nhs\b"), "nhs foundation trust"),
    (re.compile(r"\bcity council of (.+)$"), r"\1 city council"),
)
# "London Borough of Camden" and "LB Camden" are "Camden London Borough Council"; likewise royal boroughs.
_BOROUGH_OF = re.compile(r"^(?:the )?(london|royal) borough of (.+?)(?: council)?$")
_LB = re.compile(r"^lb (?:of )?(.+)$")
_CITY_OF = re.compile(r"^city of (.+?) council$")

_SUPPLIER_FORMS = {"ltd", "limited", "plc", "llp", "lp", "inc", "incorporated", "llc", "gmbh", "sa", "nv", "bv",
                   "cic", "uk ltd"}


def _basic(name: str | None) -> str:
    """Lower case, "&" as "and", punctuation gone (so "Ltd." is "ltd" and "St. Helens" "st helens")."""
    if not name:
        return ""
    t = name.lower().replace("&", " and ")
    # Dots and apostrophes join their letters (N.H.S. -> nhs, King's -> kings); other punctuation separates.
    t = re.sub(r"(?<=\w)[.'\u2019](?=\w)", "", t)
    t = _PUNCT.sub(" ", t)
    return _SPACES.sub(" ", t).strip()


def normalise_body(name: str | None) -> str:
    """A public body's name as a comparison key ("" when there is none)."""
    t = _basic(name)
    if not t:
        return ""
    t = re.sub(r"^the ", "", t)
    t = " ".join(_BODY_ABBREVIATIONS.get(w, w) for w in t.split())
    for pattern, repl in _BODY_PHRASES:
        t = pattern.sub(repl, t)
    if m := _BOROUGH_OF.match(t):
        t = f"{m.group(2)} {m.group(1)} borough council"
    elif m := _LB.match(t):
        t = f"{m.group(1)} london borough council"
    elif m := _CITY_OF.match(t):
        t = f"{m.group(1)} city council"
    return _SPACES.sub(" ", t).strip()[:KEY_MAX]


def normalise_supplier(name: str | None) -> str:
    """A supplier's name as a comparison key: legal forms (Ltd, Limited, plc, LLP…) dropped."""
    t = _basic(name)
    words = re.sub(r"^the ", "", t).split()
    while len(words) > 1 and words[-1] in _SUPPLIER_FORMS:
        words.pop()
    if len(words) == 1 and words[0] in _SUPPLIER_FORMS:
        return ""
    return " ".join(words)[:KEY_MAX]


def keys(public_body: str | None, supplier: str | None) -> dict[str, str | None]:
    """The stored columns for a record's body and supplier (NULL rather than an empty key)."""
    return {"body_key": normalise_body(public_body) or None, "supplier_key": normalise_supplier(supplier) or None}


def corroborating(session: Session, *, submission_id: int) -> list[str]:
    """References of other evidence about the same public body AND supplier, oldest first.

    Both keys must be present; withdrawn and rejected records, automatic mail and the record
    itself are left out. For the review summary and the evidence pack.
    """
    sub = session.get(Submission, submission_id)
    if sub is None or not sub.body_key or not sub.supplier_key:
        return []
    stmt = (
        select(Submission.reference)
        .where(
            Submission.body_key == sub.body_key,
            Submission.supplier_key == sub.supplier_key,
            col(Submission.id) != submission_id,
            Submission.kind == "evidence",
            col(Submission.status).not_in(NOT_EVIDENCE),
            col(Submission.reference).is_not(None),
        )
        .order_by(col(Submission.ref_no), col(Submission.id))
    )
    return [r for r in session.exec(stmt).all() if r]
