"""A real DNS server on loopback for the sender-check and doctor tests (UDP; TXT, MX, A, AAAA).

Names in `txt`, `mx` and `a` answer their records of that type (a name known for one type answers
an empty NOERROR for the others, as real DNS does); names in `silent` are never answered (a look-up that times
out); anything else is NXDOMAIN. `asked` lists every question, so a test can see what was looked up.
"""

from __future__ import annotations

import select
import socket
import threading
from types import TracebackType

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A, DNSRecord


class DnsServer:
    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}
        self.mx: dict[str, list[tuple[int, str]]] = {}
        self.a: dict[str, list[str]] = {}  # IPv4 and IPv6 addresses alike; each answers its own type
        self.silent: set[str] = set()
        self.asked: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    @property
    def address(self) -> str:
        """For EVIDENCE_DNS_SERVERS."""
        return f"127.0.0.1:{self.port}"

    def add_txt(self, name: str, *records: str) -> None:
        self.txt.setdefault(name.lower().rstrip("."), []).extend(records)

    def add_mx(self, name: str, *records: tuple[int, str]) -> None:
        """(preference, exchange) pairs; (0, ".") is a null MX."""
        self.mx.setdefault(name.lower().rstrip("."), []).extend(records)

    def add_a(self, name: str, *addresses: str) -> None:
        self.a.setdefault(name.lower().rstrip("."), []).extend(addresses)

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.05)
            if not ready:
                continue
            data, addr = self._sock.recvfrom(4096)
            try:
                reply = self._answer(DNSRecord.parse(data))
            except Exception:  # a garbled packet: a real server would drop it too
                continue
            if reply is not None:
                self._sock.sendto(reply, addr)

    def _answer(self, query: DNSRecord) -> bytes | None:
        name = str(query.q.qname).lower().rstrip(".")
        qtype = QTYPE.get(query.q.qtype)
        self.asked.append((name, str(qtype)))
        if name in self.silent:
            return None
        reply = query.reply()
        if name not in self.txt and name not in self.mx and name not in self.a:
            reply.header.rcode = RCODE.NXDOMAIN
        elif qtype == "MX":
            for pref, host in self.mx.get(name, []):
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(host, pref), ttl=60))
        elif qtype in ("A", "AAAA"):
            for ip in self.a.get(name, []):
                if (":" in ip) == (qtype == "AAAA"):
                    reply.add_answer(RR(name, getattr(QTYPE, qtype), rdata=(AAAA if ":" in ip else A)(ip), ttl=60))
        elif qtype == "TXT" and name in self.txt:
            for text in self.txt[name]:
                # A TXT record is a list of strings of at most 255 bytes each (long DKIM keys).
                chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        return reply.pack()

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
