"""Slack mrkdwn safety: escaping user text and cutting it to Slack's limits without breaking it.

Pure text functions (no Slack SDK): every door that shows user text in Slack passes it through here.
"""

from __future__ import annotations


def escape(text: str | None) -> str:
    """Escapes &, < and > (Slack's only control characters), so `<!channel>`, `<@U1>` or
    `<https://evil|bank>` in a submission shows as typed and pings or links nothing."""
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int, marker: str = "…") -> str:
    """At most `limit` characters, cut at a word boundary, never inside an escape like `&amp;`."""
    if len(text) <= limit:
        return text
    room = limit - len(marker)
    head = text[:room]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]  # don't leave half an entity such as "&am"
    space = head.rfind(" ")
    if space > room * 0.6:
        head = head[:space]
    return head.rstrip() + marker


def safe(text: str | None, limit: int) -> str:
    """Escaped, then cut: the limit applies to what Slack counts, the escaped text."""
    return cut(escape(text), limit)


def split(text: str, limit: int) -> list[str]:
    """Escaped text in pieces of at most `limit` characters, broken at a paragraph, a line or a
    word where one is near, never inside an escape like `&amp;`: a long text shown in full."""
    rest = escape(text).strip()
    pieces: list[str] = []
    while len(rest) > limit:
        head = rest[:limit]
        cut_at = -1
        for sep in ("\n\n", "\n", " "):
            i = head.rfind(sep)
            if i > limit * 0.5:
                cut_at = i
                break
        if cut_at == -1:
            cut_at = limit
            amp = head.rfind("&")
            if amp != -1 and ";" not in head[amp:]:
                cut_at = amp
        pieces.append(rest[:cut_at].rstrip())
        rest = rest[cut_at:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces
