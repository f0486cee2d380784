"""Block Kit modals: the submission form and the reviewers' reject, needs-info and edit forms.

Each input's block_id and action_id are the field's name, so a submission's `state.values` maps
straight back onto field names and `response_action: errors` can be keyed by the same names.
Initial values are plain_text (Slack shows them as typed), so they are cut to Slack's limits but
not escaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from bot.parsing.slack_form import FORM, MAX_EVIDENCE, OUTCOMES
from bot.review import MAX_REASON

JsonDict = dict[str, Any]

SUBMIT = "evidence_submit"
REJECT = "review_reject"
NEEDS_INFO = "review_needs_info"
EDIT = "review_edit"

INPUT_MAX = 3000  # plain_text_input initial_value and max_length
SINGLE_LINE_MAX = 500  # one-line fields: a name or a period, never an essay
METADATA_MAX = 3000
YES_NO = (("no", "No"), ("yes", "Yes, do not name me"))

# The edit form, in EDITABLE's order: (name, label, multiline).
EDIT_FIELDS = (
    ("title", "Title", False),
    ("project", "Project", False),
    ("public_body", "Public body", False),
    ("supplier", "Supplier", False),
    ("service_area", "Service area", False),
    ("outcome", "Outcome", False),
    ("contract_value_gbp", "Contract value (£)", False),
    ("savings_gbp", "Savings (£)", False),
    ("period", "Period", False),
    ("confidential", "Confidential", False),
    ("declared_interests", "Declaration of interests", True),
    ("summary", "Summary", True),
)


def _plain(text: str) -> JsonDict:
    return {"type": "plain_text", "text": text, "emoji": True}


def _option(value: str, label: str) -> JsonDict:
    return {"text": _plain(label), "value": value}


def _cut_initial(text: str | None, limit: int) -> str | None:
    text = (text or "").strip()
    return text[:limit] or None


def text_input(
    name: str, label: str, *, multiline: bool = False, optional: bool = True, initial: str | None = None,
    max_length: int | None = None, hint: str | None = None, placeholder: str | None = None,
) -> JsonDict:
    limit = max_length or (INPUT_MAX if multiline else SINGLE_LINE_MAX)
    element: JsonDict = {"type": "plain_text_input", "action_id": name, "multiline": multiline, "max_length": limit}
    value = _cut_initial(initial, limit)
    if value:
        element["initial_value"] = value
    if placeholder:
        element["placeholder"] = _plain(placeholder)
    block: JsonDict = {"type": "input", "block_id": name, "optional": optional, "label": _plain(label),
                       "element": element}
    if hint:
        block["hint"] = _plain(hint)
    return block


def select_input(
    name: str, label: str, options: tuple[tuple[str, str], ...], *, initial: str | None = None,
    optional: bool = True, placeholder: str = "Choose…",
) -> JsonDict:
    element: JsonDict = {"type": "static_select", "action_id": name, "placeholder": _plain(placeholder),
                         "options": [_option(v, t) for v, t in options]}
    chosen = next(((v, t) for v, t in options if v == initial), None)
    if chosen:
        element["initial_option"] = _option(*chosen)
    return {"type": "input", "block_id": name, "optional": optional, "label": _plain(label), "element": element}


def _modal(callback_id: str, title: str, submit: str, blocks: list[JsonDict], metadata: str = "") -> JsonDict:
    assert len(title) <= 24 and len(submit) <= 24, "Slack refuses longer modal titles and buttons"
    return {"type": "modal", "callback_id": callback_id, "title": _plain(title), "submit": _plain(submit),
            "close": _plain("Cancel"), "private_metadata": metadata[:METADATA_MAX], "blocks": blocks}


_MONEY_HINT = "£45m, £750k or 4,200,000"


def submission_modal(prefill: Mapping[str, str | None] | None = None) -> JsonDict:
    """The evidence form; `prefill` (input name -> text) fills it in, e.g. from a message shortcut."""
    pre = dict(prefill or {})
    blocks: list[JsonDict] = [{"type": "section", "text": {"type": "mrkdwn", "text": (
        "Tell us about one outsourcing or shared-services arrangement. You get a reference number by "
        "direct message; the reviewers decide what goes into the evidence.")}}]
    for name, label, multiline, required in FORM:
        if name == "evidence":
            # The outcome sits just before the story, where a person thinks about it.
            blocks.append(select_input("outcome", "How did it turn out?", OUTCOMES, initial=pre.get("outcome")))
        blocks.append(text_input(
            name, label, multiline=multiline, optional=not required, initial=pre.get(name),
            max_length=MAX_EVIDENCE if name == "evidence" else None,
            hint=_MONEY_HINT if name in ("contract_value", "savings") else None,
        ))
    blocks.append(select_input("confidential", "Keep my name confidential?", YES_NO,
                               initial=pre.get("confidential") or "no"))
    return _modal(SUBMIT, "Submit evidence", "Submit", blocks)


def review_metadata(reference: str, channel: str | None, ts: str | None) -> str:
    return json.dumps({"reference": reference, "channel": channel, "ts": ts}, separators=(",", ":"))


def parse_metadata(text: str | None) -> JsonDict:
    """The reference (and where the summary lives) that a review modal was opened for; {} if unreadable."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("reference"), str) else {}


def reject_modal(reference: str, channel: str | None = None, ts: str | None = None) -> JsonDict:
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"Rejecting *{reference}*. The submitter is told "
                                                               "the reason, so write it for them."}},
        text_input("reason", "Reason", multiline=True, optional=False, max_length=MAX_REASON),
    ]
    return _modal(REJECT, f"Reject {reference}"[:24], "Reject", blocks, review_metadata(reference, channel, ts))


def needs_info_modal(reference: str, channel: str | None = None, ts: str | None = None) -> JsonDict:
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"Ask the submitter of *{reference}* for more "
                                                               "information. They receive your question as is."}},
        text_input("question", "What do you need to know?", multiline=True, optional=False, max_length=MAX_REASON),
    ]
    return _modal(NEEDS_INFO, "Ask for information", "Send question", blocks,
                  review_metadata(reference, channel, ts))


def _edit_initial(name: str, value: object) -> str | None:
    if value is None:
        return None
    if name in ("contract_value_gbp", "savings_gbp"):
        return str(int(value))  # type: ignore[call-overload]  # plain pounds: parse_money reads them back exactly
    if name == "confidential":
        return "yes" if value else "no"
    return str(value)


def edit_modal(reference: str, current: Mapping[str, object], channel: str | None = None,
               ts: str | None = None) -> JsonDict:
    """The record's EDITABLE fields, prefilled; every input is optional so a field can be cleared."""
    blocks: list[JsonDict] = []
    for name, label, multiline in EDIT_FIELDS:
        initial = _edit_initial(name, current.get(name))
        if name == "outcome":
            blocks.append(select_input(name, label, OUTCOMES, initial=initial or "unknown", optional=False))
        elif name == "confidential":
            blocks.append(select_input(name, label, YES_NO, initial=initial or "no", optional=False))
        else:
            blocks.append(text_input(name, label, multiline=multiline, initial=initial,
                                     hint="Whole pounds, or £45m, £750k" if name.endswith("_gbp") else None))
    return _modal(EDIT, f"Edit {reference}"[:24], "Save", blocks, review_metadata(reference, channel, ts))


def values_of(view: Mapping[str, Any]) -> dict[str, str | None]:
    """`state.values` as {block_id: text}: text inputs give their value, selects their option's value."""
    out: dict[str, str | None] = {}
    state = (view.get("state") or {}).get("values") or {}
    for block_id, actions in state.items():
        for element in (actions or {}).values():
            if not isinstance(element, dict):
                continue
            if "selected_option" in element:
                option = element.get("selected_option") or {}
                out[block_id] = option.get("value")
            else:
                out[block_id] = element.get("value")
    return out


def initial_values(view: Mapping[str, Any]) -> dict[str, str | None]:
    """What each input of a submitted view was opened with, {block_id: text}, read from the view's
    own blocks (Slack sends them back with the state); the same shape as `values_of`."""
    out: dict[str, str | None] = {}
    for block in view.get("blocks") or []:
        if not isinstance(block, dict) or block.get("type") != "input" or not block.get("block_id"):
            continue
        element = block.get("element") or {}
        if "options" in element:
            out[block["block_id"]] = (element.get("initial_option") or {}).get("value")
        else:
            out[block["block_id"]] = element.get("initial_value")
    return out


def touched(view: Mapping[str, Any]) -> dict[str, str | None]:
    """The inputs of a submitted view whose value the person changed from what the form showed.

    A form prefilled from a record holds a copy of it as it was when opened (one-line inputs cut
    to 500 characters): saving every input would put that copy back over a colleague's
    correction, an erasure, or the uncut text. Without the view's blocks, every input counts.
    """
    values = values_of(view)
    shown = initial_values(view)
    return {k: v for k, v in values.items() if k not in shown or (v or "").strip() != (shown[k] or "").strip()}


_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def plain_from_message(text: str | None) -> str:
    """A Slack message's text as a person reads it: `<@U1>` → @U1, `<url|label>` → label (url),
    `<!channel>` → @channel, entities decoded. Used to prefill plain-text inputs."""

    def repl(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith(("@", "#")):
            return f"{target[0]}{label}" if label else target
        if target.startswith("!"):
            word = target[1:].split("^", 1)[0]
            return label or f"@{word}"
        return f"{label} ({target})" if label and label != target else target

    plain = _LINK.sub(repl, text or "")
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
