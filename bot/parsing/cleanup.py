"""Strips what is not evidence from a message body: quoted replies, signatures, disclaimers.

A forwarded message is the opposite case: someone passes on what they received, so the
forwarded text IS the evidence. Only the forward's header block is replaced by one line
naming the original sender and subject; the forwarded content is kept.

Everything here works line by line (no regex spans across the whole text), so a very large
body costs linear time.
"""

from __future__ import annotations

import re

from bot.parsing.text import join_paragraphs

_FORWARD_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*Forwarded message\s*-{2,}|Begin forwarded message\s*:|-{2,}\s*Original Message\s*-{2,}"
    r"|-{2,}\s*Weitergeleitete Nachricht\s*-{2,})\s*$",
    re.IGNORECASE,
)
_ORIGINAL_MESSAGE = re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_HEADER_LINE = re.compile(
    r"^\s*\*?(From|Sent|Date|To|Cc|Bcc|Subject|Reply-To|Importance|Attachments)\*?\s*:\*?\s*(.*)$",
    re.IGNORECASE,
)
_ON_WROTE_START = re.compile(r"^\s*On\s.{0,300}$")
_WROTE_END = re.compile(r"wrote\s*:\s*$", re.IGNORECASE)
_QUOTED = re.compile(r"^\s*>")
_SIG_DELIM = re.compile(r"^--\s?$")
_SENT_FROM = re.compile(
    r"^\s*(Sent from my \w[\w ]{0,40}|Sent from (Outlook|Mail|Yahoo Mail|Samsung|Gmail)\b.{0,60}"
    r"|Get Outlook for (iOS|Android)\b.{0,30}|Sent via .{0,40}mobile.{0,20})\s*$",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^\s*(?i:kind(?:est)?\s+regards|best\s+regards|warm(?:est)?\s+regards|regards|best\s+wishes|many\s+thanks"
    r"|thanks(?:\s+again|\s+so\s+much|\s+very\s+much|\s+in\s+advance)?|thank\s+you(?:\s+again|\s+so\s+much)?"
    r"|cheers|yours\s+sincerely|yours\s+faithfully|yours\s+truly|yours|all\s+the\s+best|best|with\s+thanks"
    r"|with\s+best\s+wishes|sincerely|take\s+care|respectfully|speak\s+soon|many\s+thanks\s+in\s+advance)"
    # The name may follow on the same line: "Thanks, Jane", "Kind regards – Tom Hughes".
    r"(?:\s*[,.!]?\s*(?:[-–—]\s*)?[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,3})?\s*[,.!]?\s*$"
)
# "Thank you for your time." / "Thanks for considering this": a closing courtesy, not evidence.
_THANKS_LINE = re.compile(r"^\s*(?:many\s+)?(?:thanks|thank\s+you)\s+(?:for|in)\b.{0,60}[.!]?\s*$", re.IGNORECASE)
# A greeting opening the mail: "Dear reviewers,", "Hi all", "To whom it may concern:".
_GREETING = re.compile(
    r"^\s*(?:(?i:dear|hi|hello|hey|hiya|greetings|morning|good\s+(?:morning|afternoon|evening|day))\b"
    r"(?:\s+[\w.'’/&-]+){0,5}?\s*(?P<end>[,!:;—–-]|$)"
    r"|(?i:to\s+whom\s+it\s+may\s+concern)\s*(?P<end2>[,:.!]|$))"
)
_DISCLAIMER = re.compile(
    r"this (e-?mail|message|communication)(,)? (and|including) any (files|attachments)"
    r"|this (e-?mail|message) (is|may be) (strictly )?(confidential|private|intended)"
    r"|the information (contained )?in this (e-?mail|message|communication)"
    r"|if you (have )?received this (e-?mail|message|communication) in error"
    r"|if you are not the intended recipient"
    r"|views (or opinions )?(expressed|presented) (in this (e-?mail|message) )?are (solely )?those of the"
    r"|please consider the environment|think before you print|do not print this e-?mail"
    r"|this e-?mail has been (scanned|checked)|all (e-?mail|messages?) (sent to|to and from) .{0,40}"
    r"(monitored|recorded)",
    re.IGNORECASE,
)
# Evidence template keys: a trailing block containing one of these is not a signature.
_EVIDENCE_KEY = re.compile(
    r"^\W*(project|public body|supplier|contractor|service area|outcome|contract value|value|savings|period"
    r"|confidential|interests|declared interests)\W*\s*[:\-–]",
    re.IGNORECASE,
)


def clean_body(text: str, *, forwarded: bool = False) -> str:
    """The evidence part of a body.

    `forwarded` says the message is a forward (subject Fwd:/FW:), which makes an Outlook
    "-----Original Message-----" or "From:/Sent:" block the start of the forwarded content
    rather than of a quoted reply.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out = _clean_lines(lines, forwarded=forwarded, depth=0)
    return _tidy(out)


def _clean_lines(lines: list[str], *, forwarded: bool, depth: int) -> list[str]:
    fwd = _find_forward(lines, forwarded=forwarded)
    if fwd is not None and depth < 10:
        start, header_end, orig_from, orig_subject = fwd
        note = _clean_reply(lines[:start])
        rest = _clean_lines(lines[header_end:], forwarded=True, depth=depth + 1)
        rest = _drop_disclaimers(rest)
        out = list(note)
        if out:
            out.append("")
        out.append(_heading("Forwarded message", orig_from, orig_subject))
        out.extend(rest)
        return out
    if depth > 0:
        # Inside a forward everything is evidence, quoted history included; only noise goes.
        return _drop_signature_noise(_drop_disclaimers(lines), sign_off=False)
    return _clean_reply(lines)


def _heading(what: str, sender: str | None, subject: str | None) -> str:
    """The one line that stands for a header block: 'Forwarded message from X, subject "Y":'."""
    return what + (f" from {sender}" if sender else "") + (f', subject "{subject}"' if subject else "") + ":"


def _find_forward(lines: list[str], *, forwarded: bool) -> tuple[int, int, str | None, str | None] | None:
    """(marker line, first content line, original From, original Subject) of the first forward."""
    for i, line in enumerate(lines):
        if _QUOTED.match(line):
            continue
        is_marker = bool(_FORWARD_MARKER.match(line))
        if is_marker and _ORIGINAL_MESSAGE.match(line) and not forwarded:
            continue  # Outlook's marker of a quoted reply, not a forward
        header_start = i + 1 if is_marker else i
        if not is_marker:
            if not forwarded:
                continue
            # Outlook forwards: an underscore rule, or a bare From:/Sent: block.
            if _UNDERSCORES.match(line):
                header_start = i + 1
            elif not _is_outlook_header_block(lines, i):
                continue
        end, hdrs = _consume_headers(lines, header_start)
        if not hdrs and not is_marker:
            continue
        return i, end, hdrs.get("from"), hdrs.get("subject")
    return None


def _is_outlook_header_block(lines: list[str], i: int) -> bool:
    m = _HEADER_LINE.match(lines[i])
    if not m or m.group(1).lower() != "from":
        return False
    keys = set()
    for line in lines[i + 1:i + 8]:
        hm = _HEADER_LINE.match(line)
        if hm:
            keys.add(hm.group(1).lower())
    return bool(keys & {"sent", "date"}) and bool(keys & {"subject", "to"})


def _consume_headers(lines: list[str], start: int) -> tuple[int, dict[str, str]]:
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    hdrs: dict[str, str] = {}
    last: str | None = None
    while i < len(lines):
        line = lines[i]
        m = _HEADER_LINE.match(line)
        if m:
            last = m.group(1).lower()
            hdrs.setdefault(last, m.group(2).strip())
        elif not line.strip():
            break
        elif last in ("to", "cc", "bcc") and not _EVIDENCE_KEY.match(line):
            pass  # a wrapped recipient list
        else:
            break
        i += 1
    if not hdrs:
        return start, hdrs
    return i, hdrs


def _clean_reply(lines: list[str]) -> list[str]:
    """The new text of a reply: quoted history, disclaimers and signature removed; the history
    is kept when the new text only points at it ("see below")."""
    cut = _find_quote_start(lines)
    history: list[str] = []
    if cut is not None:
        start, attribution_end = cut
        before = lines[:start]
        # Top-posted: everything from the attribution down is history.  Bottom-posted (nothing
        # new above): the history is "> "-quoted and goes below; an unquoted block is kept, as it
        # may be all the evidence there is.
        if any(line.strip() for line in before):
            if _points_below(before):
                history = _history(lines[start:])
            lines = before
        else:
            lines = lines[attribution_end:]
    lines = [line for line in lines if not _QUOTED.match(line)]
    lines = _drop_disclaimers(lines)
    out = _drop_greeting(_drop_signature_noise(lines, sign_off=True))
    return [*out, "", *history] if history else out


# "Yes, see below: this is what I sent my MP." A short new text that points down at the history
# makes the history the evidence (dropped as mere history, the record would hold only the pointer).
_POINTS_BELOW = re.compile(
    r"\bbelow\b|\bsee\s+(?:the\s+|my\s+)?(?:thread|trail|chain|history|earlier\s+(?:e-?mail|message))\b",
    re.IGNORECASE,
)
_POINTER_MAX_CHARS = 400
_UNQUOTE = re.compile(r"^\s*(?:>\s?)+")


def _points_below(before: list[str]) -> bool:
    text = " ".join(line.strip() for line in before if line.strip())
    return len(text) <= _POINTER_MAX_CHARS and _POINTS_BELOW.search(text) is not None


def _history(lines: list[str]) -> list[str]:
    """The quoted history as evidence: unquoted, its attribution or header block made one line
    (as a forward's is), disclaimers and signature noise dropped."""
    lines = [_UNQUOTE.sub("", line) for line in lines]
    if _ON_WROTE_START.match(lines[0]):
        heading_end = 1 if _WROTE_END.search(lines[0]) else 2
        heading = " ".join(line.strip() for line in lines[:heading_end])
    else:
        first = 1 if _ORIGINAL_MESSAGE.match(lines[0]) or _UNDERSCORES.match(lines[0]) else 0
        heading_end, hdrs = _consume_headers(lines, first)
        heading = _heading("Earlier message", hdrs.get("from"), hdrs.get("subject"))
    rest = _drop_signature_noise(_drop_disclaimers(lines[heading_end:]), sign_off=False)
    return [heading, *rest] if any(line.strip() for line in rest) else []


def _drop_greeting(lines: list[str]) -> list[str]:
    """Removes "Dear reviewers," (a line of its own, or the start of the first line) from the top.

    A greeting that is all the text there is stays, rather than leave nothing.
    """
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    if len(nonblank) < 1:
        return lines
    first = nonblank[0]
    m = _GREETING.match(lines[first])
    if not m:
        return lines
    rest = lines[first][m.end():].strip()
    if not rest:
        return lines if len(nonblank) == 1 else lines[first + 1:]
    if m.group("end") == "," or m.group("end2") == ",":
        # "Hi all, the council let the contract in 2019..." keeps what follows the greeting.
        return [*lines[:first], rest[:1].upper() + rest[1:], *lines[first + 1:]]
    return lines


def _find_quote_start(lines: list[str]) -> tuple[int, int] | None:
    """(first line of the quoted history, first line after its attribution/header) or None."""
    for i, line in enumerate(lines):
        if _ON_WROTE_START.match(line):
            if _WROTE_END.search(line):
                return i, i + 1
            # Gmail wraps a long attribution over two lines.
            if i + 1 < len(lines) and _WROTE_END.search(lines[i + 1]) and len(lines[i + 1]) < 200:
                return i, i + 2
        if _ORIGINAL_MESSAGE.match(line):
            return i, i + 1
        if _UNDERSCORES.match(line) and i + 1 < len(lines) and _is_outlook_header_block(lines, i + 1):
            return i, i + 1
        if _is_outlook_header_block(lines, i):
            return i, i + 1
    return None


# Every disclaimer phrase above holds one of these (in lower case): a paragraph with none is
# not searched at all, which is most of them.
_DISCLAIMER_WORDS = ("this e", "this m", "this c", "the information", "if you", "views", "please consider",
                     "print", "monitored", "recorded")


def _is_disclaimer(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in _DISCLAIMER_WORDS) and _DISCLAIMER.search(text) is not None


def _drop_disclaimers(lines: list[str]) -> list[str]:
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        text = " ".join(line.strip() for line in para)
        if not (len(text) < 3000 and _is_disclaimer(text)):
            out.extend(para)
        para.clear()

    for line in lines:
        if line.strip():
            para.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return out


def _drop_signature_noise(lines: list[str], *, sign_off: bool) -> list[str]:
    lines = [line for line in lines if not _SENT_FROM.match(line)]
    # "-- " delimiter: the rest is a signature, if it is signature-sized.
    for i, line in enumerate(lines):
        if _SIG_DELIM.match(line):
            rest = [x for x in lines[i + 1:] if x.strip()]
            if len(rest) <= 12 and not any(_EVIDENCE_KEY.match(x) for x in rest):
                lines = lines[:i]
                break
    if sign_off:
        lines = _drop_sign_off(lines)
    return lines


def _drop_sign_off(lines: list[str]) -> list[str]:
    """Removes "Kind regards,\\nName\\nJob title..." at the very end, when nothing evidential follows."""
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    for i in reversed(nonblank[-10:]):
        if not (_SIGN_OFF.match(lines[i]) or (len(lines[i]) <= 80 and _THANKS_LINE.match(lines[i]))):
            continue
        if i == nonblank[0]:
            return lines  # the sign-off is all there is: keep it rather than return nothing
        tail = [x for x in lines[i + 1:] if x.strip()]
        if len(tail) <= 8 and all(len(x.strip()) <= 100 for x in tail) and not any(
            _EVIDENCE_KEY.match(x) for x in tail
        ):
            return _drop_courtesies(lines[:i])
        return lines
    return lines


def _drop_courtesies(lines: list[str]) -> list[str]:
    """After a sign-off is cut, the "Thank you for your time." just above it goes too."""
    while True:
        nonblank = [i for i, line in enumerate(lines) if line.strip()]
        if len(nonblank) < 2:
            return lines
        last = lines[nonblank[-1]]
        if not ((len(last) <= 80 and _THANKS_LINE.match(last)) or _SIGN_OFF.match(last)):
            return lines
        lines = lines[: nonblank[-1]]


def _tidy(lines: list[str]) -> str:
    return join_paragraphs(line.rstrip() for line in lines).strip()
