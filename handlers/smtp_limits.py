"""Limits that keep the SMTP door from being held shut, whoever is knocking.

One client that opens every connection slot and sits idle would otherwise turn every genuine
sender away with 421 for as long as it likes. Postfix's answer, followed here:

- a per-client connection cap (smtpd_client_connection_count_limit), trusted clients exempt
  (Postfix exempts $mynetworks);
- an idle timeout, cut to STRESS_IDLE_SECONDS while more than half the slots are in use
  (smtpd_timeout's stress value): when stress begins, sessions already idle that long are cut at
  once, and every other session gets the short limit while stress lasts;
- a per-client message rate (smtpd_client_message_rate_limit), trusted clients exempt.

One rule is ours. Postfix never refuses at its process limit: a connection waits in the listen
queue and gets the next free process before the idle holder's reconnect does. Our door answers
421 at the cap instead, and an idle holder that reconnects the moment it is cut would win every
freed slot from a sender retrying once a second. So when every slot is taken, a newcomer takes the
slot of the session idle longest, once that one has been idle EVICT_IDLE_SECONDS. A sender that
is talking is never idle that long, and a client that had a session cut for idleness in the last
CUT_MEMORY_SECONDS may take a free slot but not evict: holders cannot trade slots among themselves.

A session mid-DATA (receiving the message or waiting for its commit) is out of reach of both the
stress rule and eviction: its answer must stay "250 after commit" or nothing.

All per-connection and per-message work here is O(1) dict work; the only walk is over sessions
being cut. Per-client state holds only clients with open connections or messages in the window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from ipaddress import IPv6Network
from typing import Protocol

log = logging.getLogger(__name__)

# Postfix's smtpd_timeout stress value.
STRESS_IDLE_SECONDS = 10.0
# A genuine sender answers within a round trip; Postfix's own client keeps a cached idle session
# for at most 2 s (smtp_connection_cache_time_limit), and losing one only costs it a reconnect.
EVICT_IDLE_SECONDS = 2.0
# How long a client whose session was cut for idleness may not evict others.
CUT_MEMORY_SECONDS = 60.0
# Postfix 3.8 aggregates IPv6 clients this way (smtpd_client_ipv6_prefix_length): one site cannot
# pose as 2^44 clients. An IPv4 client is its address.
IPV6_PREFIX = 84

TOO_MANY_FROM_CLIENT = b"421 4.7.0 Too many connections from your address, try again later\r\n"
TOO_MANY = b"421 4.7.0 Too many connections, try again later\r\n"
TOO_FAST = "450 4.7.1 Too many messages from your address, try again in a minute"


def plain_ip(ip: str) -> str:
    """The peer's address, IPv4 when a dual-stack socket shows it as ::ffff:a.b.c.d."""
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


def client_key(ip: str) -> str:
    """Whose share a connection counts against: the IPv4 address, or the IPv6 /84 prefix."""
    if ":" not in ip:
        return ip
    try:
        return str(IPv6Network((ip, IPV6_PREFIX), strict=False))
    except ValueError:
        return ip


class Session(Protocol):
    """What the gate needs of a connection (handlers.smtp.CappedSMTP)."""

    last_active: float  # loop time of the last command (or the end of DATA)

    def cut(self) -> None:
        """Say 421 4.4.2 and close (the gate has already released the slot)."""


class ConnectionGate:
    """Connection slots shared by all sessions of one server: the global cap, the per-client cap,
    the stress timeout and eviction. Times are the event loop's clock.

    `_idle` holds every session that is waiting for a command (not mid-DATA), oldest activity
    first: each command moves its session to the end, so the front is the one idle longest.
    """

    def __init__(
        self,
        limit: int,
        *,
        per_client: int | None = None,
        is_trusted: Callable[[str], bool] | None = None,
    ) -> None:
        self.limit = limit
        self.per_client = per_client
        self.is_trusted = is_trusted or (lambda ip: False)
        # Read at construction, so a test can shorten them for the servers it starts.
        self.stress_idle_seconds = STRESS_IDLE_SECONDS
        self.evict_idle_seconds = EVICT_IDLE_SECONDS
        self.cut_memory_seconds = CUT_MEMORY_SECONDS
        self._held: dict[Session, str] = {}  # session -> client key
        self._per_client: dict[str, int] = {}  # only clients with open sessions
        self._idle: OrderedDict[Session, None] = OrderedDict()
        self._cut_clients: OrderedDict[str, float] = OrderedDict()  # client -> last cut, oldest first
        self._reaper: asyncio.TimerHandle | None = None

    @property
    def open(self) -> int:
        return len(self._held)

    @property
    def clients(self) -> int:
        """Clients remembered, for any reason (bounded: open sessions plus recent cuts)."""
        return len(self._per_client) + len(self._cut_clients)

    @property
    def stressed(self) -> bool:
        return 2 * len(self._held) > self.limit

    def try_enter(self, session: Session, client: str, *, trusted: bool) -> bytes | None:
        """Take a slot for `session`, or return the 421 line to refuse it with."""
        n = self._per_client.get(client, 0)
        if not trusted and self.per_client is not None and n >= self.per_client:
            return TOO_MANY_FROM_CLIENT
        if len(self._held) >= self.limit and not self._evict_for(client, asyncio.get_running_loop().time()):
            return TOO_MANY
        self._held[session] = client
        self._per_client[client] = n + 1
        self._idle[session] = None
        if self.stressed:
            self._watch()
        return None

    def release(self, session: Session) -> None:
        """Give the slot back (idempotent: a cut session releases at once, and again when lost)."""
        client = self._held.pop(session, None)
        if client is None:
            return
        self._idle.pop(session, None)
        n = self._per_client[client] - 1
        if n:
            self._per_client[client] = n
        else:
            del self._per_client[client]

    def touch(self, session: Session) -> None:
        """A command arrived: the session is the most recently active (the caller set last_active)."""
        if session in self._idle:
            self._idle.move_to_end(session)

    def busy(self, session: Session) -> None:
        """The session is in DATA: neither the stress rule nor eviction may cut it."""
        self._idle.pop(session, None)

    def ready(self, session: Session) -> None:
        """DATA is over (answered): the session waits for a command again."""
        if session in self._held:
            self._idle[session] = None
            if self.stressed:
                self._watch()

    def cut(self, session: Session, now: float) -> None:
        """Cut an idle session: its slot is free at once, not once the close has gone through."""
        client = self._held.get(session)
        if client is not None:
            self._forget_cuts(now)
            self._cut_clients[client] = now
            self._cut_clients.move_to_end(client)
        self.release(session)
        session.cut()

    def _forget_cuts(self, now: float) -> None:
        # Oldest first: amortised O(1), and only cuts of the last CUT_MEMORY_SECONDS are kept.
        cutoff = now - self.cut_memory_seconds
        while self._cut_clients:
            oldest, at = next(iter(self._cut_clients.items()))
            if at > cutoff:
                break
            del self._cut_clients[oldest]

    def _evict_for(self, client: str, now: float) -> bool:
        self._forget_cuts(now)
        if not self._idle or client in self._cut_clients:
            return False
        victim = next(iter(self._idle))
        if now - victim.last_active < self.evict_idle_seconds:
            return False
        log.info("every slot taken: a new client takes the slot of one idle for %.0f s", now - victim.last_active)
        self.cut(victim, now)
        return True

    def _watch(self) -> None:
        """Make sure the reaper runs when the longest-idle session reaches the stress limit."""
        if self._reaper is None and self._idle:
            front = next(iter(self._idle))
            loop = asyncio.get_running_loop()
            self._reaper = loop.call_at(front.last_active + self.stress_idle_seconds, self._reap)

    def _reap(self) -> None:
        # Fires at the front's deadline as it was when scheduled. The front may have spoken since
        # (then nothing is cut and the reaper is set for the new front) or stress may have ended
        # (then it stops, and the next session to push the server into stress starts it again).
        self._reaper = None
        if not self.stressed:
            return
        now = asyncio.get_running_loop().time()
        cutoff = now - self.stress_idle_seconds
        while self._idle:
            front = next(iter(self._idle))
            if front.last_active > cutoff:
                break
            log.info("under stress (%d of %d connections): cutting a session idle for %.0f s",
                     len(self._held), self.limit, now - front.last_active)
            self.cut(front, now)
        if self.stressed:
            self._watch()


class MessageRate:
    """At most `limit` messages per client in any `window` seconds (a sliding window).

    A sliding window rather than a fixed one: a client cannot send twice the limit across a
    window boundary, and a refused client gets its next message as soon as its oldest counted one
    is `window` seconds old. Each client keeps the times of its counted messages (at most `limit`);
    clients are kept in the order of their latest message, so those whose window has emptied are
    dropped from the front, amortised O(1) per call.
    """

    def __init__(self, limit: int, *, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """How many clients are remembered (for tests: the state stays bounded)."""
        return len(self._clients)

    def take(self, client: str) -> bool:
        """Count one message for `client` if it is within the limit; False (not counted) if not."""
        now = self._clock()
        cutoff = now - self.window
        while self._clients:
            oldest_client, oldest_times = next(iter(self._clients.items()))
            if oldest_times[-1] > cutoff:
                break
            del self._clients[oldest_client]
        times = self._clients.get(client)
        if times is None:
            self._clients[client] = deque((now,))
            return True
        while times[0] <= cutoff:
            times.popleft()  # never empties: its latest time is inside the window (see above)
        if len(times) >= self.limit:
            return False
        times.append(now)
        self._clients.move_to_end(client)
        return True
