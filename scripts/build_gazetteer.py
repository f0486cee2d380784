#!/usr/bin/env python3
"""Rebuilds bot/parsing/data/public_bodies.tsv from the published registers it is compiled from.

Run by hand when the registers change (councils merge, trusts are renamed), never at run time:

    python scripts/build_gazetteer.py                 # download the sources, write the TSV
    python scripts/build_gazetteer.py --from DIR      # use files already downloaded into DIR
    python scripts/build_gazetteer.py --check         # print counts, write nothing

Each source below names its URL, licence and the file name it is saved under in --from DIR. The
names are taken as published, with upper-case register names (ODS) put in title case the way
the bodies write them. Short forms are derived by rule ("Kent County Council" -> "Kent CC") and
dropped where two bodies would share one. Keep SOURCES, the TSV header and data/README.md in step.
Only the standard library is used, so the script runs anywhere Python does.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "bot" / "parsing" / "data" / "public_bodies.tsv"


@dataclass(frozen=True)
class Source:
    key: str
    url: str
    licence: str
    filename: str
    read: Callable[[bytes], Iterable[tuple[str, str]]]  # raw file -> (official name, kind)


def _csv_rows(data: bytes, *, header: bool = True) -> list[dict[str, str]] | list[list[str]]:
    text = data.decode("utf-8-sig", errors="replace")
    if header:
        return list(csv.DictReader(io.StringIO(text)))
    return list(csv.reader(io.StringIO(text)))


def _unzip_first_csv(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        name = next(n for n in zf.namelist() if n.lower().endswith(".csv"))
        return zf.read(name)


_SMALL_WORDS = {"and", "of", "the", "upon", "on", "for", "in", "with"}
_KEEP_UPPER = {"NHS", "UK", "HSC", "ICB", "CIC"}


def title_case(upper: str) -> str:
    """ODS publishes names in capitals: "GUY'S AND ST THOMAS' NHS FOUNDATION TRUST" -> "Guy's and St Thomas' NHS..."."""
    words = []
    for i, w in enumerate(upper.split()):
        low = w.lower()
        if w in _KEEP_UPPER:
            words.append(w)
        elif i and low in _SMALL_WORDS:
            words.append(low)
        else:
            words.append("-".join(p[:1].upper() + p[1:] for p in low.split("-")))
    return " ".join(words)


def read_councils(data: bytes) -> Iterable[tuple[str, str]]:
    # mySociety uk_local_authorities_current.csv: official-name, local-authority-type, end-date...
    for row in _csv_rows(data):
        assert isinstance(row, dict)
        if row.get("end-date"):
            continue
        kind = "combined_authority" if row.get("local-authority-type") in ("COMB", "CA", "SRA") else "council"
        if row.get("official-name"):
            yield row["official-name"].strip(), kind


def read_ods_trusts(data: bytes) -> Iterable[tuple[str, str]]:
    # ODS etr.csv has no header: code, name, ..., (column 12) close date.
    for row in _csv_rows(_unzip_first_csv(data), header=False):
        assert isinstance(row, list)
        if len(row) > 1 and not (len(row) > 11 and row[11].strip()):
            yield title_case(row[1].strip()), "nhs_trust"


def read_ods_icbs(data: bytes) -> Iterable[tuple[str, str]]:
    for row in _csv_rows(_unzip_first_csv(data), header=False):
        assert isinstance(row, list)
        if len(row) > 1 and "INTEGRATED CARE BOARD" in row[1].upper():
            yield title_case(row[1].strip()), "nhs_icb"


def read_ods_welsh_boards(data: bytes) -> Iterable[tuple[str, str]]:
    for row in _csv_rows(_unzip_first_csv(data), header=False):
        assert isinstance(row, list)
        if len(row) > 1:
            yield title_case(row[1].strip()), "health_board"


def read_scottish_boards(data: bytes) -> Iterable[tuple[str, str]]:
    # Public Health Scotland "Health Board 2019" labels: HB, HBName, HBDateArchived...
    for row in _csv_rows(data):
        assert isinstance(row, dict)
        if row.get("HBName") and not row.get("HBDateArchived"):
            yield row["HBName"].strip(), "health_board"


def read_police(data: bytes) -> Iterable[tuple[str, str]]:
    for force in json.loads(data.decode("utf-8")):
        yield force["name"].strip(), "police"


_GOVUK_KINDS = {
    "Ministerial department": "central_government",
    "Non-ministerial department": "central_government",
    "Executive agency": "central_government",
    "Executive non-departmental public body": "central_government",
    "Devolved government": "devolved",
    "Public corporation": "central_government",
}


def read_govuk(data: bytes) -> Iterable[tuple[str, str]]:
    # One page of https://www.gov.uk/api/organisations; `fetch` follows next_page_url.
    for org in json.loads(data.decode("utf-8")).get("results", []):
        details = org.get("details") or {}
        kind = _GOVUK_KINDS.get(org.get("format", ""))
        if kind and details.get("govuk_status") != "closed":
            yield org["title"].strip(), kind


SOURCES = [
    Source("councils", "https://pages.mysociety.org/uk_local_authority_names_and_codes/data/uk_la_past_current/"
           "latest/uk_local_authorities_current.csv", "CC BY 4.0 (built from ONS/GOV.UK registers, OGL v3.0)",
           "uk_local_authorities_current.csv", read_councils),
    Source("nhs_trusts", "https://files.digital.nhs.uk/assets/ods/current/etr.zip", "OGL v3.0", "etr.zip",
           read_ods_trusts),
    Source("nhs_icbs", "https://files.digital.nhs.uk/assets/ods/current/eccg.zip", "OGL v3.0", "eccg.zip",
           read_ods_icbs),
    Source("welsh_boards", "https://files.digital.nhs.uk/assets/ods/current/wlhb.zip", "OGL v3.0", "wlhb.zip",
           read_ods_welsh_boards),
    Source("scottish_boards", "https://www.opendata.nhs.scot/dataset/9f942fdb-e59e-44f5-b534-d6e17229cc7b/"
           "resource/652ff726-e676-4a20-abda-435b98dd7bdc/download/hb14_hb19.csv", "OGL v3.0", "hb14_hb19.csv",
           read_scottish_boards),
    Source("police", "https://data.police.uk/api/forces", "OGL v3.0", "forces.json", read_police),
    Source("govuk", "https://www.gov.uk/api/organisations", "OGL v3.0", "organisations.json", read_govuk),
]

_ABBREVIATIONS = [
    ("Metropolitan Borough Council", "MBC"), ("Metropolitan District Council", "MDC"),
    ("County Borough Council", "CBC"), ("County Council", "CC"), ("Borough Council", "BC"),
    ("City Council", "CC"), ("District Council", "DC"),
]  # fmt: skip


def short_forms(name: str) -> list[str]:
    """The short forms people write for an official name ("Kent CC", "LB Barnet")."""
    out: list[str] = []
    for full, abbr in _ABBREVIATIONS:
        if name.endswith(" " + full):
            out.append(name[: -len(full)] + abbr)
            break
    m = re.match(r"(London|Royal) Borough of (.+)$", name)
    if m:
        out.append(f"{'LB' if m.group(1) == 'London' else 'RB'} {m.group(2)}")
        if m.group(1) == "London":
            out.append(f"LB of {m.group(2)}")
    if name.startswith("The "):
        out.append(name[4:])
    return out


def build(rows: Iterable[tuple[str, str]]) -> list[tuple[str, str, list[str]]]:
    bodies: dict[str, tuple[str, list[str]]] = {}
    for name, kind in rows:
        name = " ".join(name.split())
        if name and name not in bodies:
            bodies[name] = (kind, short_forms(name))
    owners: dict[str, int] = {}
    for _, shorts in bodies.values():
        for s in shorts:
            owners[s] = owners.get(s, 0) + 1
    # A short form two bodies could claim names neither; one that is itself a full name is not short.
    return [
        (name, kind, sorted(s for s in shorts if owners[s] == 1 and s not in bodies))
        for name, (kind, shorts) in sorted(bodies.items(), key=lambda kv: kv[0].casefold())
    ]


def fetch(source: Source, folder: Path | None) -> list[bytes]:
    if folder is not None:
        return [(folder / source.filename).read_bytes()]
    pages: list[bytes] = []
    url: str | None = source.url
    while url and len(pages) < 100:
        req = urllib.request.Request(url, headers={"User-Agent": "evidence-bot gazetteer builder"})
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - fixed https URLs above
            data = resp.read()
        pages.append(data)
        url = json.loads(data).get("next_page_url") if source.key == "govuk" else None
    return pages


def render(entries: list[tuple[str, str, list[str]]]) -> str:
    lines = [
        "# UK public bodies gazetteer for bot.parsing.gazetteer. Generated file: rebuild with "
        "scripts/build_gazetteer.py.",
        f"# Built {date.today().isoformat()} from (see bot/parsing/data/README.md):",
        *[f"#   {s.key}: {s.url} ({s.licence})" for s in SOURCES],
        "# Columns: name (official name), kind, short_forms (\";\"-separated; each names only this body).",
        "name\tkind\tshort_forms",
        *["\t".join((name, kind, ";".join(shorts))) for name, kind, shorts in entries],
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="folder", type=Path, help="read the source files from this folder")
    ap.add_argument("--check", action="store_true", help="print counts only")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    rows: list[tuple[str, str]] = []
    for source in SOURCES:
        got = [r for page in fetch(source, args.folder) for r in source.read(page)]
        print(f"{source.key}: {len(got)} names", file=sys.stderr)
        rows.extend(got)
    entries = build(rows)
    print(f"{len(entries)} bodies, {sum(len(e[2]) for e in entries)} short forms", file=sys.stderr)
    if not args.check:
        args.out.write_text(render(entries), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
