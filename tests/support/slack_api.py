"""A local stand-in for Slack's Web API and Socket Mode, served over real HTTP on a loopback port.

Tests point slack_sdk at it through ``base_url`` (the service's SLACK_API_URL) instead of mocking
Slack in-process, so request encoding, auth headers, HTTP status codes, Retry-After and timeouts
all go through the same code paths as in production::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        await client.chat_postMessage(channel="C1", text="hi")
        assert slack.posted_messages("C1")[0]["text"] == "hi"

It imitates Slack where a client's behaviour depends on it: HTTP 200 with ``ok: false`` for API
errors, HTTP 429 + ``Retry-After`` for chat.postMessage faster than once a second per channel,
Block Kit size limits (``invalid_blocks`` with json-pointer messages), token types, the external
file-upload dance, and the Socket Mode hello/envelope/ack protocol. Faults (5xx, 429, hangs,
``ok: false`` errors) can be injected per method.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from multidict import MultiDictProxy

JsonDict = dict[str, Any]
Handler = Callable[[JsonDict], JsonDict | Awaitable[JsonDict]]

# Arguments that Slack accepts as JSON strings inside form-encoded bodies (slack_sdk sends them so).
_JSON_ARGS = ("blocks", "view", "attachments", "files", "metadata")

# Methods that take the app-level (xapp-) token; every other implemented method wants the bot token.
_APP_TOKEN_METHODS = {"apps.connections.open"}

# Pseudo-method name under which faults for POST /upload/<file_id> are queued.
UPLOAD = "upload"


@dataclass
class Call:
    """One request to /api/<method>, recorded when it arrives and completed when it is answered."""

    method: str
    args: JsonDict
    at: float  # time.monotonic() on arrival
    token: str | None = None
    status: int | None = None  # HTTP status answered (None while still being handled, e.g. a hang)
    error: str | None = None  # Slack's "error" when ok is false
    response: JsonDict | None = None
    peer: tuple[str, int] | None = None  # the client's address and port: which connection it came on

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None

    @property
    def rate_limited(self) -> bool:
        return self.status == 429

    @property
    def rejected(self) -> bool:
        """Answered, but refused for a reason other than rate limiting (bad blocks, bad token, injected...)."""
        return self.status is not None and not self.ok and not self.rate_limited


@dataclass
class _Fault:
    kind: str  # "fail" | "error" | "hang"
    status: int = 200
    error: str = ""
    retry_after: int | None = None
    seconds: float = 0.0
    extra: JsonDict = field(default_factory=dict)


def _listing(messages: list[JsonDict], limit: int, with_meta: bool) -> JsonDict:
    """A page of messages as conversations.history and .replies answer: metadata only when asked for."""
    found = []
    for m in messages[:limit]:
        out = {k: v for k, v in m.items() if k != "channel" and (with_meta or k != "metadata")}
        if isinstance(out.get("metadata"), str):
            out["metadata"] = json.loads(out["metadata"])
        found.append(out)
    return {"ok": True, "messages": found, "has_more": len(messages) > limit}


class _SlackError(Exception):
    """Raised by a method implementation to answer HTTP 200 {"ok": false, "error": ...}."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class FakeSlack:
    """``async with FakeSlack() as slack:`` — an aiohttp server on 127.0.0.1:<ephemeral> imitating Slack.

    State tests can inspect or seed: ``calls``, ``messages``, ``ephemerals``, ``views``, ``home_views``, ``usergroups``,
    ``users``, ``files``, ``uploads``, ``responses``, ``socket_acks``.
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        post_interval: float = 1.0,
        team_id: str = "T0FAKE",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        app_id: str = "A0FAKE",
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.post_interval = post_interval
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id

        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], JsonDict] = {}
        self.ephemerals: list[JsonDict] = []
        self.views: dict[str, JsonDict] = {}
        self.home_views: dict[str, JsonDict] = {}  # user id -> the Home tab published for them
        self.usergroups: dict[str, list[str]] = {}
        self.users: dict[str, JsonDict] = {}
        # file_id -> metadata from getUploadURLExternal, completed by completeUploadExternal.
        self.files: dict[str, JsonDict] = {}
        self.uploads: dict[str, bytes] = {}
        # Bodies POSTed to response_url(key), in arrival order per key.
        self.responses: dict[str, list[JsonDict]] = defaultdict(list)
        self.socket_acks: list[JsonDict] = []
        self.socket_connects = 0  # connections accepted so far, to notice reconnects
        # If set, chat.* to any other C/G channel answers channel_not_found (DMs are always known).
        self.channels: set[str] | None = None
        # conversations.info: channels the bot is a member of (others it can see: is_member false).
        self.member_of: set[str] = set()
        # What Slack reports in the x-oauth-scopes header of every answer to the bot token.
        self.scopes: list[str] = ["commands", "chat:write", "chat:write.public", "im:write", "usergroups:read",
                                  "users:read", "channels:history", "files:write", "groups:history",
                                  "im:history"]

        self._posted: list[JsonDict] = []
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._last_post: dict[str, float] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._extra_handlers: dict[str, Handler] = {}
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[JsonDict]] = {}
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ----------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """What slack_sdk calls base_url (it must end with a slash)."""
        return f"{self.base_url}/api/"

    def response_url(self, key: str = "R1") -> str:
        """A response_url on this server; what the service POSTs there lands in ``responses[key]``."""
        return f"{self.base_url}/response/{key}"

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_post("/api/{method}", self._handle_api)
        # slack_sdk uses POST for everything, but Slack also answers GET with query parameters.
        app.router.add_get("/api/{method}", self._handle_api)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_get("/socket", self._handle_socket)
        # A short shutdown_timeout: a test that ends mid-request must not wait aiohttp's default 60 s.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        # Port 0 lets the OS pick a free port; the runner reports what was bound.
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        self._closing.set()
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"server shutdown")
        for fut in self._acks.values():
            if not fut.done():
                fut.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- inspection

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posted_messages(self, channel: str | None = None) -> list[JsonDict]:
        """Messages accepted by chat.postMessage, as posted (later chat.update edits are in ``messages``)."""
        return [m for m in self._posted if channel is None or m["channel"] == channel]

    def message(self, channel: str, ts: str) -> JsonDict:
        return self.messages[(channel, ts)]

    async def wait_for_calls(
        self, method: str, count: int = 1, *, timeout: float = 5.0, ok_only: bool = False
    ) -> list[Call]:
        """Wait until ``count`` answered calls to ``method`` have been made (the service works asynchronously)."""

        def matching() -> list[Call]:
            return [c for c in self.calls_to(method) if c.status is not None and (c.ok or not ok_only)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(matching()) >= count), timeout)
        return matching()

    # ----------------------------------------------------------------- seeding / faults

    def add_user(self, user_id: str, name: str | None = None, **fields: Any) -> JsonDict:
        """Make users.info know a user; extra keyword arguments go into the user object (profile=..., tz=...)."""
        name = name or user_id.lower()
        user: JsonDict = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": name,
            "deleted": False,
            "is_bot": False,
            "tz": "Europe/London",
            "profile": {"real_name": name, "display_name": name, "email": f"{name}@example.org"},
        }
        user.update(fields)
        self.users[user_id] = user
        return user

    def on(self, method: str, handler: Handler) -> None:
        """Serve a method this fake does not implement: handler(args) returns the response body."""
        self._extra_handlers[method] = handler

    def fail_next(
        self,
        method: str,
        status: int = 500,
        count: int = 1,
        *,
        retry_after: int | None = None,
        error: str | None = None,
    ) -> None:
        """The next ``count`` calls to ``method`` answer HTTP ``status`` (429 gets Retry-After, default 1)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        default_error = {429: "ratelimited", 503: "service_unavailable"}.get(status, "fatal_error")
        for _ in range(count):
            self._faults[method].append(
                _Fault("fail", status=status, error=error or default_error, retry_after=retry_after)
            )

    def error_next(self, method: str, error: str, count: int = 1, **extra: Any) -> None:
        """The next ``count`` calls to ``method`` answer HTTP 200 {"ok": false, "error": error, **extra}."""
        for _ in range(count):
            self._faults[method].append(_Fault("error", error=error, extra=extra))

    def hang_next(self, method: str, seconds: float, count: int = 1) -> None:
        """The next ``count`` calls to ``method`` wait ``seconds`` and then are handled normally.

        As with Slack, a call whose client gave up may still take effect (a post the client
        believes failed can exist), so retries can duplicate.
        """
        for _ in range(count):
            self._faults[method].append(_Fault("hang", seconds=seconds))

    # ----------------------------------------------------------------- HTTP plumbing

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _next_ts(self) -> str:
        # Unique and increasing like Slack's "seconds.microseconds" message timestamps.
        micros = 1_700_000_000_000_000 + next(self._ts) * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    @staticmethod
    def _json(body: JsonDict, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response(body, status=status, headers=headers)

    async def _read_args(self, request: web.Request) -> JsonDict:
        args: JsonDict = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    args.update(body)
            else:
                form: MultiDictProxy[Any] = await request.post()
                for key in form:
                    value = form[key]
                    # Multipart file parts (files.upload v1) arrive as FileField; keep their bytes.
                    args[key] = value.file.read() if hasattr(value, "file") else value
        for key in _JSON_ARGS:
            if isinstance(args.get(key), str):
                # Left as a string when it is not JSON; validation then reports the bad format.
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(args[key])
        return args

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        return queue.popleft() if queue else None

    async def _apply_fault(self, fault: _Fault | None) -> web.Response | None:
        """Answer for an injected fault, or None to handle the request normally (after any hang)."""
        if fault is None:
            return None
        if fault.kind == "hang":
            # Ends early when the server closes so a test never waits out a hang at teardown.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
            return None
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        status = fault.status if fault.kind == "fail" else 200
        return self._json({"ok": False, "error": fault.error, **fault.extra}, status=status, headers=headers)

    def _token(self, request: web.Request, args: JsonDict) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :].strip() or None
        # Slack also accepts a token form field in a POST body.
        token = args.pop("token", None)
        return token if isinstance(token, str) and token else None

    def _check_token(self, method: str, token: str | None) -> None:
        if token is None:
            raise _SlackError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise _SlackError("invalid_auth")
        wants_app = method in _APP_TOKEN_METHODS
        if (token == self.app_token) != wants_app:
            raise _SlackError("not_allowed_token_type")

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            args = await self._read_args(request)
        except ValueError:
            args = {}
            call = Call(method, args, time.monotonic())
            self.calls.append(call)
            return await self._finish(call, self._json({"ok": False, "error": "invalid_json"}))
        token = self._token(request, args)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        call = Call(method, args, time.monotonic(), token=token, peer=tuple(peer[:2]) if peer else None)
        self.calls.append(call)

        injected = await self._apply_fault(self._take_fault(method))
        if injected is not None:
            return await self._finish(call, injected)
        try:
            self._check_token(method, token)
            limited = self._rate_limit(method, args)
            if limited is not None:
                return await self._finish(call, limited)
            impl = getattr(self, "_m_" + method.replace(".", "_"), None)
            if impl is not None:
                body: JsonDict = impl(args)
            elif method in self._extra_handlers:
                result = self._extra_handlers[method](args)
                body = await result if asyncio.iscoroutine(result) else result  # type: ignore[assignment]
            else:
                # Slack answers unknown methods with 200 and ok:false too.
                raise _SlackError("unknown_method", req_method=method)
        except _SlackError as e:
            body = {"ok": False, "error": e.error, **e.extra}
        # Slack names the token's scopes on every answer to a valid bot token (apps read them
        # from auth.test to see what they were granted).
        headers = {"x-oauth-scopes": ",".join(self.scopes)} if token == self.bot_token else None
        return await self._finish(call, self._json(body, headers=headers))

    async def _finish(self, call: Call, response: web.Response) -> web.Response:
        call.status = response.status
        assert isinstance(response.body, bytes)
        call.response = json.loads(response.body)
        if call.response is not None and not call.response.get("ok", False):
            call.error = call.response.get("error")
        await self._notify()
        return response

    def _rate_limit(self, method: str, args: JsonDict) -> web.Response | None:
        # Slack's documented special limit: about one chat.postMessage per second per channel.
        if method != "chat.postMessage" or self.post_interval <= 0:
            return None
        channel = self._resolve_channel(args.get("channel"))
        last = self._last_post.get(channel)
        now = time.monotonic()
        if last is not None and now - last < self.post_interval:
            wait = max(1, math.ceil(self.post_interval - (now - last)))
            return self._json({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(wait)})
        return None

    # ----------------------------------------------------------------- channels

    def dm_channel(self, user_id: str) -> str:
        """The IM channel id conversations.open returns (and chat.postMessage to a user id posts to)."""
        return "D" + user_id[1:] if user_id[:1] in ("U", "W") else "D" + user_id

    def _resolve_channel(self, channel: Any) -> str:
        if not isinstance(channel, str) or not channel:
            raise _SlackError("channel_not_found")
        if channel[:1] in ("U", "W"):
            return self.dm_channel(channel)
        if self.channels is not None and channel[:1] in ("C", "G") and channel not in self.channels:
            raise _SlackError("channel_not_found")
        return channel

    # ----------------------------------------------------------------- methods

    def _m_auth_test(self, args: JsonDict) -> JsonDict:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "evidence-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _message_content(self, args: JsonDict, *, require_content: bool) -> JsonDict:
        text = args.get("text")
        blocks = args.get("blocks")
        if require_content and not text and not blocks and not args.get("attachments"):
            raise _SlackError("no_text")
        if isinstance(text, str) and len(text) > 40000:
            raise _SlackError("msg_too_long")
        if blocks is not None:
            if not isinstance(blocks, list):
                raise _SlackError("invalid_blocks_format")
            errors = validate_blocks(blocks, max_blocks=50, pointer="/blocks")
            if errors:
                raise _SlackError(
                    "invalid_blocks",
                    errors=errors,
                    response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
                )
        content: JsonDict = {}
        for key in ("text", "blocks", "attachments", "thread_ts", "metadata"):
            if key in args:
                content[key] = args[key]
        return content

    def _m_chat_postMessage(self, args: JsonDict) -> JsonDict:
        channel = self._resolve_channel(args.get("channel"))
        content = self._message_content(args, require_content=True)
        thread_ts = args.get("thread_ts")
        if thread_ts and (channel, thread_ts) not in self.messages:
            raise _SlackError("thread_not_found")
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": ts,
            "text": content.get("text", ""),
            **{k: v for k, v in content.items() if k != "text"},
        }
        self.messages[(channel, ts)] = {"channel": channel, **message}
        self._posted.append({**args, "channel": channel, "ts": ts})
        self._last_post[channel] = time.monotonic()
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_chat_update(self, args: JsonDict) -> JsonDict:
        channel = self._resolve_channel(args.get("channel"))
        ts = args.get("ts")
        if not isinstance(ts, str) or (channel, ts) not in self.messages:
            raise _SlackError("message_not_found")
        content = self._message_content(args, require_content=False)
        stored = self.messages[(channel, ts)]
        stored.update(content)
        stored["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        stored["update_count"] = stored.get("update_count", 0) + 1
        message = {k: v for k, v in stored.items() if k != "channel"}
        return {"ok": True, "channel": channel, "ts": ts, "text": stored.get("text", ""), "message": message}

    def _m_chat_postEphemeral(self, args: JsonDict) -> JsonDict:
        channel = self._resolve_channel(args.get("channel"))
        if not args.get("user"):
            raise _SlackError("user_not_in_channel")
        content = self._message_content(args, require_content=True)
        ts = self._next_ts()
        self.ephemerals.append({"channel": channel, "user": args["user"], "message_ts": ts, **content})
        return {"ok": True, "message_ts": ts}

    def _m_chat_delete(self, args: JsonDict) -> JsonDict:
        channel = self._resolve_channel(args.get("channel"))
        ts = args.get("ts")
        if not isinstance(ts, str) or self.messages.pop((channel, ts), None) is None:
            raise _SlackError("message_not_found")
        return {"ok": True, "channel": channel, "ts": ts}

    def _m_conversations_history(self, args: JsonDict) -> JsonDict:
        """Top-level messages of a channel, newest first; metadata only when asked for, as Slack does."""
        channel = self._resolve_channel(args.get("channel"))
        limit = int(args.get("limit") or 100)
        with_meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        newest_first = sorted(self.messages.items(), key=lambda kv: kv[0][1], reverse=True)
        found = [m for (ch, _ts), m in newest_first if ch == channel and not m.get("thread_ts")]
        return _listing(found, limit, with_meta)

    def _m_conversations_replies(self, args: JsonDict) -> JsonDict:
        """A thread, oldest first, its parent included; metadata only when asked for, as Slack does."""
        channel = self._resolve_channel(args.get("channel"))
        ts = args.get("ts")
        if not isinstance(ts, str) or (channel, ts) not in self.messages:
            raise _SlackError("thread_not_found")
        limit = int(args.get("limit") or 1000)
        with_meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        oldest_first = sorted(self.messages.items(), key=lambda kv: kv[0][1])
        found = [m for (ch, m_ts), m in oldest_first if ch == channel and ts in (m_ts, m.get("thread_ts"))]
        return _listing(found, limit, with_meta)

    def _m_conversations_info(self, args: JsonDict) -> JsonDict:
        channel = args.get("channel")
        if not isinstance(channel, str) or not channel:
            raise _SlackError("channel_not_found")
        if channel[:1] in ("U", "W"):
            raise _SlackError("channel_not_found")
        if self.channels is not None and channel[:1] in ("C", "G") and channel not in self.channels:
            raise _SlackError("channel_not_found")
        member = channel in self.member_of
        if channel[:1] == "G" and not member:
            raise _SlackError("channel_not_found")  # a private channel is invisible to a bot outside it
        return {"ok": True, "channel": {
            "id": channel, "name": channel.lower(), "is_channel": channel[:1] == "C", "is_private": channel[:1] == "G",
            "is_archived": False, "is_member": member, "created": 1_700_000_000,
        }}

    def _m_conversations_open(self, args: JsonDict) -> JsonDict:
        users = args.get("users")
        if isinstance(users, list):
            users = ",".join(users)
        if not isinstance(users, str) or not users:
            raise _SlackError("users_list_not_supplied")
        ids = [u.strip() for u in users.split(",") if u.strip()]
        if len(ids) != 1:
            # Multi-person DMs (G...) are out of scope for this service.
            return {"ok": True, "channel": {"id": "G" + "".join(i[1:] for i in ids)[:10], "is_mpim": True}}
        return {"ok": True, "channel": {"id": self.dm_channel(ids[0]), "is_im": True, "user": ids[0]}}

    def _view_from(self, args: JsonDict) -> JsonDict:
        view = args.get("view")
        if not isinstance(view, dict):
            raise _SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing view"]})
        errors = validate_view(view)
        if errors:
            # Slack reports view problems as invalid_arguments; "errors" is kept for uniform inspection.
            raise _SlackError(
                "invalid_arguments",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        return view

    def _store_view(self, view: JsonDict, view_id: str, *, root_view_id: str, previous: str | None) -> JsonDict:
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "root_view_id": root_view_id,
            "previous_view_id": previous,
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "state": {"values": {}},
            "clear_on_close": False,
            "notify_on_close": False,
            **view,
        }
        self.views[view_id] = stored
        return stored

    def _m_views_open(self, args: JsonDict) -> JsonDict:
        if not args.get("trigger_id") and not args.get("interactivity_pointer"):
            raise _SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing trigger_id"]})
        view = self._view_from(args)
        view_id = self._next_id("V")
        return {"ok": True, "view": self._store_view(view, view_id, root_view_id=view_id, previous=None)}

    def _m_views_push(self, args: JsonDict) -> JsonDict:
        if not args.get("trigger_id") and not args.get("interactivity_pointer"):
            raise _SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing trigger_id"]})
        view = self._view_from(args)
        view_id = self._next_id("V")
        return {"ok": True, "view": self._store_view(view, view_id, root_view_id=view_id, previous=None)}

    def _m_views_update(self, args: JsonDict) -> JsonDict:
        view_id = args.get("view_id")
        external_id = args.get("external_id")
        if not view_id and external_id:
            view_id = next((v["id"] for v in self.views.values() if v.get("external_id") == external_id), None)
        if not view_id or view_id not in self.views:
            raise _SlackError("not_found")
        old = self.views[view_id]
        if args.get("hash") and args["hash"] != old["hash"]:
            raise _SlackError("hash_conflict")
        view = self._view_from(args)
        stored = self._store_view(view, view_id, root_view_id=old["root_view_id"], previous=old["previous_view_id"])
        return {"ok": True, "view": stored}

    def _m_views_publish(self, args: JsonDict) -> JsonDict:
        user_id = args.get("user_id")
        if not isinstance(user_id, str) or not user_id:
            raise _SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing user_id"]})
        view = self._view_from(args)
        if view.get("type") != "home":
            raise _SlackError("invalid_arguments",
                              response_metadata={"messages": ["[ERROR] must be home [json-pointer:/view/type]"]})
        old = self.home_views.get(user_id)
        if old is not None and args.get("hash") and args["hash"] != old["hash"]:
            raise _SlackError("hash_conflict")
        view_id = old["id"] if old is not None else self._next_id("V")
        stored = self._store_view(view, view_id, root_view_id=view_id, previous=None)
        self.home_views[user_id] = stored
        return {"ok": True, "view": stored}

    def _m_usergroups_users_list(self, args: JsonDict) -> JsonDict:
        group = args.get("usergroup")
        if group not in self.usergroups:
            raise _SlackError("no_such_subteam")
        return {"ok": True, "users": list(self.usergroups[group])}

    def _m_users_info(self, args: JsonDict) -> JsonDict:
        user = args.get("user")
        if user not in self.users:
            raise _SlackError("user_not_found")
        return {"ok": True, "user": self.users[user]}

    def _m_files_getUploadURLExternal(self, args: JsonDict) -> JsonDict:
        filename = args.get("filename")
        length = args.get("length")
        if not filename:
            raise _SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing filename"]})
        try:
            size = int(length)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise _SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] bad length"]}) from None
        if size <= 0:
            raise _SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] length must be > 0"]})
        file_id = self._next_id("F")
        self.files[file_id] = {"id": file_id, "name": filename, "length": size, "completed": False}
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: JsonDict) -> JsonDict:
        files = args.get("files")
        if not isinstance(files, list) or not files:
            raise _SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] files must be a list"]})
        for f in files:
            file_id = f.get("id") if isinstance(f, dict) else None
            if file_id not in self.files or file_id not in self.uploads:
                raise _SlackError("file_not_found")
        channel = args.get("channel_id")
        channels = [channel] if channel else [c for c in str(args.get("channels") or "").split(",") if c]
        done = []
        for f in files:
            meta = self.files[f["id"]]
            meta.update(
                {
                    "title": f.get("title") or meta["name"],
                    "size": len(self.uploads[f["id"]]),
                    "completed": True,
                    "channel_id": channel,
                    "channels": channels,
                    "initial_comment": args.get("initial_comment"),
                    "thread_ts": args.get("thread_ts"),
                }
            )
            done.append({"id": meta["id"], "name": meta["name"], "title": meta["title"], "size": meta["size"]})
        return {"ok": True, "files": done}

    def _m_files_info(self, args: JsonDict) -> JsonDict:
        meta = self.files.get(args.get("file", ""))
        if meta is None or not meta.get("completed"):
            raise _SlackError("file_not_found")
        return {"ok": True, "file": meta}

    def _m_files_delete(self, args: JsonDict) -> JsonDict:
        meta = self.files.get(args.get("file", ""))
        if meta is None or meta.get("deleted"):
            raise _SlackError("file_not_found")
        meta["deleted"] = True
        meta["completed"] = False  # files.info no longer finds it, as on Slack
        return {"ok": True}

    def _m_apps_connections_open(self, args: JsonDict) -> JsonDict:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket?ticket={ticket}&app_id={self.app_id}"}

    # ----------------------------------------------------------------- uploads and response_url

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        injected = await self._apply_fault(self._take_fault(UPLOAD))
        if injected is not None:
            return injected
        if file_id not in self.files:
            return web.Response(status=404, text="not found")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next((v for v in form.values() if hasattr(v, "file")), None)
            data = part.file.read() if part is not None else b""
        else:
            data = await request.read()
        self.uploads[file_id] = data
        await self._notify()
        # The real upload endpoint answers a plain-text 200, not JSON.
        return web.Response(text=f"OK - {len(data)}")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.responses[key].append(body)
        await self._notify()
        return web.Response(text="ok")

    # ----------------------------------------------------------------- Socket Mode

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        # autoping answers slack_sdk's "sdk-ping-pong:<t>" pings with matching pongs, as Slack does.
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.socket_connects += 1
        await self._notify()
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {"host": "fake-slack", "build_number": 1, "approximate_connection_time": 3600},
                    "connection_info": {"app_id": self.app_id},
                }
            )
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                envelope_id = data.get("envelope_id") if isinstance(data, dict) else None
                if envelope_id:
                    self.socket_acks.append(data)
                    fut = self._acks.get(envelope_id)
                    if fut is not None and not fut.done():
                        fut.set_result(data)
        finally:
            self._sockets.remove(ws)
            await self._notify()
        return ws

    @property
    def socket_connections(self) -> int:
        """Connections open now."""
        return len(self._open_sockets())

    def _open_sockets(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self._sockets if not ws.closed]

    async def wait_socket_connected(self, timeout: float = 5.0, *, count: int = 1) -> None:
        """Wait until ``count`` connections have been made in all (a reconnect makes 2) and one is open."""

        def ready() -> bool:
            return self.socket_connects >= count and bool(self._open_sockets())

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(ready), timeout)

    async def socket_send_envelope(
        self,
        payload_type: str,
        payload: JsonDict,
        *,
        timeout: float = 5.0,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> JsonDict:
        """Push an envelope to the newest open Socket Mode connection and return the client's ack.

        Waits up to ``timeout`` for a connection and then for the ack; raises TimeoutError otherwise.
        """
        await self.wait_socket_connected(timeout)
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope: JsonDict = {"envelope_id": envelope_id, "type": payload_type, "payload": payload}
        if payload_type == "events_api":
            # Slack does not take a response payload for events, and marks redeliveries.
            envelope.update(
                {"accepts_response_payload": False, "retry_attempt": retry_attempt, "retry_reason": retry_reason}
            )
        else:
            envelope["accepts_response_payload"] = True
        fut: asyncio.Future[JsonDict] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = fut
        try:
            await self._open_sockets()[-1].send_json(envelope)
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._acks.pop(envelope_id, None)

    async def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask connected clients to reconnect, as Slack does periodically ("disconnect" message)."""
        for ws in self._open_sockets():
            await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}})


# --------------------------------------------------------------------- Block Kit validation

_TEXT_TYPES = ("plain_text", "mrkdwn")


def _too_long(pointer: str, limit: int) -> str:
    # Slack's wording: "must be less than 3001 characters [json-pointer:/blocks/0/text/text]".
    return f"must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _check_text(obj: Any, pointer: str, limit: int, errors: list[str], *, plain_only: bool = False) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or "type" not in obj:
        errors.append(f"must provide an object with type and text [json-pointer:{pointer}]")
        return
    allowed = ("plain_text",) if plain_only else _TEXT_TYPES
    if obj["type"] not in allowed:
        errors.append(f"must be one of {', '.join(allowed)} [json-pointer:{pointer}/type]")
    text = obj["text"]
    if not text:
        errors.append(f"must be more than 0 characters [json-pointer:{pointer}/text]")
    elif len(text) > limit:
        errors.append(_too_long(f"{pointer}/text", limit))


def _check_str(value: Any, pointer: str, limit: int, errors: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        errors.append(f"must be a string [json-pointer:{pointer}]")
    elif len(value) > limit:
        errors.append(_too_long(pointer, limit))


def _check_element(el: Any, pointer: str, errors: list[str]) -> None:
    if not isinstance(el, dict) or "type" not in el:
        errors.append(f"must provide an object with type [json-pointer:{pointer}]")
        return
    _check_str(el.get("action_id"), f"{pointer}/action_id", 255, errors)
    kind = el["type"]
    if kind == "button":
        _check_text(el.get("text"), f"{pointer}/text", 75, errors, plain_only=True)
        _check_str(el.get("value"), f"{pointer}/value", 2000, errors)
        _check_str(el.get("url"), f"{pointer}/url", 3000, errors)
        if el.get("style") not in (None, "primary", "danger"):
            errors.append(f"must be one of primary, danger [json-pointer:{pointer}/style]")
    elif kind in ("static_select", "multi_static_select", "radio_buttons", "checkboxes", "overflow"):
        if "placeholder" in el:
            _check_text(el["placeholder"], f"{pointer}/placeholder", 150, errors, plain_only=True)
        options = el.get("options")
        if options is None and "option_groups" not in el:
            errors.append(f"must provide options or option_groups [json-pointer:{pointer}]")
        elif options is not None:
            if not isinstance(options, list) or not options:
                errors.append(f"must provide a non-empty array [json-pointer:{pointer}/options]")
            else:
                if len(options) > 100:
                    errors.append(f"no more than 100 items allowed [json-pointer:{pointer}/options]")
                for i, opt in enumerate(options):
                    p = f"{pointer}/options/{i}"
                    if not isinstance(opt, dict):
                        errors.append(f"must provide an object [json-pointer:{p}]")
                        continue
                    _check_text(opt.get("text"), f"{p}/text", 75, errors, plain_only=kind.endswith("select"))
                    _check_str(opt.get("value"), f"{p}/value", 150, errors)
    elif kind == "plain_text_input":
        if "placeholder" in el:
            _check_text(el["placeholder"], f"{pointer}/placeholder", 150, errors, plain_only=True)
        _check_str(el.get("initial_value"), f"{pointer}/initial_value", 3000, errors)
        max_length = el.get("max_length")
        if max_length is not None and (not isinstance(max_length, int) or not 0 < max_length <= 3000):
            errors.append(f"must be between 1 and 3000 [json-pointer:{pointer}/max_length]")


def validate_blocks(blocks: Any, *, max_blocks: int, pointer: str = "/blocks") -> list[str]:
    """Slack-style error strings for the Block Kit limits the service can plausibly hit; [] when valid."""
    if not isinstance(blocks, list):
        return [f"must provide an array [json-pointer:{pointer}]"]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"no more than {max_blocks} items allowed [json-pointer:{pointer}]")
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        p = f"{pointer}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"must provide an object with type [json-pointer:{p}]")
            continue
        block_id = block.get("block_id")
        _check_str(block_id, f"{p}/block_id", 255, errors)
        if isinstance(block_id, str):
            if block_id in seen_ids:
                errors.append(f"duplicate block_id [json-pointer:{p}/block_id]")
            seen_ids.add(block_id)
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"must provide text or fields [json-pointer:{p}]")
            if "text" in block:
                _check_text(block["text"], f"{p}/text", 3000, errors)
            if "fields" in block:
                fields = block["fields"]
                if not isinstance(fields, list):
                    errors.append(f"must provide an array [json-pointer:{p}/fields]")
                else:
                    if len(fields) > 10:
                        errors.append(f"no more than 10 items allowed [json-pointer:{p}/fields]")
                    for j, f in enumerate(fields):
                        _check_text(f, f"{p}/fields/{j}", 2000, errors)
            if "accessory" in block:
                _check_element(block["accessory"], f"{p}/accessory", errors)
        elif kind == "header":
            _check_text(block.get("text"), f"{p}/text", 150, errors, plain_only=True)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                errors.append(f"must provide a non-empty array [json-pointer:{p}/elements]")
            else:
                if len(elements) > 25:
                    errors.append(f"no more than 25 items allowed [json-pointer:{p}/elements]")
                for j, el in enumerate(elements):
                    _check_element(el, f"{p}/elements/{j}", errors)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                errors.append(f"must provide a non-empty array [json-pointer:{p}/elements]")
            else:
                if len(elements) > 10:
                    errors.append(f"no more than 10 items allowed [json-pointer:{p}/elements]")
                for j, el in enumerate(elements):
                    if isinstance(el, dict) and el.get("type") in _TEXT_TYPES:
                        _check_text(el, f"{p}/elements/{j}", 3000, errors)
        elif kind == "input":
            _check_text(block.get("label"), f"{p}/label", 2000, errors, plain_only=True)
            if "hint" in block:
                _check_text(block["hint"], f"{p}/hint", 2000, errors, plain_only=True)
            if "element" not in block:
                errors.append(f"must provide an element [json-pointer:{p}]")
            else:
                _check_element(block["element"], f"{p}/element", errors)
    return errors


def validate_view(view: JsonDict) -> list[str]:
    """Errors for a modal/home view as Slack reports them (json-pointers under /view)."""
    errors: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        errors.append("must be one of modal, home [json-pointer:/view/type]")
    if kind == "modal":
        _check_text(view.get("title"), "/view/title", 24, errors, plain_only=True)
        for key in ("submit", "close"):
            if key in view and view[key] is not None:
                _check_text(view[key], f"/view/{key}", 24, errors, plain_only=True)
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and not view.get("submit"):
            errors.append("must provide submit when blocks contain an input [json-pointer:/view/submit]")
    _check_str(view.get("callback_id"), "/view/callback_id", 255, errors)
    _check_str(view.get("private_metadata"), "/view/private_metadata", 3000, errors)
    _check_str(view.get("external_id"), "/view/external_id", 255, errors)
    errors.extend(validate_blocks(view.get("blocks"), max_blocks=100, pointer="/view/blocks"))
    return errors
