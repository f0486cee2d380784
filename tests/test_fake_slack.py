"""The Slack stand-in behaves like Slack for the real slack_sdk clients (Web API and Socket Mode)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from tests.support.slack_api import UPLOAD, FakeSlack
from tests.support.slack_requests import (
    block_action_payload,
    interaction_body,
    message_action_payload,
    post_signed,
    select_value,
    sign,
    slash_command_body,
    view_submission_payload,
)


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def client(slack: FakeSlack, token: str = "xoxb-test", timeout: int = 30) -> AsyncWebClient:
    # No session passed: slack_sdk opens and closes one per request, so nothing is left unclosed.
    return AsyncWebClient(token=token, base_url=slack.api_url, timeout=timeout)


async def test_post_and_update_message() -> None:
    async with FakeSlack() as slack:
        web_client = client(slack)
        auth = await web_client.auth_test()
        assert auth["user_id"] == slack.bot_user_id

        posted = await web_client.chat_postMessage(channel="C1", text="Review 1", blocks=[section("*Review* 1")])
        ts = posted["ts"]
        assert posted["channel"] == "C1" and posted["message"]["text"] == "Review 1"
        other = await web_client.chat_postMessage(channel="C2", text="x")
        assert float(other["ts"]) > float(ts)

        updated = await web_client.chat_update(channel="C1", ts=ts, text="Review 1 (done)", blocks=[section("done")])
        assert updated["ts"] == ts
        assert slack.messages[("C1", ts)]["text"] == "Review 1 (done)"
        assert slack.messages[("C1", ts)]["blocks"] == [section("done")]
        # posted_messages keeps the message as first posted.
        assert [m["text"] for m in slack.posted_messages("C1")] == ["Review 1"]

        with pytest.raises(SlackApiError) as err:
            await web_client.chat_update(channel="C1", ts="1.000000", text="nope")
        assert err.value.response["error"] == "message_not_found"

        await web_client.chat_delete(channel="C1", ts=ts)
        assert ("C1", ts) not in slack.messages
        assert [c.method for c in slack.calls].count("chat.postMessage") == 2


async def test_form_encoded_call_with_json_string_blocks() -> None:
    async with FakeSlack() as slack:
        # api_call with data= sends a form body; Slack takes blocks as a JSON string there.
        res = await client(slack).api_call(
            "chat.postMessage", data={"channel": "C1", "text": "t", "blocks": json.dumps([section("hi")])}
        )
        assert res["ok"]
        assert slack.calls_to("chat.postMessage")[0].args["blocks"] == [section("hi")]


async def test_bad_tokens() -> None:
    async with FakeSlack() as slack:
        with pytest.raises(SlackApiError) as err:
            await client(slack, token="xoxb-wrong").chat_postMessage(channel="C1", text="x")
        assert err.value.response.status_code == 200
        assert err.value.response["error"] == "invalid_auth"

        with pytest.raises(SlackApiError) as err:
            await AsyncWebClient(base_url=slack.api_url).chat_postMessage(channel="C1", text="x")
        assert err.value.response["error"] == "not_authed"

        with pytest.raises(SlackApiError) as err:
            await client(slack, token="xapp-test").chat_postMessage(channel="C1", text="x")
        assert err.value.response["error"] == "not_allowed_token_type"
        assert not slack.posted_messages()
        assert all(c.rejected for c in slack.calls)


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section(f"b{i}") for i in range(51)], "/blocks]"),
        ([section("x" * 3001)], "/blocks/0/text/text]"),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"} for _ in range(11)]}],
            "/blocks/0/fields]",
        ),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], "/blocks/0/text/type]"),
        ([{"type": "section", "text": {"text": "no type"}}], "/blocks/0/text]"),
        (
            [{"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}]}],
            "/blocks/0/elements/0/text/text]",
        ),
    ],
)
async def test_invalid_blocks_rejected(blocks: list[dict], pointer: str) -> None:
    async with FakeSlack() as slack:
        with pytest.raises(SlackApiError) as err:
            await client(slack).chat_postMessage(channel="C1", text="x", blocks=blocks)
        assert err.value.response["error"] == "invalid_blocks"
        assert any(e.endswith(pointer) for e in err.value.response["errors"]), err.value.response["errors"]
        (call,) = slack.calls_to("chat.postMessage")
        assert call.rejected and call.error == "invalid_blocks"
        assert slack.posted_messages() == []


async def test_blocks_at_the_limits_accepted() -> None:
    async with FakeSlack(post_interval=0) as slack:
        web_client = client(slack)
        await web_client.chat_postMessage(channel="C1", text="x", blocks=[section(f"{i}") for i in range(50)])
        await web_client.chat_postMessage(channel="C1", text="x", blocks=[section("x" * 3000)])
        fields = [{"type": "mrkdwn", "text": "f" * 2000} for _ in range(10)]
        await web_client.chat_postMessage(channel="C1", text="x", blocks=[{"type": "section", "fields": fields}])
        assert len(slack.posted_messages("C1")) == 3


async def test_rate_limit_per_channel() -> None:
    async with FakeSlack() as slack:
        web_client = client(slack)
        await web_client.chat_postMessage(channel="C1", text="first")
        await web_client.chat_postMessage(channel="C2", text="other channel is fine")
        with pytest.raises(SlackApiError) as err:
            await web_client.chat_postMessage(channel="C1", text="too soon")
        assert err.value.response.status_code == 429
        assert err.value.response.headers["Retry-After"] == "1"
        assert err.value.response["error"] == "ratelimited"
        assert [c.rate_limited for c in slack.calls_to("chat.postMessage")] == [False, False, True]
        assert [m["text"] for m in slack.posted_messages("C1")] == ["first"]

        await asyncio.sleep(1.05)
        await web_client.chat_postMessage(channel="C1", text="later")
        assert [m["text"] for m in slack.posted_messages("C1")] == ["first", "later"]


async def test_fail_next_500_and_429() -> None:
    async with FakeSlack() as slack:
        web_client = client(slack)
        slack.fail_next("chat.postMessage", status=500, count=2)
        for _ in range(2):
            with pytest.raises(SlackApiError) as err:
                await web_client.chat_postMessage(channel="C1", text="x")
            assert err.value.response.status_code == 500
        slack.fail_next("chat.update", status=429, retry_after=2)
        with pytest.raises(SlackApiError) as err:
            await web_client.chat_update(channel="C1", ts="1.0", text="x")
        assert err.value.response.status_code == 429
        assert err.value.response.headers["Retry-After"] == "2"
        await web_client.chat_postMessage(channel="C1", text="x")
        assert len(slack.posted_messages("C1")) == 1


async def test_error_next_and_hang_next() -> None:
    async with FakeSlack() as slack:
        slack.error_next("chat.postMessage", "channel_not_found")
        with pytest.raises(SlackApiError) as err:
            await client(slack).chat_postMessage(channel="C1", text="x")
        assert err.value.response.status_code == 200
        assert err.value.response["error"] == "channel_not_found"

        slack.hang_next("chat.postMessage", 2.0)
        with pytest.raises(asyncio.TimeoutError):
            await client(slack, timeout=1).chat_postMessage(channel="C1", text="slow")
        # Like Slack, the post still happens after the client gave up.
        await slack.wait_for_calls("chat.postMessage", 2, timeout=3)
        assert [m["text"] for m in slack.posted_messages("C1")] == ["slow"]


async def test_hang_is_cut_short_at_close() -> None:
    slack = await FakeSlack().start()
    slack.hang_next("auth.test", 30)
    task = asyncio.ensure_future(client(slack).auth_test())
    await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await slack.close()
    assert loop.time() - started < 5
    # The hang ends at close and the call is answered rather than left to time out.
    assert (await task)["ok"]


async def test_dm_usergroups_and_users() -> None:
    async with FakeSlack() as slack:
        slack.usergroups = {"S123": ["U1", "U2"]}
        slack.add_user("U1", "alice")
        web_client = client(slack)
        assert (await web_client.usergroups_users_list(usergroup="S123"))["users"] == ["U1", "U2"]
        with pytest.raises(SlackApiError) as err:
            await web_client.usergroups_users_list(usergroup="S999")
        assert err.value.response["error"] == "no_such_subteam"

        dm = (await web_client.conversations_open(users="U1"))["channel"]["id"]
        assert dm.startswith("D")
        posted = await web_client.chat_postMessage(channel="U1", text="to the user")
        assert posted["channel"] == dm

        assert (await web_client.users_info(user="U1"))["user"]["name"] == "alice"
        with pytest.raises(SlackApiError) as err:
            await web_client.users_info(user="U404")
        assert err.value.response["error"] == "user_not_found"


async def test_ephemeral() -> None:
    async with FakeSlack() as slack:
        res = await client(slack).chat_postEphemeral(channel="C1", user="U1", text="only you", blocks=[section("s")])
        assert res["message_ts"]
        assert slack.ephemerals[0]["user"] == "U1" and slack.ephemerals[0]["text"] == "only you"
        assert slack.posted_messages() == []


async def test_file_upload_v2() -> None:
    async with FakeSlack() as slack:
        res = await client(slack).files_upload_v2(
            channel="C1", content=b"a,b\n1,2\n", filename="export.csv", title="Export", initial_comment="Here"
        )
        file_id = res["file"]["id"]
        assert slack.uploads[file_id] == b"a,b\n1,2\n"
        meta = slack.files[file_id]
        assert meta["completed"] and meta["channel_id"] == "C1"
        assert meta["title"] == "Export" and meta["initial_comment"] == "Here"
        methods = [c.method for c in slack.calls]
        assert methods == ["files.getUploadURLExternal", "files.completeUploadExternal"]


async def test_file_upload_failure_and_incomplete_upload() -> None:
    async with FakeSlack() as slack:
        web_client = client(slack)
        slack.fail_next(UPLOAD, status=500)
        with pytest.raises(SlackRequestError):
            await web_client.files_upload_v2(channel="C1", content="x", filename="x.txt")
        # Completing a file whose bytes never arrived fails.
        file_id = next(iter(slack.files))
        with pytest.raises(SlackApiError) as err:
            await web_client.files_completeUploadExternal(files=[{"id": file_id, "title": "x"}], channel_id="C1")
        assert err.value.response["error"] == "file_not_found"


def modal(title: str = "Evidence", n_blocks: int = 1) -> dict:
    return {
        "type": "modal",
        "callback_id": "evidence_edit",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [
            {
                "type": "input",
                "block_id": f"b{i}",
                "label": {"type": "plain_text", "text": "Summary"},
                "element": {"type": "plain_text_input", "action_id": "summary"},
            }
            for i in range(n_blocks)
        ],
    }


async def test_views() -> None:
    async with FakeSlack() as slack:
        web_client = client(slack)
        opened = (await web_client.views_open(trigger_id="T1", view=modal()))["view"]
        assert opened["id"].startswith("V") and opened["hash"]
        updated = (await web_client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Edited")))[
            "view"
        ]
        assert slack.views[opened["id"]]["title"]["text"] == "Edited"
        with pytest.raises(SlackApiError) as err:
            await web_client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Stale"))
        assert updated["hash"] != opened["hash"] and err.value.response["error"] == "hash_conflict"
        with pytest.raises(SlackApiError) as err:
            await web_client.views_update(view_id="V404", view=modal())
        assert err.value.response["error"] == "not_found"
        pushed = (await web_client.views_push(trigger_id="T2", view=modal("Step 2")))["view"]
        assert pushed["id"] != opened["id"]

        for bad in (modal("x" * 25), modal(n_blocks=101)):
            with pytest.raises(SlackApiError) as err:
                await web_client.views_open(trigger_id="T1", view=bad)
            assert err.value.response["error"] == "invalid_arguments"
        assert (await web_client.views_open(trigger_id="T1", view=modal("x" * 24, n_blocks=100)))["ok"]


async def test_socket_mode_with_real_client() -> None:
    async with FakeSlack() as slack:
        received: list[SocketModeRequest] = []

        async def listener(sm: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
            received.append(req)
            await sm.send_socket_mode_response(
                SocketModeResponse(envelope_id=req.envelope_id, payload={"text": "got it"})
            )

        web_client = client(slack)
        sm = SocketModeClient(app_token="xapp-test", web_client=web_client, auto_reconnect_enabled=False)
        sm.socket_mode_request_listeners.append(listener)
        try:
            await sm.connect()
            ack = await slack.socket_send_envelope("slash_commands", {"command": "/evidence", "text": "help"})
            assert ack["payload"] == {"text": "got it"}
            assert received[0].type == "slash_commands" and received[0].payload["text"] == "help"
            assert received[0].accepts_response_payload
            ack = await slack.socket_send_envelope("events_api", {"event": {"type": "app_mention"}})
            assert ack["envelope_id"] == received[1].envelope_id
        finally:
            await sm.close()
        assert [c.method for c in slack.calls] == ["apps.connections.open"]


async def test_socket_envelope_times_out_without_client() -> None:
    async with FakeSlack() as slack:
        with pytest.raises(TimeoutError):
            await slack.socket_send_envelope("interactive", {"type": "block_actions"}, timeout=0.2)


async def test_apps_connections_open_needs_app_token() -> None:
    async with FakeSlack() as slack:
        with pytest.raises(SlackApiError) as err:
            await client(slack).apps_connections_open(app_token="xoxb-test")
        assert err.value.response["error"] == "not_allowed_token_type"


def test_sign_matches_slack_sdk_verifier() -> None:
    body = slash_command_body(text="find supplier acme")
    headers = sign(body, "s3cret")
    assert SignatureVerifier("s3cret").is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    old = sign(body, "s3cret", timestamp=1_600_000_000)
    assert not SignatureVerifier("s3cret").is_valid_request(body, old)  # stale timestamp


def test_bodies_have_slack_shapes() -> None:
    form = parse_qs(slash_command_body(text="a b", user_id="U9").decode())
    assert form["text"] == ["a b"] and form["user_id"] == ["U9"] and form["command"] == ["/evidence"]
    payload = block_action_payload("approve", "42", "U1", "C1", "1700000000.000100", "T1")
    decoded = json.loads(parse_qs(interaction_body(payload).decode())["payload"][0])
    assert decoded["actions"][0]["value"] == "42" and decoded["container"]["message_ts"] == "1700000000.000100"
    sub = view_submission_payload("edit", {"summary": {"summary": "text"}, "area": {"pick": select_value("health")}})
    values = sub["view"]["state"]["values"]
    assert values["summary"]["summary"] == {"type": "plain_text_input", "value": "text"}
    assert values["area"]["pick"]["selected_option"]["value"] == "health"
    assert message_action_payload("save", "hello", "U1", "C1", "1.0", "T1")["message"]["text"] == "hello"


async def test_post_signed_reaches_a_server() -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/slack/events", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        body = slash_command_body()
        status, text = await post_signed(f"http://127.0.0.1:{port}/slack/events", body, "s3cret", retry_num=1)
        assert (status, text) == (200, "ok")
        headers, received = seen[0]
        assert received == body and headers["X-Slack-Retry-Num"] == "1"
        assert SignatureVerifier("s3cret").is_valid_request(received, headers)
    finally:
        await runner.cleanup()


async def test_response_url() -> None:
    async with FakeSlack() as slack:
        status, _ = await post_signed(
            slack.response_url("R1"), b'{"text": "done"}', "unused", content_type="application/json"
        )
        assert status == 200 and slack.responses["R1"] == [{"text": "done"}]


async def test_socket_mode_reconnects_after_disconnect_message() -> None:
    async with FakeSlack() as slack:
        acked: list[str] = []

        async def listener(sm: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
            acked.append(req.envelope_id)
            await sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

        sm = SocketModeClient(app_token="xapp-test", web_client=client(slack))
        sm.socket_mode_request_listeners.append(listener)
        try:
            await sm.connect()
            await slack.wait_socket_connected()
            await slack.socket_disconnect()
            # The client asks for a fresh URL and connects again; the old socket goes away.
            await slack.wait_socket_connected(count=2)
            assert len(slack.calls_to("apps.connections.open")) == 2
            ack = await slack.socket_send_envelope("interactive", {"type": "block_actions"})
            assert ack == {"envelope_id": acked[0]}
        finally:
            await sm.close()
