"""Corroboration: name normalisation (pure) and linking records about the same body and supplier."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlalchemy.engine import Engine

from bot import drafts, intake
from bot.corroboration import corroborating, keys, normalise_body, normalise_supplier
from bot.decisions import decide, edit_fields
from bot.review import Action
from bot.settings import Settings
from storage import repo
from storage.db import unit_of_work


@pytest.mark.parametrize(("a", "b"), [
    ("Kent County Council", "Kent CC"),
    ("Kent County Council", "KENT COUNTY COUNCIL."),
    ("Kent County Council", "  kent   county  council "),
    ("The Kent County Council", "Kent C.C."),
    ("Dacorum Borough Council", "Dacorum BC"),
    ("Wigan Metropolitan Borough Council", "Wigan MBC"),
    ("London Borough of Camden", "Camden London Borough Council"),
    ("London Borough of Camden", "Camden LBC"),
    ("London Borough of Camden", "LB Camden"),
    ("Royal Borough of Greenwich", "Greenwich RBC"),
    ("Leeds Teaching Hospitals NHS FT", "Leeds Teaching Hospitals NHS Foundation Trust"),
    ("Brighton & Hove City Council", "Brighton and Hove City Council"),
    ("City of Bradford Council", "Bradford City Council"),
    ("Dept for Work & Pensions", "Department for Work and Pensions"),
])
def test_same_public_body(a: str, b: str) -> None:
    assert normalise_body(a) == normalise_body(b) != ""


@pytest.mark.parametrize(("a", "b"), [
    ("Kent County Council", "Kent Council"),
    ("Kent County Council", "Essex County Council"),
    ("London Borough of Camden", "Camden"),
    ("Leeds City Council", "Leeds Teaching Hospitals NHS Foundation Trust"),
])
def test_different_public_bodies(a: str, b: str) -> None:
    assert normalise_body(a) != normalise_body(b)


@pytest.mark.parametrize(("a", "b"), [
    ("Capita plc", "Capita"),
    ("Capita PLC", "capita limited"),
    ("Serco Ltd.", "SERCO"),
    ("Marks & Spencer", "Marks and Spencer plc"),
    ("Atos IT Services UK Ltd", "Atos IT Services UK Limited"),
    ("Kier Group plc", "Kier Group"),
    ("Mitie Group plc", "mitie group PLC."),
])
def test_same_supplier(a: str, b: str) -> None:
    assert normalise_supplier(a) == normalise_supplier(b) != ""


@pytest.mark.parametrize(("a", "b"), [
    ("Capita", "Capita Business Services"),
    ("Kier Group", "Kier"),
    ("Serco", "Sodexo"),
])
def test_different_suppliers(a: str, b: str) -> None:
    assert normalise_supplier(a) != normalise_supplier(b)


def test_empty_names_have_no_key() -> None:
    assert normalise_body(None) == normalise_body("") == normalise_body(" . ") == ""
    assert normalise_supplier(None) == normalise_supplier("Ltd") == normalise_supplier(" , ") == ""
    assert keys(None, "Ltd") == {"body_key": None, "supplier_key": None}
    assert keys("Kent CC", "Capita plc") == {"body_key": "kent county council", "supplier_key": "capita"}


def _file(engine: Engine, settings: Settings, n: int, body: str | None, supplier: str | None) -> str:
    m = EmailMessage()
    m["From"] = f"Person {n} <p{n}@example.org>"
    m["To"] = "evidence@localhost"
    m["Subject"] = f"Evidence {n}"
    m["Message-ID"] = f"<corr-{n}@example.org>"
    lines = [f"Public body: {body}" if body else "", f"Supplier: {supplier}" if supplier else ""]
    m.set_content("\n".join(x for x in lines if x) + "\n\nThe contract went badly in several ways.\n")
    intake.store_now(engine, drafts.draft(bytes(m), envelope_from=f"p{n}@example.org", rcpts=["evidence@localhost"]))
    (filed,) = intake.process_pending(engine, settings)
    assert filed.reference
    return filed.reference


def also(engine: Engine, reference: str) -> list[str]:
    with unit_of_work(engine) as s:
        sub = repo.get_submission(s, reference=reference)
        assert sub is not None and sub.id is not None
        return corroborating(s, submission_id=sub.id)


def test_records_about_the_same_contract_are_linked(engine: Engine, settings: Settings) -> None:
    a = _file(engine, settings, 1, "Kent County Council", "Capita plc")
    b = _file(engine, settings, 2, "Kent CC", "CAPITA LIMITED")
    c = _file(engine, settings, 3, "kent county council.", "Capita")
    other_supplier = _file(engine, settings, 4, "Kent County Council", "Serco")
    other_body = _file(engine, settings, 5, "Essex County Council", "Capita")
    no_supplier = _file(engine, settings, 6, "Kent County Council", None)
    assert also(engine, a) == [b, c]
    assert also(engine, b) == [a, c]
    assert also(engine, other_supplier) == [] and also(engine, other_body) == []
    assert also(engine, no_supplier) == []  # both names are needed to link

    # Rejected and withdrawn records no longer corroborate anything.
    decide(engine, settings, reference=c, action=Action.REJECT, actor="cli:sam", reason="duplicate")
    assert also(engine, a) == [b]
    # An edit re-keys the record: now it is about Serco, with the other Serco record.
    edit_fields(engine, reference=b, actor="cli:sam", changes={"supplier": "Serco Ltd"})
    assert also(engine, a) == []
    assert also(engine, other_supplier) == [b]
    with unit_of_work(engine) as s:
        assert corroborating(s, submission_id=999_999) == []
