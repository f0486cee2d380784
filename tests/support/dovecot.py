"""A real Dovecot for the IMAP door's tests and benchmark: its own process, loopback, a temporary Maildir.

`Dovecot(...)` writes a config (passwd-file, Maildir, logs and sockets all under one temporary
directory) and `start()` runs `dovecot -F -c CONFIG` on a free loopback port. It works as root
(as in CI): the login processes run as `dovenull` and the mail as `dovecot`, since Dovecot
refuses root for both; the directory is world-traversable for that reason and removed at the end.

`HoldingProxy` sits between the service and Dovecot and can hold back the first MOVE (or COPY),
so a test can stop the service exactly between a message's commit and its move.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.support.sink import free_port

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
SKIP_REASON = "Dovecot not installed (apt-get install dovecot-imapd)"
USER = "evidence@example.org"

# What Dovecot 2.3 advertises after login, less MOVE (or IDLE): `imap_capability` replaces the list.
CAPS_NO_MOVE = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT LITERAL+ MULTIAPPEND UNSELECT "
                "CHILDREN NAMESPACE UIDPLUS CONDSTORE")
CAPS_NO_IDLE = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT LITERAL+ MULTIAPPEND UNSELECT "
                "CHILDREN NAMESPACE UIDPLUS CONDSTORE MOVE")


def _user_or(name: str, fallback: str) -> str:
    try:
        pwd.getpwnam(name)
        return name
    except KeyError:
        return fallback


class Dovecot:
    """`with Dovecot() as d:`; `d.url()` for EVIDENCE_IMAP_URL, `d.client()` to look inside."""

    def __init__(self, *, password: str = "secret", capabilities: str | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        assert DOVECOT, SKIP_REASON
        self.root = Path(tempfile.mkdtemp(prefix="evidence-dovecot-"))
        os.chmod(self.root, 0o755)  # the login process (dovenull) must reach the sockets in it
        self.port = free_port()
        self.password = password
        self.capabilities = capabilities
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            self.login_user = _user_or("dovenull", "nobody")
            self.mail_user = _user_or("dovecot", "nobody")
        else:
            self.login_user = self.mail_user = pwd.getpwuid(os.getuid()).pw_name
        for d in ("run", "state", "mail"):
            (self.root / d).mkdir()
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.mail_user)
            os.chown(self.root / "mail", pw.pw_uid, pw.pw_gid)
        self.set_password(password)
        self._write_config()

    @property
    def log(self) -> Path:
        return self.root / "dovecot.log"

    def set_password(self, password: str) -> None:
        """Rewrites the passwd-file, and once running, waits until Dovecot takes the new password.

        Dovecot looks at the file again at most once a second (and by its mtime and size)."""
        self.password = password
        tmp = self.root / "passwd.new"
        tmp.write_text(f"{USER}:{{PLAIN}}{password}::::::\n")
        os.chmod(tmp, 0o644)
        tmp.replace(self.root / "passwd")
        deadline = time.monotonic() + 10
        while self.proc is not None:
            try:
                self.client().logout()
                return
            except LoginError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _write_config(self) -> None:
        r = self.root
        tls = (f"ssl = required\nssl_cert = <{self.tls[0]}\nssl_key = <{self.tls[1]}\n" if self.tls else "ssl = no\n")
        plain, secure = (0, self.port) if self.tls else (self.port, 0)
        caps = f"imap_capability = {self.capabilities}\n" if self.capabilities else ""
        (r / "dovecot.conf").write_text(f"""\
base_dir = {r}/run
state_dir = {r}/state
log_path = {self.log}
protocols = imap
listen = 127.0.0.1
{tls}disable_plaintext_auth = no
# XOAUTH2 hands the token to the passdb as a password: the passwd-file stands in for a token check.
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
default_internal_user = {self.mail_user}
default_login_user = {self.login_user}
first_valid_uid = 1
mail_location = maildir:~/Maildir
{caps}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {r}/passwd
}}
userdb {{
  driver = static
  args = uid={self.mail_user} gid={pwd.getpwnam(self.mail_user).pw_gid} home={r}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {plain}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {secure}
  }}
}}
service auth {{
  user = {"root" if os.geteuid() == 0 else self.mail_user}
}}
service anvil {{
  chroot =
  # No growing delay after failed logins: the tests refuse logins on purpose.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
""")

    def start(self, timeout: float = 15.0) -> None:
        assert self.proc is None
        with open(self.root / "dovecot.out", "ab") as out:
            self.proc = subprocess.Popen([str(DOVECOT), "-F", "-c", str(self.root / "dovecot.conf")],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dovecot exited: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if self.tls or s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"dovecot did not listen in time: {self.output()}")

    def stop(self) -> None:
        """SIGTERM to the master (it ends its children) and wait; the Maildir stays."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Children (a session's imap process) may outlive the master for a moment.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self.proc = None

    def output(self) -> str:
        parts = [p.read_text(errors="replace")[-4000:] for p in (self.root / "dovecot.out", self.log) if p.exists()]
        return "\n".join(parts)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, folder: str = "INBOX", *, port: int | None = None) -> str:
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{quote(USER)}@127.0.0.1:{port or self.port}/{quote(folder)}"

    def client(self) -> IMAPClient:
        """A logged-in client of the test's own; close it with logout()."""
        if self.tls:
            import ssl

            ctx = ssl.create_default_context(cafile=str(self.tls[0]))
            c = IMAPClient("127.0.0.1", self.port, ssl=True, ssl_context=ctx, timeout=10)
        else:
            c = IMAPClient("127.0.0.1", self.port, ssl=False, timeout=10)
        try:
            c.login(USER, self.password)
        except BaseException:
            c.shutdown()
            raise
        return c

    def append(self, messages: list[bytes], folder: str = "INBOX") -> None:
        c = self.client()
        try:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            for raw in messages:
                c.append(folder, raw)
        finally:
            c.logout()

    def count(self, folder: str) -> int:
        c = self.client()
        try:
            if not c.folder_exists(folder):
                return 0
            return int(c.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])
        finally:
            c.logout()


def self_signed(directory: Path) -> tuple[Path, Path] | None:
    """A certificate for 127.0.0.1 and localhost made with openssl; None without the openssl command."""
    exe = shutil.which("openssl")
    if not exe:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([exe, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    os.chmod(key, 0o644)
    return cert, key


_MOVE = re.compile(rb"^\S+ UID (?:MOVE|COPY) ", re.IGNORECASE | re.MULTILINE)


class HoldingProxy:
    """A TCP relay to Dovecot that, once `hold` is set, swallows the first MOVE/COPY and keeps it.

    The service then waits for an answer that never comes: the test can observe the commit in
    the database and kill the service with the message still in the folder.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.hold = threading.Event()
        self.held = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._spawn(self._accept)

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._socks += [conn, up]
            self._spawn(self._pump, conn, up, True)
            self._spawn(self._pump, up, conn, False)

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_client and (self.held.is_set() or (self.hold.is_set() and _MOVE.search(data))):
                    self.held.set()
                    continue  # swallowed: neither this command nor anything after it reaches Dovecot
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in threads:
            t.join(timeout=5)
