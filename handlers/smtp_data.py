"""aiosmtpd's DATA command with the message read into one buffer (issue 11: memory).

aiosmtpd 1.4's `SMTP.smtp_DATA` keeps every line of the message as a bytearray of its own in a
list, then joins them: for a 20 MB message of 78-byte lines that is about 2x the message in line
objects (each carries some 60 bytes of object header and allocator rounding) plus 1x for the
join, alive at once. `OneBufferDATA.smtp_DATA` writes each line, dot-unstuffed, to one io.BytesIO
instead, and hands the handler its getvalue(): about 1x in all. BytesIO grows a bytes object of
its own and getvalue() returns that very object (trimmed to size in place) while nothing else
refers to its buffer, so the handler gets bytes, as from aiosmtpd, without a copy; a bytearray
would have cost one (bytes(bytearray) copies), or handing the bytearray on.

Everything else is aiosmtpd's, line for line, so the replies and what is stored are the same
(tests/test_smtp_data.py runs both on the same inputs and compares): 354 first; a line that is
exactly ".\r\n" ends the data; lines end at CRLF only (a bare LF is data); a leading dot is
removed from every line; past `data_size_limit` bytes (counted before unstuffing, line endings
included) the rest is read and dropped and the answer is 552; a line longer than
`line_length_limit` (the StreamReader's limit, with its LimitOverrunError handled the same way)
makes the answer 500, whichever of the two came first; a connection lost mid-DATA closes the
writer and cancels the session; then the handler's `handle_DATA` (or the deprecated
`process_message`) and the post-DATA state.

Two differences, invisible to a client: aiosmtpd logs every line of the message at DEBUG, which
would put evidence in the log and costs a call per line, and this does not; and if the read loop
ends because the transport is gone, aiosmtpd hands what came so far to the handler as a whole
message, and this hands nothing on.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any
from warnings import warn

from aiosmtpd.smtp import MISSING, SMTP, syntax

# aiosmtpd's own logger, so "Connection lost during DATA" goes where it always went.
log = logging.getLogger("mail.log")

_NOMINAL, _TOO_LONG, _TOO_MUCH = 0, 1, 2

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def fix_mmap_threshold(size: int = 1 << 20) -> bool:
    """Has glibc serve every allocation of `size` bytes or more with a mapping of its own, given
    back to the system when freed. False where there is no glibc mallopt (musl, macOS): nothing
    changes.

    Why: glibc does that from 128 KiB at start, but each time such a block is freed it raises the
    threshold to the block's size (up to 32 MiB). After the first 20 MB message, then, the next
    one's buffer and SQLite's copies of it come from the heap, where freed memory mostly stays
    with the process and its peaks add up: smtp_bench's door measured 3.1x a 20 MB message for
    the first one and 5.1x over three in a row; with the threshold fixed, 3.2x over three. Setting
    it (as MALLOC_MMAP_THRESHOLD_ does) also stops the raising. At 1 MiB the socket reads' 256 KiB
    buffers stay on the heap, so small messages cost no extra system calls.
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, size))


class OneBufferDATA(SMTP):
    """aiosmtpd's SMTP with a DATA command that holds the message once while reading it."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return

        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = io.BytesIO()
        reader = self._reader
        num_bytes = 0
        limit = self.data_size_limit
        line_limit = self.line_length_limit
        # A line arrives in pieces only after a LimitOverrunError, which makes the state TOO_LONG
        # (unless it is TOO_MUCH already): a NOMINAL line is always one readuntil() result, so only
        # whether a line is unfinished needs remembering, not its pieces.
        in_line = False
        state = _NOMINAL
        while self.transport is not None:  # as aiosmtpd: connection_lost cancels this task first
            try:
                line: bytes = await reader.readuntil(b"\r\n")
            except asyncio.CancelledError:
                log.info("Connection lost during DATA")
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as e:
                # The line is longer than the StreamReader's limit. The 500 waits until the data
                # is all read (RFC 5321 s.4.2.5, as aiosmtpd reads it); what was kept is dropped.
                if state == _NOMINAL:
                    state = _TOO_LONG
                data = io.BytesIO()
                line = await reader.read(e.consumed)
            if not in_line and line == b".\r\n":
                break
            num_bytes += len(line)
            if state == _NOMINAL and limit and num_bytes > limit:
                state = _TOO_MUCH
                data = io.BytesIO()  # the rest is read and dropped: the 552 waits for the end
            in_line = not line.endswith(b"\r\n")
            if not in_line and state == _NOMINAL:
                if len(line) > line_limit:  # aiosmtpd's defensive check (readuntil's limit is 2 more)
                    state = _TOO_LONG
                    data = io.BytesIO()
                elif line[:1] == b".":
                    data.write(memoryview(line)[1:])  # RFC 5321 s.4.5.2: the sender doubled a leading dot
                else:
                    data.write(line)
        else:
            # The loop ended without the terminator because the transport is gone. aiosmtpd then
            # hands what came so far to the handler as the whole message (or fails an assert
            # mid-line); a truncated message must not be stored as if it were whole. (Not seen
            # in practice: connection_lost cancels this task while it waits for data.)
            log.info("Connection lost during DATA")
            self._set_post_data_state()
            return

        if state != _NOMINAL:
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)" if state == _TOO_LONG
                            else "552 Error: Too much mail data")
            self._set_post_data_state()
            return

        # The buffer's own bytes object, not a copy; the BytesIO must go at once, so that nothing
        # writes to it again (a write would copy the whole buffer first).
        original_content = data.getvalue()
        del data
        content: str | bytes
        if self._decode_data:
            if self.enable_SMTPUTF8:
                content = original_content.decode("utf-8", errors="surrogateescape")
            else:
                try:
                    content = original_content.decode("ascii", errors="strict")
                except UnicodeDecodeError:
                    # The server asked for ASCII and the client sent something else anyway.
                    await self.push("500 Error: strict ASCII mode")
                    return
        else:
            content = original_content
        self.envelope.content = content
        self.envelope.original_content = original_content

        if "DATA" in self._handle_hooks:
            status = await self._call_handler_hook("DATA")
        else:
            status = await self._process_message()
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _process_message(self) -> Any:
        """aiosmtpd's backward compatibility for handlers with `process_message` only."""
        status: Any = MISSING
        if hasattr(self.event_handler, "process_message"):
            warn("Use handler.handle_DATA() instead of .process_message()", DeprecationWarning, stacklevel=2)
            assert self.session is not None and self.envelope is not None
            args = (self.session.peer, self.envelope.mail_from, self.envelope.rcpt_tos, self.envelope.content)
            if asyncio.iscoroutinefunction(self.event_handler.process_message):
                status = await self.event_handler.process_message(*args)
            else:
                status = self.event_handler.process_message(*args)
            if status is None:
                status = MISSING
        return status
