"""The IMAP door: reads an existing mailbox (Microsoft 365, Google Workspace, any IMAP server).

Every message in the configured folder is taken oldest first: its raw copy is committed through
`Service.intake` (the same group commit as the SMTP door), and only then is it moved to the done
folder (EVIDENCE_IMAP_DONE_FOLDER, created if missing). A crash between the two leaves the
message in the folder; the next pass finds it again and the dedupe key keeps it to one copy.

- `client`: the URL, the credentials (password, or an OAuth2 token command for XOAUTH2), the
  connection and the mailbox operations. Blocking (IMAPClient), so it runs in threads.
- `position`: UIDVALIDITY and the last committed UID per mailbox, in `imap_state`.
- `reader`: the async loop that drains the folder, waits (IDLE, or polling) and reconnects with
  backoff, and reports its state to /healthz.

Messages over EVIDENCE_MAX_MESSAGE_BYTES (by RFC822.SIZE, never fetched) are moved to the
folder `<done>/Too-large` (the server's separator) with a warning naming their UID and size: the
folder drains, and an operator finds them in one place, as the SMTP door would have refused them.
"""

from handlers.imap.reader import ImapDoor

__all__ = ["ImapDoor"]
