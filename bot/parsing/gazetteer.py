"""Finds UK public bodies named in text by looking them up in a shipped list of official names.

The list is `data/public_bodies.tsv` (councils, NHS trusts and boards, police and fire services,
departments, agencies, devolved bodies; its sources, licences and date are in `data/README.md`,
and `scripts/build_gazetteer.py` rebuilds it). Nothing is fetched at run time.

Matching walks a trie of word tokens, built once: at each word of the text it follows the trie
as far as the words agree and keeps the longest name that ends there. The work is bounded by the
text length times the longest name (a dozen words), so it is linear in the text, however many
names the list holds; one big regex of a thousand alternatives would try each in turn.

What counts as the same name:

* case is ignored, except that a capitalised word of the name must be capitalised in the text
  ("home office" in "I work from my home office" is not the Home Office), and initials
  ("DWP", "MoJ") must be written exactly so;
* "&" and "and" are the same word, as are curly and straight apostrophes; a possessive ("Kent
  County Council's") is the name; hyphens and commas separate words ("Stoke on Trent").

An official name is returned as the text wrote it; a short form ("Kent CC", "LB Barnet", "NHS
Lothian Health Board") is returned as the official name, except initials, which stay as written
and are flagged so that a full name elsewhere in the text is preferred.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bot.parsing.scan import upper_positions

DATA = Path(__file__).with_name("data") / "public_bodies.tsv"
# Prose inference reads at most this much: evidence is in the first pages, and a bound keeps
# a pasted megabyte cheap.
MAX_CHARS = 20_000

_WORD = re.compile(r"[\w]+(?:['’][\w]+)*['’]?|&")
_INITIALS = re.compile(r"[A-Z][A-Za-z]{0,2}[A-Z][A-Za-z]{0,3}\d?")
_JOINERS = frozenset({"and", "of", "the", "upon", "on", "for", "in", "under", "a", "y", "yr", "nan", "with"})


@dataclass(frozen=True)
class Entry:
    """What a path through the trie names: the official name and how it must be written."""

    name: str
    capitals: tuple[bool, ...]  # per word: must it start with a capital in the text?
    exact: str | None  # initials: the one spelling accepted
    is_short_form: bool


@dataclass(frozen=True)
class Hit:
    """One name found: its place in the text, the text as written, and the official name."""

    start: int
    end: int
    text: str
    name: str
    initials: bool


def _key(word: str) -> str:
    word = word.replace("’", "'").casefold()
    if word == "&":
        return "and"
    if word.endswith("'s"):
        word = word[:-2]
    return word.rstrip("'")


def _capitals(words: list[str]) -> tuple[bool, ...]:
    return tuple(w[:1].isupper() and w.casefold() not in _JOINERS for w in words)


class Gazetteer:
    """A token trie of names; `find` is linear in the text."""

    def __init__(self, rows: list[tuple[str, list[str]]]) -> None:
        self._root: dict[str, object] = {}
        self._free: set[str] = set()  # first words (keys) of names that may start in lower case
        self.size = 0
        for name, short_forms in rows:
            self.size += 1
            self._add(name, name, short=False)
            for short in short_forms:
                self._add(short, name, short=True)
        free = sorted(self._free)
        # Whether every name whose first word may be lower case ("the") goes on with a capital:
        # then _starts looks only at such words followed by one.
        self._free_then_capital = all(
            len(e.capitals) > 1 and e.capitals[1]
            for w in free for entries in _entries_below(self._root[w], depth=1)  # type: ignore[arg-type]
            for e in entries if e.exact is None and not e.capitals[0]
        )
        self._free_first = (re.compile(r"(?i)\b(?:" + "|".join(re.escape(w) for w in free) + r")\b")
                            if free else None)

    def _add(self, phrase: str, name: str, *, short: bool) -> None:
        words = _WORD.findall(phrase)
        if not words:
            return
        exact = phrase if short and len(words) == 1 and _INITIALS.fullmatch(phrase) else None
        capitals = _capitals(words)
        if exact is None and not capitals[0]:
            self._free.add(_key(words[0]))
        node = self._root
        for w in words:
            node = node.setdefault(_key(w), {})  # type: ignore[assignment]
        entries = node.setdefault("", [])
        assert isinstance(entries, list)
        entries.append(Entry(name, capitals, exact, short))

    def _starts(self, text: str) -> list[int]:
        """Where a name can start: a capital (a name's first word is capitalised, or initials),
        or one of the few lower-case first words allowed ("the"); a superset, checked below."""
        caps = upper_positions(text)
        if self._free_first is None:
            return caps
        low = text.lower()
        if len(low) != len(text):
            return sorted(set(caps).union(m.start() for m in self._free_first.finditer(text)))
        free = []
        for w in self._free:  # a substring search is much cheaper than a case-blind regex
            i = low.find(w)
            while i >= 0:
                # Every name starting with such a word has a capitalised second word (checked when
                # the trie is built): the next word of the text must start with a capital.
                e = i + len(w)
                after = text[e : e + 1]
                if not self._free_then_capital:
                    free.append(i)
                elif after and (after.isalnum() or after == "_"):
                    pass  # inside a longer word ("there", "theatre"): no name starts here
                else:
                    k = bisect_left(caps, e)
                    if k < len(caps) and not any(ch.isalnum() or ch == "_" for ch in text[e : caps[k]]):
                        free.append(i)
                i = low.find(w, i + 1)
        return sorted(set(caps).union(free)) if free else caps

    def find(self, text: str) -> list[Hit]:
        """Every listed name in `text` (first MAX_CHARS), leftmost-longest, without overlaps.

        The trie is walked from the words that can start a name only (see _starts), word by word
        as `_WORD` splits the text; a word elsewhere could not start one, so the result is what a
        walk from every word gives."""
        text = text[:MAX_CHARS]
        hits: list[Hit] = []
        done = 0  # the end of the last name found: the next starts after it
        for p in self._starts(text):
            if p < done or not _token_start(text, p):
                continue
            m = _WORD.match(text, p)
            if m is None:
                continue
            words: list[re.Match[str]] = []
            best: tuple[int, Entry] | None = None
            node: object = self._root
            while m is not None and isinstance(node, dict):
                w = m.group(0)
                key = w.lower() if w.isascii() and w.isalpha() else _key(w)  # the common case, quickly
                if key not in node:
                    break
                node = node[key]
                words.append(m)
                for entry in node.get("", ()) if isinstance(node, dict) else ():
                    if self._written_so(entry, words):
                        best = (len(words), entry)
                        break
                m = _WORD.search(text, m.end())
            if best is None:
                continue
            j, entry = best
            done = words[j - 1].end()
            start, end = words[0].start(), words[j - 1].end()
            as_written = re.sub(r"['’]s?$", "", text[start:end]) if not entry.exact else text[start:end]
            end = start + len(as_written)
            initials = entry.exact is not None
            name = as_written if (initials or not entry.is_short_form) else entry.name
            hits.append(Hit(start, end, as_written, name, initials))
        return hits

    @staticmethod
    def _written_so(entry: Entry, words: list[re.Match[str]]) -> bool:
        if entry.exact is not None:
            return words[0].group(0) == entry.exact
        return all(w.group(0)[:1].isupper() or not cap for w, cap in zip(words, entry.capitals, strict=True))


def _entries_below(node: dict[str, object], depth: int) -> list[list[Entry]]:
    """The entry lists of the trie at `depth` words and below (depth 1: `node` itself)."""
    found: list[list[Entry]] = []
    for key, child in node.items():
        if key == "":
            assert isinstance(child, list)
            found.append(child)
        elif isinstance(child, dict):
            found.extend(_entries_below(child, depth + 1))
    return found


def _token_start(text: str, p: int) -> bool:
    """Whether `_WORD.finditer` starts a word at `p` (not inside one, nor after its apostrophe)."""
    if p == 0:
        return True
    before = text[p - 1]
    if before.isalnum() or before == "_":
        return False
    return not (before in "'’" and p >= 2 and (text[p - 2].isalnum() or text[p - 2] == "_"))


def read_rows(path: Path = DATA) -> list[tuple[str, list[str]]]:
    """(official name, short forms) per data line; comment and header lines skipped."""
    rows: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("name\t"):
            continue
        cols = line.split("\t")
        shorts = [s for s in cols[2].split(";") if s] if len(cols) > 2 else []
        rows.append((cols[0], shorts))
    return rows


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The shipped list, read and built once per process."""
    return Gazetteer(read_rows())


def find_listed_bodies(text: str) -> list[Hit]:
    """Public bodies from the shipped list named in `text`."""
    return gazetteer().find(text)
