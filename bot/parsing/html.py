"""Turns the HTML part of a message into readable plain text with the stdlib parser only.

html2text is GPL, so this is a small converter of our own: block elements become line breaks,
lists become "- " items, key/value table rows become "Key: value" lines (so a template pasted
into a table still reaches the field extractor), links keep their URL when it adds something.
Anything a reader would not see (script, style, head, hidden elements, tracking pixels) is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from bot.parsing.text import join_paragraphs

# Elements whose content is never shown to a reader.
_SKIP = frozenset({"script", "style", "head", "title", "noscript", "template", "svg", "object", "iframe"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
     "wbr", "keygen"}
)
# Paragraph-like blocks get a blank line around them; other blocks a single line break.
_PARA = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl",
                   "figure", "address", "fieldset", "form"})
_BLOCK = _PARA | frozenset({"div", "li", "tr", "section", "article", "header", "footer", "main", "nav",
                            "aside", "dt", "dd", "center", "figcaption", "hr", "tbody", "thead", "tfoot",
                            "caption", "body", "html"})
# A <p> cannot contain these, so opening one closes an open <p> (as browsers do).
_CLOSES_P = _BLOCK | frozenset({"td", "th"})
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all", re.IGNORECASE
)
_WS = re.compile(r"[ \t\r\n\f]+")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_ZERO_WIDTH = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
# Block boundaries are written as markers and resolved at the end, so that nested blocks
# (</li></ul></div>) give one break rather than a pile of blank lines: a run of markers is a
# paragraph break if any of them asks for one, else a line break.  <br> stays a real "\n".
_LINE = "\x00"
_PARA_BREAK = "\x01"
_MARKER_RUN = re.compile(r"[ \x00\x01]*[\x00\x01][ \x00\x01]*")
_NO_URL_SCHEMES = ("javascript:", "cid:", "data:", "vbscript:")
_CONTROL = re.compile(r"[\x00\x01]")


@dataclass
class _Table:
    rows: list[list[tuple[str, bool]]] = field(default_factory=list)


@dataclass
class _Link:
    sink: list[str]
    start: int
    href: str


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.sinks: list[list[str]] = [self.out]
        self.stack: list[str] = []  # open non-void elements, innermost last
        self.soft: list[bool] = []  # parallel to stack: an Outlook MsoNormal <p>, which is one line
        self.skip_level: int | None = None  # stack depth at which a hidden/skipped element was opened
        self.tables: list[_Table] = []
        self.links: list[_Link | None] = []
        self.list_depth = 0
        self.pre_depth = 0

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def skipping(self) -> bool:
        return self.skip_level is not None

    def _emit(self, text: str) -> None:
        self.sinks[-1].append(text)

    def _pop_to(self, index: int) -> None:
        """Closes every open element from `index` upwards (explicit end tag or implied close)."""
        while len(self.stack) > index:
            tag = self.stack.pop()
            soft = self.soft.pop()
            self._on_close(tag, soft)
            if self.skip_level is not None and len(self.stack) < self.skip_level:
                self.skip_level = None

    def _find_open(self, tag: str, stop_at: frozenset[str] = frozenset()) -> int | None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] == tag:
                return i
            if self.stack[i] in stop_at:
                return None
        return None

    def _implied_closes(self, tag: str) -> None:
        if self.stack and self.stack[-1] == "p" and tag in _CLOSES_P:
            self._pop_to(len(self.stack) - 1)
        if tag == "li":
            i = self._find_open("li", frozenset({"ul", "ol"}))
            if i is not None:
                self._pop_to(i)
        elif tag in ("td", "th"):
            for t in ("td", "th"):
                i = self._find_open(t, frozenset({"tr", "table"}))
                if i is not None:
                    self._pop_to(i)
        elif tag == "tr":
            i = self._find_open("tr", frozenset({"table"}))
            if i is not None:
                self._pop_to(i)
        elif tag in ("dt", "dd"):
            for t in ("dt", "dd"):
                i = self._find_open(t, frozenset({"dl"}))
                if i is not None:
                    self._pop_to(i)
        elif tag == "body":
            i = self._find_open("head")
            if i is not None:
                self._pop_to(i)

    # -- parser callbacks --------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, selfclosing=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, selfclosing=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, selfclosing: bool) -> None:
        if not self.skipping:
            self._implied_closes(tag)
        void = tag in _VOID or selfclosing
        if self.skipping:
            if not void:
                self.stack.append(tag)
                self.soft.append(False)
            return
        a = {k.lower(): (v or "") for k, v in attrs}
        hidden = (
            tag in _SKIP
            or "hidden" in a
            or bool(_HIDDEN_STYLE.search(a.get("style", "")))
            or (tag == "input" and a.get("type", "").lower() == "hidden")
        )
        if void:
            # img is always dropped: tracking pixels and logos carry no evidence.
            if tag == "br" and not hidden:
                self._emit("\n")
            elif tag == "hr" and not hidden:
                self._emit(_PARA_BREAK)
            return
        # Outlook writes every line as <p class=MsoNormal> with no margin: a line, not a paragraph.
        soft = tag == "p" and "msonormal" in a.get("class", "").lower()
        self.stack.append(tag)
        self.soft.append(soft)
        if hidden:
            self.skip_level = len(self.stack)
            return
        nested_list = tag in ("ul", "ol") and self.list_depth > 0
        if tag in _PARA and not soft and not nested_list:
            self._emit(_PARA_BREAK)
        elif tag in _BLOCK or soft or nested_list:
            self._emit(_LINE)
        if tag in ("ul", "ol"):
            self.list_depth += 1
        elif tag == "li":
            self._emit("  " * max(self.list_depth - 1, 0) + "- ")
        elif tag == "pre":
            self.pre_depth += 1
        elif tag == "table":
            self.tables.append(_Table())
        elif tag == "tr":
            if self.tables:
                self.tables[-1].rows.append([])
        elif tag in ("td", "th"):
            self.sinks.append([])
        elif tag == "a":
            self.links.append(_Link(self.sinks[-1], len(self.sinks[-1]), a.get("href", "").strip()))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            if tag == "br" and not self.skipping:
                self._emit("\n")
            return
        i = self._find_open(tag)
        if i is not None:
            self._pop_to(i)
        elif tag == "p" and not self.skipping:
            self._emit(_PARA_BREAK)  # a stray </p> makes an empty paragraph in browsers

    def _on_close(self, tag: str, soft: bool = False) -> None:
        if self.skipping:
            return  # a hidden element or its descendant: nothing was emitted for it
        if tag in ("ul", "ol"):
            self.list_depth = max(self.list_depth - 1, 0)
        elif tag == "pre":
            self.pre_depth = max(self.pre_depth - 1, 0)
        elif tag == "a":
            link = self.links.pop() if self.links else None
            if link is not None:
                self._finish_link(link)
        elif tag in ("td", "th"):
            if len(self.sinks) > 1:
                cell = _normalise("".join(self.sinks.pop()))
                if self.tables and self.tables[-1].rows:
                    self.tables[-1].rows[-1].append((cell, tag == "th"))
                elif cell:
                    self._emit(_LINE + cell + _LINE)
        elif tag == "table" and self.tables:
            self._emit(_PARA_BREAK + _render_table(self.tables.pop()) + _PARA_BREAK)
        nested_list = tag in ("ul", "ol") and self.list_depth > 0
        if tag in _PARA and not soft and not nested_list:
            self._emit(_PARA_BREAK)
        elif tag in _BLOCK or soft or nested_list:
            self._emit(_LINE)

    def _finish_link(self, link: _Link) -> None:
        text = _normalise("".join(link.sink[link.start:]))
        href = link.href
        if not text or not href or href.startswith("#") or href.lower().startswith(_NO_URL_SCHEMES):
            return
        if _same_target(text, href):
            return
        link.sink.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.pre_depth:
            self._emit(_CONTROL.sub("", data))
        else:
            self._emit(_WS.sub(" ", _CONTROL.sub("", data)))

    def close_all(self) -> None:
        self.close()
        self._pop_to(0)
        self.skip_level = None
        while len(self.sinks) > 1:  # cells never closed
            self.out.append(_LINE + "".join(self.sinks.pop()) + _LINE)
        while self.tables:
            self.out.append(_PARA_BREAK + _render_table(self.tables.pop()) + _PARA_BREAK)


def _same_target(text: str, href: str) -> bool:
    def canon(s: str) -> str:
        s = s.strip().lower()
        s = re.sub(r"^(mailto:|tel:|https?://)", "", s)
        s = re.sub(r"^www\.", "", s)
        return s.rstrip("/")

    return canon(text) == canon(href)


def _render_table(table: _Table) -> str:
    lines: list[str] = []
    for row in table.rows:
        cells = [(text, is_th) for text, is_th in row if text]
        if not cells:
            continue
        if len(cells) == 1:
            lines.append(cells[0][0])
            continue
        key, value = cells[0][0], cells[-1][0]
        if len(cells) == 2 and "\n" not in key and len(key) <= 80 and not all(th for _, th in cells):
            value = " ".join(part.strip() for part in value.splitlines() if part.strip())
            lines.append(f"{key.rstrip().rstrip(':').rstrip()}: {value}")
        elif any("\n" in text for text, _ in cells):
            # Layout tables (Outlook, newsletters) hold whole paragraphs per cell: keep them as blocks.
            lines.append("\n\n".join(text for text, _ in cells))
        else:
            lines.append(" | ".join(text for text, _ in cells))
    return "\n".join(lines)


def _resolve_markers(match: re.Match[str]) -> str:
    return "\n\n" if _PARA_BREAK in match.group(0) else "\n"


def _normalise(text: str) -> str:
    text = _MARKER_RUN.sub(_resolve_markers, _ZERO_WIDTH.sub("", text))
    return join_paragraphs(_SPACES.sub(" ", line).strip() for line in text.replace("\r", "\n").split("\n"))


def html_to_text(html: str) -> str:
    """The visible text of an HTML document, with its structure kept as plain-text lines."""
    conv = _Converter()
    try:
        conv.feed(html)
        conv.close_all()
    except Exception:  # noqa: BLE001 - html.parser is lenient, but a converter must never take a message down
        pass
    return _normalise("".join(conv.out))
