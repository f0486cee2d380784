"""Field extraction: template lines in their many real forms, and inference from British prose."""

from __future__ import annotations

import pytest

from bot.parsing.bodies import find_public_bodies, find_public_body, find_supplier
from bot.parsing.fields import extract_fields, infer_outcome, infer_period, make_summary
from bot.record import Outcome

FULL_TEMPLATE = """\
Project: Revenues and benefits outsourcing
Public body: Barnet London Borough Council
Supplier: Capita
Service area: Revenues and benefits
Contract value: £320m
Outcome: Failure
Savings: £12,000,000
Period: 2013 to 2023
Confidential: no
Declaration of interests: I worked for the council until 2019.

The contract was signed in 2013 after a long procurement.

Within two years the backlog of housing benefit claims had doubled."""


def test_full_template() -> None:
    f = extract_fields(FULL_TEMPLATE)
    assert f.project == "Revenues and benefits outsourcing"
    assert f.public_body == "Barnet London Borough Council"
    assert f.supplier == "Capita"
    assert f.service_area == "Revenues and benefits"
    assert f.contract_value_gbp == 320_000_000
    assert f.outcome is Outcome.FAILURE
    assert f.savings_gbp == 12_000_000
    assert f.period == "2013 to 2023"
    assert f.confidential is False
    assert f.declared_interests == "I worked for the council until 2019."
    assert f.prose == (
        "The contract was signed in 2013 after a long procurement.\n\n"
        "Within two years the backlog of housing benefit claims had doubled."
    )


@pytest.mark.parametrize(
    "line",
    [
        "Supplier: Capita",
        "SUPPLIER: Capita",
        "supplier: Capita",
        "Supplier : Capita",
        "- Supplier: Capita",
        "* Supplier: Capita",
        "• Supplier: Capita",
        "1. Supplier: Capita",
        "2) Supplier: Capita",
        "Supplier - Capita",
        "Supplier – Capita",
        "Supplier — Capita",
        "Supplier—Capita",
        "**Supplier:** Capita",
        "**Supplier**: Capita",
        "__Supplier__: Capita",
        "- **Supplier:** Capita",
        "Supplier | Capita",
        "| Supplier | Capita |",
        "Supplier\tCapita",
        "Contractor: Capita",
        "Provider: Capita",
        "Vendor: Capita",
    ],
)
def test_template_line_variants(line: str) -> None:
    f = extract_fields(f"{line}\n\nThe service was poor from the start.")
    assert f.supplier == "Capita"
    assert f.prose == "The service was poor from the start."


@pytest.mark.parametrize(
    ("line", "attr", "expected"),
    [
        ("Organisation: Kent County Council", "public_body", "Kent County Council"),
        ("Public sector body: Home Office", "public_body", "Home Office"),
        (
            "PUBLIC BODY: Leeds Teaching Hospitals NHS Trust",
            "public_body",
            "Leeds Teaching Hospitals NHS Trust",
        ),
        ("Authority: Cyngor Sir Ynys Môn", "public_body", "Cyngor Sir Ynys Môn"),
        ("Client: Ministry of Justice", "public_body", "Ministry of Justice"),
        ("Value: £45m", "contract_value_gbp", 45_000_000),
        ("Contract size: £3.25 million", "contract_value_gbp", 3_250_000),
        ("Total contract value: 7.5 million pounds", "contract_value_gbp", 7_500_000),
        ("Contract value: 4,200,000", "contract_value_gbp", 4_200_000),
        ("Contract value: £2.5m-£3m", "contract_value_gbp", 2_500_000),
        ("Savings achieved: £750k", "savings_gbp", 750_000),
        ("Cost savings: £12,000 a year", "savings_gbp", 12_000),
        ("Savings: £250,000", "savings_gbp", 250_000),
        ("Dates: April 2019 to March 2021", "period", "April 2019 to March 2021"),
        ("Timescale: 2015–2022", "period", "2015–2022"),
        ("Contract period: 10 years from 2014", "period", "10 years from 2014"),
        ("Sector: Waste and recycling", "service_area", "Waste and recycling"),
        ("Service: Fleet maintenance", "service_area", "Fleet maintenance"),
        ("Project: Payroll outsourcing", "project", "Payroll outsourcing"),
        ("Declared interests: None", "declared_interests", "None"),
        ("Interests: Former Serco employee", "declared_interests", "Former Serco employee"),
        ("Declaration of interests – I am a union rep", "declared_interests", "I am a union rep"),
    ],
)
def test_template_synonyms(line: str, attr: str, expected: object) -> None:
    f = extract_fields(f"{line}\nThe council has not published the figures.")
    assert getattr(f, attr) == expected
    assert f.prose == "The council has not published the figures."


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Success", Outcome.SUCCESS),
        ("successful", Outcome.SUCCESS),
        ("Positive", Outcome.SUCCESS),
        ("It worked", Outcome.SUCCESS),
        ("Failure", Outcome.FAILURE),
        ("failed", Outcome.FAILURE),
        ("Unsuccessful", Outcome.FAILURE),
        ("Terminated early", Outcome.FAILURE),
        ("not a success", Outcome.FAILURE),
        ("Mixed", Outcome.MIXED),
        ("Partial", Outcome.MIXED),
        ("partly successful", Outcome.MIXED),
        ("Too early to say", Outcome.UNKNOWN),
        ("", Outcome.UNKNOWN),
    ],
)
def test_template_outcome_values(value: str, expected: Outcome) -> None:
    assert extract_fields(f"Outcome: {value}\n\nSome text.").outcome is expected


def test_result_synonym_and_template_beats_prose() -> None:
    text = "Result: success\n\nThe contract collapsed in 2018 and was terminated early."
    assert extract_fields(text).outcome is Outcome.SUCCESS


def test_template_money_beats_prose() -> None:
    text = (
        "Contract value: £2m\nSavings: £250,000\n\n"
        "The contract, worth £45m, saved £1.2m according to the council."
    )
    f = extract_fields(text)
    assert f.contract_value_gbp == 2_000_000
    assert f.savings_gbp == 250_000


def test_empty_template_values_are_none() -> None:
    f = extract_fields("Supplier: N/A\nPublic body:\nContract value: unknown\n\nNo details yet.")
    assert f.supplier is None
    assert f.public_body is None
    assert f.contract_value_gbp is None
    assert f.prose == "No details yet."


def test_first_template_line_wins() -> None:
    f = extract_fields("Supplier: Serco\nSupplier: Capita\n\nText.")
    assert f.supplier == "Serco"


def test_unknown_keys_stay_in_prose() -> None:
    f = extract_fields("Note: this is from memory.\nSupplier: Atos\nBackground - long story.")
    assert f.supplier == "Atos"
    assert f.prose == "Note: this is from memory.\nBackground - long story."


def test_table_header_and_rule_rows_are_dropped() -> None:
    text = "Field | Value\n|---|---|\n| Supplier | Mitie |\n| Public body | Home Office |\n\nThe FM contract."
    f = extract_fields(text)
    assert f.supplier == "Mitie"
    assert f.public_body == "Home Office"
    assert f.prose == "The FM contract."


def test_prose_paragraphs_preserved_and_blank_runs_collapsed() -> None:
    text = "First paragraph line one.\nLine two.\n\nSupplier: Kier\n\n\nSecond paragraph."
    f = extract_fields(text)
    assert f.prose == "First paragraph line one.\nLine two.\n\nSecond paragraph."


def test_hyphenated_word_is_not_a_separator() -> None:
    f = extract_fields("Follow-up to my earlier email about the outcome.")
    assert f.prose == "Follow-up to my earlier email about the outcome."
    assert f.outcome is Outcome.UNKNOWN


# --- prose inference -----------------------------------------------------------------------

BARNET = (
    "In 2016 Barnet London Borough Council outsourced its back office to Capita in a ten-year "
    "£320m contract. Savings of £12m were promised but never materialised, and the service was "
    "brought back in-house in 2022."
)


def test_barnet_prose() -> None:
    f = extract_fields(BARNET)
    assert f.public_body == "Barnet London Borough Council"
    assert f.supplier == "Capita"
    assert f.contract_value_gbp == 320_000_000
    assert f.savings_gbp == 12_000_000
    assert f.outcome is Outcome.FAILURE
    assert f.service_area == "Back office"
    assert f.confidential is False
    assert f.prose == BARNET


@pytest.mark.parametrize(
    ("text", "contract", "savings"),
    [
        ("The council saved £1.2m in the first year.", None, 1_200_000),
        ("It saved the council £1.2m.", None, 1_200_000),
        ("The trust made savings of £300k.", None, 300_000),
        ("The new arrangement is £2m a year cheaper.", None, 2_000_000),
        ("Insourcing reduced costs by £500,000.", None, 500_000),
        ("It delivered £400k in savings.", None, 400_000),
        ("Savings were estimated at £2.5m.", None, 2_500_000),
        ("Kent signed a contract worth £45m with Veolia.", 45_000_000, None),
        ("The DWP let a £120m deal to Atos.", 120_000_000, None),
        ("The scheme was valued at £3.25 million.", 3_250_000, None),
        ("Serco won a 10-year £1bn contract.", 1_000_000_000, None),
        ("The £45m outsourcing contract was let in 2015.", 45_000_000, None),
        ("A contract worth £45m promised savings of £5m.", 45_000_000, 5_000_000),
        ("The £80m deal saved £4m a year.", 80_000_000, 4_000_000),
        ("The contract was £30 million and costs doubled.", 30_000_000, None),
        ("The contract value is £12.5m.", 12_500_000, None),
        ("The deal totalled £7m over five years.", 7_000_000, None),
        ("It was outsourced to Capita in 2014 for ten years at a cost of £90m.", 90_000_000, None),
        ("The ten-year deal (£175 million) ended in 2021.", 175_000_000, None),
        ("Hampshire contracted vehicle maintenance to a local firm, Acme Fleet Ltd, for £2.4m.", 2_400_000, None),
        ("The contract with CGI for the farm payments system cost £178m.", 178_000_000, None),
        ("The consultants cost £2m.", None, None),
        ("The prison maintenance contracts with Carillion and Amey (MoJ, 2015) cost £5bn.", 5_000_000_000, None),
        # Money that is neither: better null than wrong.
        ("The council spent £2m on consultants.", None, None),
        ("It went £5m over budget.", None, None),
        ("The contract was £2m over budget.", None, None),
        ("The contract was £3m more than planned.", None, None),
        ("The trust serves 2 million patients.", None, None),
    ],
)
def test_prose_money_disambiguation(text: str, contract: int | None, savings: int | None) -> None:
    f = extract_fields(text)
    assert (f.contract_value_gbp, f.savings_gbp) == (contract, savings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The contract delivered savings and exceeded targets in every year.", Outcome.SUCCESS),
        ("Frankly, the partnership was a success.", Outcome.SUCCESS),
        ("The migration went well and staff were happy.", Outcome.SUCCESS),
        ("The outsourcing of our IT went badly.", Outcome.FAILURE),
        ("Our revenues service went to Capita in 2014. It has been a complete nightmare.", Outcome.FAILURE),
        ("The system cost £178m, more than double the budget.", Outcome.FAILURE),
        ("Serco took over the cleaning. Quality fell and staff turnover tripled.", Outcome.FAILURE),
        ("Catering went to Chartwells. The food is worse and more expensive.", Outcome.FAILURE),
        ("Virgin Care ran it. It has gone OK, waiting lists are down.", Outcome.SUCCESS),
        ("HMRC outsourced debt collection; recovery rates improved by 20% and it went fine.", Outcome.SUCCESS),
        ("The savings were never realised.", Outcome.FAILURE),
        ("In-house it would have been more expensive, but it went well.", Outcome.SUCCESS),
        ("It went very badly: costs doubled within a year.", Outcome.FAILURE),
        ("Carillion went into administration in January 2018.", Outcome.FAILURE),
        ("The contract collapsed after two years.", Outcome.FAILURE),
        ("The deal was terminated early by mutual agreement.", Outcome.FAILURE),
        ("The service was brought back in-house after repeated complaints.", Outcome.FAILURE),
        ("The project overspent by a third.", Outcome.FAILURE),
        ("The supplier missed every target in the first year.", Outcome.FAILURE),
        ("The system was not a success.", Outcome.FAILURE),
        ("The new payroll system did not fail once during the changeover.", Outcome.SUCCESS),
        ("The contractor failed to deliver savings.", Outcome.FAILURE),
        (
            "The contract delivered savings in year one, but collapsed in year three.",
            Outcome.MIXED,
        ),
        ("It has been a mixed picture overall.", Outcome.MIXED),
        ("Performance was partly successful.", Outcome.MIXED),
        ("The council signed the contract in 2015.", Outcome.UNKNOWN),
    ],
)
def test_prose_outcome(text: str, expected: Outcome) -> None:
    assert infer_outcome(text) is expected
    assert extract_fields(text).outcome is expected


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("Kent County Council outsourced its highways to Amey.", "Kent County Council"),
        ("In 2016 Barnet London Borough Council signed up.", "Barnet London Borough Council"),
        ("The London Borough of Barnet signed up.", "London Borough of Barnet"),
        ("Birmingham City Council's payroll was run by Capita.", "Birmingham City Council"),
        ("Cyngor Sir Ynys Môn moved its IT to Civica.", "Cyngor Sir Ynys Môn"),
        ("Isle of Anglesey County Council moved its IT to Civica.", "Isle of Anglesey County Council"),
        (
            "Rhondda Cynon Taf County Borough Council kept refuse in-house.",
            "Rhondda Cynon Taf County Borough Council",
        ),
        ("Cyngor Bwrdeistref Sirol Wrecsam ran a trial.", "Cyngor Bwrdeistref Sirol Wrecsam"),
        (
            "The contract at Bwrdd Iechyd Prifysgol Cwm Taf Morgannwg.",
            "Bwrdd Iechyd Prifysgol Cwm Taf Morgannwg",
        ),
        ("Leeds Teaching Hospitals NHS Trust outsourced pathology.", "Leeds Teaching Hospitals NHS Trust"),
        (
            "Guy's and St Thomas' NHS Foundation Trust chose Serco.",
            "Guy's and St Thomas' NHS Foundation Trust",
        ),
        ("Betsi Cadwaladr University Health Board chose Atos.", "Betsi Cadwaladr University Health Board"),
        ("NHS England commissioned the work.", "NHS England"),
        ("The data went to NHS Digital.", "NHS Digital"),
        ("NHS Kent and Medway ICB ran the tender.", "NHS Kent and Medway ICB"),
        (
            "Hampshire and Isle of Wight Fire and Rescue Service outsourced its fleet.",
            "Hampshire and Isle of Wight Fire and Rescue Service",
        ),
        ("West Midlands Police signed with Accenture.", "West Midlands Police"),
        ("North West Ambulance Service used Fujitsu.", "North West Ambulance Service"),
        ("Avon and Somerset Constabulary used IBM.", "Avon and Somerset Constabulary"),
        (
            "Greater Manchester Combined Authority tendered the buses.",
            "Greater Manchester Combined Authority",
        ),
        ("The Department for Work and Pensions (DWP) used Atos.", "Department for Work and Pensions"),
        ("The Ministry of Justice let the tagging contract.", "Ministry of Justice"),
        ("The Home Office used G4S.", "Home Office"),
        ("The Cabinet Office ran the framework.", "Cabinet Office"),
        ("Stoke-on-Trent City Council ran it.", "Stoke-on-Trent City Council"),
        ("Our contact at HMRC said so.", "HMRC"),
        ("The DWP used Atos.", "DWP"),
        ("The MoJ used Serco.", "MoJ"),
        ("DVLA staff transferred.", "DVLA"),
        ("HMPPS took it back.", "HMPPS"),
        ("TfL ran it.", "TfL"),
        ("GMCA ran it.", "GMCA"),
        ("In March Kent County Council and Medway Council agreed.", "Kent County Council"),
        ("Capita and Barnet Council signed in 2013.", "Barnet Council"),
        # "the contract with Capita for X Council": the supplier is not part of the council's name
        ("The payroll contract with Capita for Barsetshire County Council failed.", "Barsetshire County Council"),
        ("Serco for Kent County Council ran the buses.", "Kent County Council"),
    ],
)
def test_public_body_in_prose(text: str, body: str) -> None:
    assert find_public_body(text) == body
    assert extract_fields(text).public_body == body


@pytest.mark.parametrize(
    "text",
    [
        "The council said the contract was going well.",
        "The Council said nothing. Our County Council was silent.",
        "Last year the authority renewed the contract.",
    ],
)
def test_no_public_body_from_common_words(text: str) -> None:
    assert find_public_body(text) is None
    assert extract_fields(text).public_body is None


def test_full_name_preferred_over_initials() -> None:
    text = "HMRC staff moved, as did those at the Department for Work and Pensions."
    assert find_public_body(text) == "Department for Work and Pensions"


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("Cyngor Bro Morgannwg outsourced leisure.", "Cyngor Bro Morgannwg"),
        ("The Vale's Cyngor Sir Ddinbych ran it.", "Cyngor Sir Ddinbych"),
        ("Cyngor Dinas a Sir Abertawe signed.", "Cyngor Dinas a Sir Abertawe"),
        ("Cyngor Sir Ceredigion's fleet.", "Cyngor Sir Ceredigion"),
        (
            "Cyngor Bwrdeistref Sirol Pen-y-bont ar Ogwr signed.",
            "Cyngor Bwrdeistref Sirol Pen-y-bont ar Ogwr",
        ),
        ("Powys Teaching Health Board and Cyngor Sir Powys.", "Powys Teaching Health Board"),
        ("The Ŵyl Fawr Town Council met.", "Ŵyl Fawr Town Council"),
    ],
)
def test_welsh_bodies(text: str, body: str) -> None:
    assert find_public_body(text) == body


def test_welsh_accents_kept_as_written() -> None:
    bodies = [b.text for b in find_public_bodies("Cyngor Sir Ynys Môn a Cyngor Gwynedd.")]
    assert bodies == ["Cyngor Sir Ynys Môn", "Cyngor Gwynedd"]


@pytest.mark.parametrize(
    ("text", "supplier"),
    [
        ("Barnet Council outsourced its back office to Capita.", "Capita"),
        ("The Ministry of Justice contract with Serco was renewed.", "Serco"),
        ("Sopra Steria ran the shared service centre.", "Sopra Steria"),
        ("Interserve went into administration in 2019.", "Interserve"),
        ("The cleaning contract was awarded to Acme Cleaning Ltd in 2017.", "Acme Cleaning Ltd"),
        ("It was run by Shared Services Connected Ltd for years.", "Shared Services Connected Ltd"),
        ("The council outsourced its payroll to Zenith Payroll Solutions.", "Zenith Payroll Solutions"),
        ("The trust contracted Northbridge Health LLP to run the clinics.", "Northbridge Health LLP"),
        ("The service is provided by Greenfield Facilities plc.", "Greenfield Facilities plc"),
        ("The libraries are run by Libraries Unlimited.", "Libraries Unlimited"),
        ("Capita's performance at Barnet Council was poor.", "Capita"),
        ("Our supplier Hartwell won the retender.", "Hartwell"),
    ],
)
def test_supplier_in_prose(text: str, supplier: str) -> None:
    assert find_supplier(text) == supplier
    assert extract_fields(text).supplier == supplier


@pytest.mark.parametrize(
    "text",
    [
        "The contract was transferred to Barnet Council in 2022.",
        "Children's Services were rated inadequate by Ofsted.",
        "The council ran it itself.",
    ],
)
def test_no_supplier(text: str) -> None:
    assert extract_fields(text).supplier is None


@pytest.mark.parametrize(
    "text",
    [
        "Please do not publish my name.",
        "I wish to remain anonymous.",
        "I would like to remain anonymous if possible.",
        "Please keep this confidential.",
        "This is not for publication.",
        "Do not name me in any report.",
        "Please treat my name as confidential.",
        "I am sending this anonymously.",
        "I'd like my identity to be kept confidential.",
    ],
)
def test_confidential_requests(text: str) -> None:
    assert extract_fields(f"The payroll contract failed.\n\n{text}").confidential is True


@pytest.mark.parametrize(
    "text",
    [
        "This email and any attachments are confidential and intended solely for the addressee.",
        "The contract terms were commercially confidential.",
        "The council refused an FOI request, citing confidentiality.",
        "Anonymous staff surveys showed morale falling.",
    ],
)
def test_not_confidential(text: str) -> None:
    assert extract_fields(text).confidential is False


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Confidential: yes", True),
        ("Confidential: Yes please", True),
        ("CONFIDENTIAL: Y", True),
        ("Confidential: no", False),
        ("Confidential: No, happy to be named", False),
    ],
)
def test_confidential_template(line: str, expected: bool) -> None:
    assert extract_fields(f"{line}\n\nThe fleet contract was fine.").confidential is expected


def test_confidential_template_no_beats_prose() -> None:
    text = "Confidential: no\n\nPlease keep this confidential."
    assert extract_fields(text).confidential is False


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("The contract ran from 2015 to 2022.", "2015 to 2022"),
        ("The contract ran 2018–2023.", "2018 to 2023"),
        ("The contract ran 2018-23.", "2018 to 2023"),
        ("It ran between April 2019 and March 2021.", "April 2019 to March 2021"),
        ("Capita held a 10-year contract starting in 2014.", "10 years from 2014"),
        ("Serco held a seven-year contract from April 2012.", "7 years from April 2012"),
        ("The contract was signed in 2015.", None),
        ("A £2.5m-£3m deal.", None),
    ],
)
def test_period_from_prose(text: str, period: str | None) -> None:
    assert infer_period(text) == period
    assert extract_fields(text).period == period


@pytest.mark.parametrize(
    ("text", "area"),
    [
        ("The council outsourced payroll and HR to Capita.", "HR and payroll"),
        ("Revenues and benefits were outsourced to Liberata.", "Revenues and benefits"),
        ("The IT service desk moved to Fujitsu.", "IT and digital"),
        ("Refuse collection was outsourced to Biffa.", "Waste and recycling"),
        ("The fire service fleet is maintained by a contractor.", "Fleet"),
        ("Facilities management went to Mitie.", "Facilities management"),
        ("Highways maintenance went to Ringway.", "Highways"),
        ("Probation was part-privatised in 2014.", "Prisons and probation"),
        ("The contact centre moved to Capita.", "Customer services"),
        ("Domiciliary care was commissioned from private providers.", "Social care"),
        ("Pathology was outsourced by the trust.", "Health"),
        ("Leeds Teaching Hospitals NHS Trust outsourced its IT to CGI.", "IT and digital"),
        ("It was outsourced and it went badly.", None),
    ],
)
def test_service_area_inference(text: str, area: str | None) -> None:
    assert extract_fields(text).service_area == area


def test_service_area_from_project_title() -> None:
    f = extract_fields("Project: Payroll outsourcing\n\nThe council signed in 2015.")
    assert f.service_area == "HR and payroll"


# --- summary -------------------------------------------------------------------------------


def test_summary_short_prose_unchanged_but_whitespace_collapsed() -> None:
    assert make_summary("The contract  failed.\n\nIt was   brought back in-house.") == (
        "The contract failed. It was brought back in-house."
    )


def test_summary_empty() -> None:
    assert make_summary("") == ""
    assert make_summary("   \n\n  ") == ""


def test_summary_skips_greeting() -> None:
    assert make_summary("Dear team,\n\nThe contract failed.") == "The contract failed."


def test_summary_cut_at_sentence_boundary() -> None:
    sentence = "Barnet outsourced its back office to Capita in 2013. "
    prose = sentence * 20
    summary = make_summary(prose)
    assert len(summary) <= 600
    assert summary.endswith(". …")
    assert summary.startswith("Barnet outsourced")


def test_summary_cut_at_word_boundary() -> None:
    prose = "word " * 200  # no sentence ends at all
    summary = make_summary(prose, limit=50)
    assert len(summary) <= 50
    assert summary == "word " * 9 + "word…"


def test_summary_long_single_word() -> None:
    summary = make_summary("x" * 700)
    assert summary == "x" * 599 + "…"
    assert len(summary) == 600


@pytest.mark.parametrize("limit", [20, 100, 600])
def test_summary_never_exceeds_limit(limit: int) -> None:
    summary = make_summary(BARNET * 5, limit=limit)
    assert 0 < len(summary) <= limit
    assert summary.endswith("…")


def test_extract_fields_summary_round_trip() -> None:
    f = extract_fields(FULL_TEMPLATE)
    assert make_summary(f.prose) == (
        "The contract was signed in 2013 after a long procurement. "
        "Within two years the backlog of housing benefit claims had doubled."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("There was a backlog in the first month.", Outcome.UNKNOWN),
        ("Savings of £1m a year were achieved, though there was a backlog.", Outcome.SUCCESS),
        ("The contract was not terminated and ran its full term.", Outcome.SUCCESS),
    ],
)
def test_prose_outcome_thresholds(text: str, expected: Outcome) -> None:
    assert infer_outcome(text) is expected
