"""The original bytes of a record's attachments, found again in its stored raw message.

Attachments are not stored twice: the `attachment` table keeps each one's SHA-256, and the raw
message holds the bytes. Any leaf part (nested messages included) whose decoded payload has a
wanted hash is returned, so this does not depend on the order in which the parser walked them.
"""

from __future__ import annotations

import email
import hashlib
from collections.abc import Collection
from email import policy


def attachment_bytes(raw: bytes, wanted: Collection[str]) -> dict[str, bytes]:
    """{sha256: bytes} for each wanted hash present in the message; missing ones are left out."""
    todo = set(wanted)
    found: dict[str, bytes] = {}
    if not todo:
        return found
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    for part in msg.walk():
        if part.is_multipart():
            continue
        try:
            data = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001 - a broken part cannot be one we stored a hash for
            continue
        if not isinstance(data, bytes):
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in todo:
            found[digest] = data
            todo.discard(digest)
            if not todo:
                break
    return found
