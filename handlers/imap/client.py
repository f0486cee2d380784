"""The blocking side of the IMAP door: where to connect, how to log in, what to do in the mailbox.

Everything here blocks on the network and runs in a thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import unquote, urlsplit

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

TIMEOUT = 60.0  # seconds for a connection or a command's answer (a 25 MB body arrives in pieces)
TOKEN_COMMAND_TIMEOUT = 60.0


class ImapProblem(Exception):
    """A failure to report as it is (its text is safe for /healthz and the log)."""


@dataclass(frozen=True)
class ImapTarget:
    """EVIDENCE_IMAP_URL taken apart: imaps://user@host:993/INBOX or imap://user@host:143/INBOX."""

    implicit_tls: bool
    host: str
    port: int
    user: str
    folder: str

    @classmethod
    def from_url(cls, url: str) -> ImapTarget:
        u = urlsplit(url)
        tls = u.scheme == "imaps"
        # A user that is an address may be written as is (urlsplit splits at the last "@") or as %40.
        return cls(tls, u.hostname or "", u.port or (993 if tls else 143), unquote(u.username or ""),
                   unquote(u.path.lstrip("/")) or "INBOX")

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def mailbox_key(self) -> str:
        """The imap_state row's key: one position per server, account and folder."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"[:255]


class Credentials:
    """A password, or an OAuth2 access token from a command (XOAUTH2), kept until refused."""

    def __init__(self, password: str | None, token_command: str | None) -> None:
        self._password = password
        self._command = token_command
        self._token: str | None = None
        self._lock = threading.Lock()

    def secrets(self) -> list[str]:
        """What must never appear in /healthz or the log."""
        return [s for s in (self._password, self._token) if s]

    def login(self, client: IMAPClient, user: str) -> None:
        if self._password is not None:
            client.login(user, self._password)
            return
        with self._lock:
            token = self._token or self._fetch_token()
        try:
            client.oauth2_login(user, token)
        except LoginError:
            # Access tokens last about an hour (Microsoft, Google) and the server answers an
            # expired one with an AUTHENTICATE failure: one fresh token, one more try.
            with self._lock:
                self._token = None
                token = self._fetch_token()
            client.oauth2_login(user, token)
        with self._lock:
            self._token = token

    def _fetch_token(self) -> str:
        assert self._command
        try:
            # The operator's own command line (az, gcloud, curl | jq): through the shell, so
            # pipes work. Its stderr is not repeated anywhere: it might hold a refresh token.
            proc = subprocess.run(self._command, shell=True, capture_output=True, text=True,
                                  timeout=TOKEN_COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ImapProblem(f"the OAuth2 token command did not finish in {TOKEN_COMMAND_TIMEOUT:.0f} s") from None
        if proc.returncode != 0:
            name = shlex.split(self._command)[0] if self._command.strip() else "?"
            raise ImapProblem(f"the OAuth2 token command ({name}) exited with status {proc.returncode}")
        token = proc.stdout.strip()
        if not token or any(c.isspace() for c in token):
            raise ImapProblem("the OAuth2 token command did not print one access token")
        return token


def connect(target: ImapTarget, creds: Credentials) -> IMAPClient:
    """A logged-in client; TLS from the start (imaps) or by STARTTLS (imap), except on loopback."""
    if target.implicit_tls:
        client = IMAPClient(target.host, target.port, ssl=True, ssl_context=ssl.create_default_context(),
                            timeout=TIMEOUT)
    else:
        client = IMAPClient(target.host, target.port, ssl=False, timeout=TIMEOUT)
    try:
        if not target.implicit_tls and not target.loopback:
            # A password or token in clear over the network is never acceptable; a loopback
            # server (a tunnel, a local bridge, a test) is the one exception.
            if not client.has_capability("STARTTLS"):
                raise ImapProblem(f"{target.host} does not offer STARTTLS; use imaps:// or a server that does")
            client.starttls(ssl.create_default_context())
        creds.login(client, target.user)
    except BaseException:
        close(client)
        raise
    return client


def close(client: IMAPClient) -> None:
    """LOGOUT if the connection still works; the socket is closed either way."""
    with contextlib.suppress(Exception):
        client.logout()
    with contextlib.suppress(Exception):
        client.shutdown()


class Mailbox:
    """The evidence folder on one logged-in connection, and the done folder beside it."""

    def __init__(self, client: IMAPClient, folder: str, done: str) -> None:
        self.client = client
        self.folder = folder
        self.done = done
        caps = set(client.capabilities())
        self.has_move = b"MOVE" in caps
        self.has_uidplus = b"UIDPLUS" in caps
        self.has_idle = b"IDLE" in caps

    def select(self) -> tuple[int, int]:
        """Selects the evidence folder: its UIDVALIDITY, and how many messages it holds."""
        info = self.client.select_folder(self.folder)
        return int(info[b"UIDVALIDITY"]), int(info[b"EXISTS"])

    def ensure_folder(self, name: str) -> None:
        if self.client.folder_exists(name):
            return
        try:
            self.client.create_folder(name)
        except IMAPClientError:
            if not self.client.folder_exists(name):  # another reader may have just made it
                raise

    def subfolder(self, parent: str, name: str) -> str:
        """`parent/name` with the server's separator (Dovecot's Maildir uses ".", Gmail "/")."""
        with contextlib.suppress(IMAPClientError, IndexError, TypeError):
            sep = self.client.namespace().personal[0][1]
            if sep:
                return f"{parent}{sep.decode() if isinstance(sep, bytes) else sep}{name}"
        return f"{parent}/{name}"

    def uids(self) -> list[int]:
        """Every message's UID, oldest first: a few bytes each, however big the folder."""
        return sorted(int(u) for u in self.client.search("ALL"))

    def sizes(self, uids: list[int]) -> dict[int, int]:
        got = self.client.fetch(uids, ["RFC822.SIZE"])
        return {int(uid): int(data[b"RFC822.SIZE"]) for uid, data in got.items()}

    def body(self, uid: int) -> bytes | None:
        """The raw message, unread flag untouched (BODY.PEEK); None if it has gone meanwhile."""
        got = self.client.fetch([uid], ["BODY.PEEK[]"])
        data = got.get(uid)
        return bytes(data[b"BODY[]"]) if data and data.get(b"BODY[]") is not None else None

    def move(self, uids: list[int], to: str) -> None:
        if not uids:
            return
        if self.has_move:
            self.client.move(uids, to)
            return
        self.client.copy(uids, to)
        self.client.add_flags(uids, [b"\\Deleted"])
        if self.has_uidplus:
            self.client.uid_expunge(uids)
        else:
            # Without UIDPLUS, EXPUNGE removes every \Deleted message in the folder, ours or not;
            # acceptable in a mailbox kept for evidence, and the only way to finish the move.
            self.client.expunge()

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """IDLE until new mail, `seconds`, or `wake()`; returns at once if `stop` is set."""
        deadline = time.monotonic() + seconds
        if stop.is_set():
            return
        # Dovecot does not look for changes when IDLE starts, only for those after it: mail that
        # came since the last command would wait for the next IDLE period. NOOP looks now.
        _, news = self.client.noop()
        if any(len(r) > 1 and r[1] == b"EXISTS" and r[0] for r in news):
            return
        self.client.idle()
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            got = self.client.idle_check(timeout=left)
            if any(r[0] == b"BYE" for r in got) or (not got and deadline - time.monotonic() > 1):
                # BYE (the server shutting down), or nothing before the time was up: the
                # connection is closed (idle_check answers EOF with an empty list).
                raise ConnectionResetError("the server closed the connection")
            # Dovecot's "* OK Still here" every two minutes comes back too: only EXISTS counts.
            if any(len(r) > 1 and r[1] == b"EXISTS" for r in got):
                break
        if not stop.is_set():  # after wake() the socket is shut: nothing more to say
            self.client.idle_done()

    def wake(self) -> None:
        """From another thread, to stop: ends a blocking IDLE (or any command) at once.

        Whatever was cut short is safe to abandon: a message is moved only after its commit."""
        with contextlib.suppress(OSError, AttributeError):
            self.client.socket().shutdown(socket.SHUT_RDWR)
