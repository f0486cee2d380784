"""Writes the e-mail corpus used by tests/test_parse_email.py (run once; the .eml files are committed).

The messages are written out as raw RFC 5322 text, the way the mail clients named in each one
produce them; only the binary attachments (a hand-built PDF, a python-docx DOCX) are generated.
Run: .venv/bin/python tests/corpus/make_corpus.py
"""

from __future__ import annotations

import base64
import io
import quopri
import zipfile
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).parent


def b64(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i:i + 76] for i in range(0, len(text), 76))


def qp(text: str, charset: str = "utf-8") -> str:
    return quopri.encodestring(text.encode(charset)).decode("ascii")


def make_pdf(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF whose content stream shows `lines` in Helvetica."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    content = "BT /F1 11 Tf 72 740 Td 16 TL\n" + "".join(f"({esc(line)}) Tj T*\n" for line in lines) + "ET\n"
    stream = content.encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def make_docx() -> bytes:
    import docx

    d = docx.Document()
    d.core_properties.created = datetime(2026, 3, 1)
    d.core_properties.modified = datetime(2026, 3, 1)
    d.add_heading("Evidence: waste collection contract", level=1)
    d.add_paragraph("Submitted on behalf of the Unison branch at Bromley.")
    t = d.add_table(rows=4, cols=2)
    rows = [
        ("Project", "Waste and street cleansing contract"),
        ("Public body", "London Borough of Bromley"),
        ("Supplier", "Veolia"),
        ("Outcome", "Mixed"),
    ]
    for row, (k, v) in zip(t.rows, rows, strict=True):
        row.cells[0].text = k
        row.cells[1].text = v
    d.add_paragraph(
        "Missed collections rose sharply in the first year; the council withheld payments twice "
        "but renewed the contract in 2025."
    )
    buf = io.BytesIO()
    d.save(buf)
    # python-docx stamps zip entries with the current time; rewrite them with a fixed date so
    # the corpus is reproducible byte for byte.
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    fixed = io.BytesIO()
    with zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=(2026, 3, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(zi, src.read(info.filename))
    return fixed.getvalue()


PDF = make_pdf([
    "Evidence to the call for evidence on outsourcing",
    "Project: Revenues and benefits administration",
    "Public body: Rhondda Cynon Taf County Borough Council",
    "Supplier: Capita",
    "Outcome: failure",
    "Contract value: 12.5m pounds over 7 years",
    "Backlogs of benefit claims doubled within a year of transfer.",
])
DOCX = make_docx()
TXT_LATIN1 = (
    "Notes from the scrutiny committee, 12 February 2026\n\n"
    "Supplier: Mitie\n"
    "The committee heard that the café and cleaning contract at Ysbyty Glan Clwyd "
    "had missed its targets for three quarters running. Siân Roberts (GMB) said staff "
    "had not been paid London weighting.\n"
).encode("latin-1")
CORRUPT_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nthis is not really a pdf\n"


MESSAGES: dict[str, str] = {}

MESSAGES["01_plain_template_signature.eml"] = """\
Return-Path: <j.okafor@gmail.com>
Received: from mail-ed1-f41.google.com (mail-ed1-f41.google.com [209.85.208.41])
\tby mx.evidence.example.org with ESMTPS id 4Zq1; Tue, 03 Mar 2026 09:14:07 +0000
From: Joy Okafor <J.Okafor@Gmail.com>
To: evidence@evidence.example.org
Subject: Evidence: Hertfordshire highways contract
Date: Tue, 3 Mar 2026 09:14:02 +0000
Message-ID: <CAF3n9xL0q8Zk2=pY7w@mail.gmail.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

""" + qp("""Hello,

Please find my evidence below.

Project: Highways maintenance term contract
Public body: Hertfordshire County Council
Supplier: Ringway Jacobs
Outcome: failure
Contract value: £320m
Period: 2012–2022

Pothole repairs were routinely signed off as complete when they were not. An internal audit
in 2019 found that 40% of a sample of "completed" jobs had not been done to specification.

Kind regards,
Joy Okafor
Retired highways inspector
07700 900123

Sent from my iPhone
""")

MESSAGES["02_outlook_html_disclaimer.eml"] = ("""\
Received: from EUR03-DBA-obe.outbound.protection.outlook.com (40.107.104.98)
From: "Pritchard, Gareth" <Gareth.Pritchard@swansea.gov.uk>
To: "evidence@evidence.example.org" <evidence@evidence.example.org>
Subject: Submission: Swansea ICT shared service
Thread-Topic: Submission: Swansea ICT shared service
Thread-Index: AdqN2xw5YtQ0s2ZxR0yXk0VQ==
Date: Wed, 4 Mar 2026 16:02:44 +0000
Message-ID: <DB9PR06MB7345A1B2C3D4E5F6@DB9PR06MB7345.eurprd06.prod.outlook.com>
Accept-Language: en-GB, en-US
Content-Language: en-US
X-MS-Has-Attach:
X-Auto-Response-Suppress: All
X-MS-TNEF-Correlator:
MIME-Version: 1.0
Content-Type: multipart/alternative;
\tboundary="_000_DB9PR06MB7345A1B2C3D4E5F6DB9PR06MB7345eurprd06prod_"

--_000_DB9PR06MB7345A1B2C3D4E5F6DB9PR06MB7345eurprd06prod_
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Dear Sir/Madam,

Project: ICT shared service
Public body: City and County of Swansea
Supplier: Northgate
Outcome: success
Savings: =A31.2m a year

The shared service has cut costs and the helpdesk now answers within the ho=
ur.

Gareth

This email and any attachments are confidential and may be legally privile=
ged. If you have received this email in error please notify the sender and =
delete it. Any views expressed are those of the author and not necessarily =
those of the Council.

Please consider the environment - do you really need to print this email?

--_000_DB9PR06MB7345A1B2C3D4E5F6DB9PR06MB7345eurprd06prod_
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html xmlns:v=3D"urn:schemas-microsoft-com:vml" xmlns:o=3D"urn:schemas-micr=
osoft-com:office:office" xmlns:w=3D"urn:schemas-microsoft-com:office:word">
<head>
<meta http-equiv=3D"Content-Type" content=3D"text/html; charset=3Dus-ascii">
<meta name=3D"Generator" content=3D"Microsoft Word 15 (filtered medium)">
<!--[if !mso]><style>v\\:* {behavior:url(#default#VML);}
o\\:* {behavior:url(#default#VML);}
</style><![endif]--><style><!--
/* Font Definitions */
@font-face
\t{font-family:"Cambria Math";}
p.MsoNormal, li.MsoNormal, div.MsoNormal
\t{margin:0cm;
\tfont-size:11.0pt;
\tfont-family:"Calibri",sans-serif;}
--></style><!--[if gte mso 9]><xml>
<o:shapedefaults v:ext=3D"edit" spidmax=3D"1026" />
</xml><![endif]-->
</head>
<body lang=3D"EN-GB" link=3D"#0563C1" vlink=3D"#954F72" style=3D"word-wrap:b=
reak-word">
<div class=3D"WordSection1">
<p class=3D"MsoNormal">Dear Sir/Madam,<o:p></o:p></p>
<p class=3D"MsoNormal"><o:p>&nbsp;</o:p></p>
<p class=3D"MsoNormal"><b>Project:</b> ICT shared service<o:p></o:p></p>
<p class=3D"MsoNormal"><b>Public body:</b> City and County of Swansea<o:p><=
/o:p></p>
<p class=3D"MsoNormal"><b>Supplier:</b> Northgate<o:p></o:p></p>
<p class=3D"MsoNormal"><b>Outcome:</b> success<o:p></o:p></p>
<p class=3D"MsoNormal"><b>Savings:</b> &pound;1.2m a year<o:p></o:p></p>
<p class=3D"MsoNormal"><o:p>&nbsp;</o:p></p>
<p class=3D"MsoNormal">The shared service has cut costs and the helpdesk no=
w answers within the hour.<o:p></o:p></p>
<p class=3D"MsoNormal"><o:p>&nbsp;</o:p></p>
<p class=3D"MsoNormal">Gareth<o:p></o:p></p>
<p class=3D"MsoNormal"><o:p>&nbsp;</o:p></p>
<p class=3D"MsoNormal"><span style=3D"font-size:8.0pt;color:gray">This emai=
l and any attachments are confidential and may be legally privileged. If yo=
u have received this email in error please notify the sender and delete it.=
 Any views expressed are those of the author and not necessarily those of t=
he Council.<o:p></o:p></span></p>
<p class=3D"MsoNormal"><o:p>&nbsp;</o:p></p>
<p class=3D"MsoNormal"><span style=3D"font-size:8.0pt;color:green">Please c=
onsider the environment - do you really need to print this email?<o:p></o:p=
></span></p>
</div>
</body>
</html>

--_000_DB9PR06MB7345A1B2C3D4E5F6DB9PR06MB7345eurprd06prod_--
""").replace("\n", "\r\n")

MESSAGES["03_welsh_latin1_encoded_words.eml"] = """\
From: =?iso-8859-1?Q?Si=F4n_ap_Dafydd?= <sion.apdafydd@btinternet.com>
To: evidence@evidence.example.org
Subject: =?iso-8859-1?Q?Gofal_cartref_=96_Cyngor_Sir_G=E2r?=
 =?iso-8859-1?Q?_home_care?=
Date: Thu, 05 Mar 2026 20:41:13 +0000
Message-ID: <000001dab0c1$5e9f1a20$1bdd4e60$@btinternet.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable
X-Mailer: Microsoft Outlook 16.0

""" + qp("""Project: Home care framework
Public body: Cyngor Sir Gâr (Carmarthenshire County Council)
Supplier: Allied Healthcare
Outcome: failure

Care workers in Llandeilo and Rhydaman were given 15-minute visits with no travel time.
Mrs Siân Hughes, whose mother relied on the service, told the council in 2023 that calls
were missed on 11 days in one month. The contract was handed back early.
""", "iso-8859-1")

MESSAGES["04_windows1252_smart_quotes.eml"] = """\
From: Tom Ashworth <tom.ashworth@outlook.com>
To: evidence@evidence.example.org
Subject: Prison maintenance - Carillion
Date: Fri, 6 Mar 2026 11:20:00 +0000
Message-ID: <PAXP193MB1234ABCD@PAXP193MB1234.EURP193.PROD.OUTLOOK.COM>
MIME-Version: 1.0
Content-Type: text/plain; charset="windows-1252"
Content-Transfer-Encoding: 8bit

Project \x96 Prison facilities management
Public body \x96 Ministry of Justice
Supplier \x96 Carillion
Outcome \x96 failure

When Carillion collapsed the MoJ had to set up a \x93government company\x94 overnight.
Staff told me the contract was \x91never going to make money\x92 from the start.
"""

MESSAGES["05_unknown_charset.eml"] = """\
From: "Dr. Priya Raman" <praman@kcl.ac.uk>
To: evidence@evidence.example.org
Subject: =?iso-8859-99?Q?NHS_Shared_Business_Services_=96_payroll?=
Date: Sat, 7 Mar 2026 08:05:00 +0000
Message-ID: <20260307080500.GA1234@kcl.ac.uk>
MIME-Version: 1.0
Content-Type: text/plain; charset="x-unknown-8bit"
Content-Transfer-Encoding: 8bit

Project: Payroll outsourcing
Public body: NHS Shared Business Services
Supplier: Sopra Steria
Outcome: mixed
Savings: \xc2\xa34m

Payroll errors fell after the second year, but the hoped-for savings of \xc2\xa34m were only
half met. The trust\xe2\x80\x99s finance team kept shadow staff throughout.
"""

MESSAGES["06_stub_plain_html_table.eml"] = """\
From: Campaign Desk <research@weownit.org.uk>
To: evidence@evidence.example.org
Subject: Evidence submission: probation services
Date: Mon, 9 Mar 2026 10:00:00 +0000
Message-ID: <5f1e2d3c.1c69fb81.abc123@mx.weownit.org.uk>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1_stub"

--b1_stub
Content-Type: text/plain; charset=utf-8

Your email client cannot display this message, please view the HTML version.

--b1_stub
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<!DOCTYPE html><html><head><title>Evidence form</title></head><body>
<p>Our submission, using your template:</p>
<table border=3D"1" cellpadding=3D"4">
<tr><th>Field</th><th>Value</th></tr>
<tr><td><b>Project</b></td><td>Transforming Rehabilitation</td></tr>
<tr><td><b>Public body</b></td><td>Ministry of Justice</td></tr>
<tr><td><b>Supplier</b></td><td>Community Rehabilitation Companies (Interserve, Sodexo)</td></tr>
<tr><td><b>Outcome</b></td><td>failure</td></tr>
<tr><td><b>Contract value</b></td><td>&pound;3.7bn</td></tr>
</table>
<p>The National Audit Office found the reforms cost at least &pound;467m more than planned
and that reoffending <em>rose</em> after the transfer. Full report:
<a href=3D"https://www.nao.org.uk/reports/transforming-rehabilitation/">NAO report</a>.</p>
<table><tr><td>Region</td><td>Staff</td><td>Caseload</td></tr>
<tr><td>North West</td><td>1,200</td><td>31,000</td></tr></table>
</body></html>

--b1_stub--
"""

MESSAGES["07_html_only_tracking.eml"] = """\
From: Mark Ellis <mark@ellis-consulting.co.uk>
To: evidence@evidence.example.org
Subject: Leisure centres - Fusion Lifestyle
Date: Tue, 10 Mar 2026 13:30:00 +0000
Message-ID: <1741613400.5512@ellis-consulting.co.uk>
MIME-Version: 1.0
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: base64

""" + b64(b"""<html><head>
<style>body { font-family: Arial; } .hide { display: none }</style>
<script type="text/javascript">document.write('TRACKING-SCRIPT');</script>
</head>
<body onload="track()">
<div style="display:none;max-height:0;overflow:hidden">Preheader text you never see</div>
<p>Project: Leisure centre management</p>
<p>Public body: London Borough of Lewisham</p>
<p>Supplier: Fusion Lifestyle</p>
<p>Outcome: failure</p>
<p onclick="alert('x')">Two pools closed for <b>eighteen months</b> while the operator and the
council argued about who should fix the roof &amp; plant.</p>
<ul><li>Swimming lessons cancelled</li><li>Staff moved to other sites</li></ul>
<p>Source: <a href="https://lewisham.gov.uk/minutes/2024-05">Council minutes, May 2024</a></p>
<img src="https://t.example-tracker.com/open.gif?id=8812" width="1" height="1" alt="">
<noscript>NOSCRIPT-TEXT</noscript>
</body></html>
""")

MESSAGES["08_markdown_bold_keys.eml"] = """\
From: Ruth Campbell <ruth.campbell@proton.me>
To: evidence@evidence.example.org
Subject: Fwd: NHS diagnostics
Date: Wed, 11 Mar 2026 18:45:00 +0000
Message-ID: <qZ3xYbB9Ws@proton.me>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

""" + b64(b"""**Project:** Community diagnostic centres
**Public body:** NHS England
**Supplier:** InHealth
**Outcome:** success

Waiting times for MRI scans in the area fell from 14 weeks to 4 weeks.
""")

MESSAGES["09_pdf_attachment.eml"] = f"""\
From: Owain Price <owain.price@unison.example.org>
To: evidence@evidence.example.org
Subject: Evidence - revenues and benefits (PDF attached)
Date: Thu, 12 Mar 2026 09:00:00 +0000
Message-ID: <a1b2c3d4-0001@unison.example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="----=_Part_PDF"

------=_Part_PDF
Content-Type: text/plain; charset=utf-8

Please see the attached briefing from our branch.

Owain

------=_Part_PDF
Content-Type: application/pdf; name="RCT briefing.pdf"
Content-Disposition: attachment; filename="RCT briefing.pdf"
Content-Transfer-Encoding: base64

{b64(PDF)}
------=_Part_PDF--
"""

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MESSAGES["10_docx_attachment.eml"] = f"""\
From: Bromley Unison <branch@bromleyunison.org.uk>
To: evidence@evidence.example.org
Subject: Waste contract evidence
Date: Fri, 13 Mar 2026 15:10:00 +0000
Message-ID: <docx-0001@bromleyunison.org.uk>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=-docx-boundary"

--=-docx-boundary
Content-Type: text/plain; charset=utf-8

Our evidence is in the attached document.

--=-docx-boundary
Content-Type: {DOCX_TYPE};
 name="Bromley waste.docx"
Content-Disposition: attachment;
 filename="Bromley waste.docx"
Content-Transfer-Encoding: base64

{b64(DOCX)}
--=-docx-boundary--
"""

MESSAGES["11_txt_attachment_rfc2231_corrupt_pdf.eml"] = f"""\
From: Gwen Morgan <gwen.morgan@gmb.example.org>
To: evidence@evidence.example.org
Subject: Hospital facilities - notes attached
Date: Sat, 14 Mar 2026 10:10:00 +0000
Message-ID: <txt-0001@gmb.example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="mixed-txt"

--mixed-txt
Content-Type: text/plain; charset=utf-8

Public body: Betsi Cadwaladr University Health Board

Notes from the committee are attached. The scan of the letter would not open for me either.

--mixed-txt
Content-Type: text/plain
Content-Disposition: attachment; filename*=utf-8''nodiadau%20pwyllgor%20%E2%80%93%20caf%C3%A9.txt
Content-Transfer-Encoding: base64

{b64(TXT_LATIN1)}
--mixed-txt
Content-Type: application/pdf; name="letter.pdf"
Content-Disposition: attachment; filename="letter.pdf"
Content-Transfer-Encoding: base64

{b64(CORRUPT_PDF)}
--mixed-txt--
"""

INNER_FORWARD = """\
From: "Hughes, Alun" <alun.hughes@cardiff.gov.uk>
To: Staff Side <staffside@cardiff.gov.uk>
Subject: Facilities contract - staff briefing
Date: Mon, 2 Feb 2026 08:30:00 +0000
Message-ID: <inner-0001@cardiff.gov.uk>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="inner-b"

--inner-b
Content-Type: text/plain; charset=utf-8

Colleagues,

Project: Facilities management
Supplier: Amey
Outcome: failure

The contract will be brought back in house from April after repeated failures
to meet cleaning standards at county hall.

Alun Hughes
Head of Property

--inner-b
Content-Type: text/plain; charset=utf-8; name="timeline.txt"
Content-Disposition: attachment; filename="timeline.txt"

2019 contract signed
2024 improvement notice
2026 termination agreed

--inner-b--
"""

MESSAGES["12_attached_rfc822_forward.eml"] = f"""\
From: Cardiff Unison <unison@cardiff-unison.example.org>
To: evidence@evidence.example.org
Subject: FW: Facilities contract - staff briefing
Date: Tue, 17 Mar 2026 12:00:00 +0000
Message-ID: <outer-0001@cardiff-unison.example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer-b"

--outer-b
Content-Type: text/plain; charset=utf-8

Public body: Cardiff Council

Forwarding the council's own briefing, which says it all.

--outer-b
Content-Type: message/rfc822
Content-Disposition: attachment; filename="Facilities contract - staff briefing.eml"

{INNER_FORWARD}
--outer-b--
"""

MESSAGES["13_gmail_inline_forward.eml"] = """\
From: Helen Brooks <helenbrooks1970@gmail.com>
To: evidence@evidence.example.org
Subject: Fwd: School meals contract
Date: Wed, 18 Mar 2026 21:05:00 +0000
Message-ID: <CAB+fwd0001xyz@mail.gmail.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"

I think you should see this - it was sent to parents last year.

---------- Forwarded message ---------
From: Head Teacher <head@stmarys.sch.uk>
Date: Mon, 6 Oct 2025 at 09:00
Subject: School meals contract
To: Parents <parents@stmarys.sch.uk>


Dear parents,

Public body: Norfolk County Council
Supplier: Eden Foodservice
Outcome: failure

From next month hot meals will be delivered from a central kitchen 40 miles away,
as the contractor has closed our school kitchen.

Mrs A. Clarke
Headteacher
"""

MESSAGES["14_apple_mail_forward.eml"] = """\
From: David Chen <dchen@icloud.com>
To: evidence@evidence.example.org
Subject: Fwd: Bus contract
Date: Thu, 19 Mar 2026 07:55:12 +0000
Message-ID: <5C2E6B1A-77D4-4F0B-9D1C-0A1B2C3D4E5F@icloud.com>
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.600.62\\))
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable



Begin forwarded message:

From: Transport Team <transport@wiltshire.gov.uk>
Subject: Bus contract
Date: 12 March 2026 at 16:20:11 GMT
To: David Chen <dchen@icloud.com>

Dear Mr Chen,

Supplier: Go South Coast
Public body: Wiltshire Council

The tendered route 87 will be withdrawn in May as no operator bid for the contract =
at the price the council could pay.

Transport Team
"""

MESSAGES["15_outlook_fw_original_message.eml"] = """\
From: "Baker, Sue" <Sue.Baker@nhs.net>
To: "evidence@evidence.example.org" <evidence@evidence.example.org>
Subject: FW: Patient transport performance
Date: Fri, 20 Mar 2026 14:14:14 +0000
Message-ID: <LO2P265MB5555FWD@LO2P265MB5555.GBRP265.PROD.OUTLOOK.COM>
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: 7bit

For your inquiry.

-----Original Message-----
From: Contracts Team <contracts@nhs.net>
Sent: 02 March 2026 10:01
To: Baker, Sue <Sue.Baker@nhs.net>
Subject: Patient transport performance

Project: Non-emergency patient transport
Supplier: E-zec Medical
Outcome: mixed

On-time arrivals improved to 85% but complaints about missed discharges doubled.
"""

MESSAGES["16_gmail_reply_quoted.eml"] = """\
From: Ian Fraser <ian.fraser@gmail.com>
To: evidence@evidence.example.org
Cc: Morag Fraser <morag.f@gmail.com>
Subject: Re: Council tax collection
Date: Sat, 21 Mar 2026 09:09:09 +0000
Message-ID: <CAKd0reply0001@mail.gmail.com>
In-Reply-To: <CAKd0orig0001@mail.gmail.com>
References: <CAKd0orig0001@mail.gmail.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"

Morag asked me to send this on to you.

Public body: Moray Council
Supplier: Civica
Outcome: success

Collection rates went up by two points in the first year.

On Fri, 20 Mar 2026 at 18:00, Morag Fraser <morag.f@gmail.com> wrote:
> Ian, can you send the council tax figures to the inquiry?
> They want evidence from residents.
>
> M
"""

MESSAGES["17_outlook_reply_header_block.eml"] = """\
From: Kate Lewis <kate.lewis@hotmail.co.uk>
To: evidence@evidence.example.org
Subject: RE: Parking enforcement
Date: Sun, 22 Mar 2026 19:00:00 +0000
Message-ID: <DU0P190MB0001REPLY@DU0P190MB0001.EURP190.PROD.OUTLOOK.COM>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 8bit

Supplier: NSL
Public body: Brighton & Hove City Council

Wardens were paid bonuses per ticket until 2024, which the contract said they would not be.

________________________________
From: Neighbourhood Forum <forum@example.org>
Sent: 21 March 2026 08:00
To: Kate Lewis <kate.lewis@hotmail.co.uk>
Subject: Parking enforcement

Please send your parking stories to the outsourcing inquiry.
"""

MESSAGES["18_out_of_office.eml"] = """\
From: "Jones, Rhian" <Rhian.Jones@powys.gov.uk>
To: evidence@evidence.example.org
Subject: Automatic reply: [EV-000017] Thank you for your evidence
Date: Mon, 23 Mar 2026 08:00:01 +0000
Message-ID: <oof-0001@powys.gov.uk>
In-Reply-To: <ack.EV-000017.8f3a@evidence.example.org>
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
X-MS-Exchange-Inbox-Rules-Loop: Rhian.Jones@powys.gov.uk
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"

I am out of the office until 30 March with no access to email.
For urgent matters please contact procurement@powys.gov.uk.
"""

MESSAGES["19_bounce_mailer_daemon.eml"] = """\
Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.evidence.example.org>
To: evidence@evidence.example.org
Subject: Undelivered Mail Returned to Sender
Date: Mon, 23 Mar 2026 08:10:00 +0000
Message-ID: <20260323081000.ABC12@mx.evidence.example.org>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="ABC12.1742717400/mx.evidence.example.org"

--ABC12.1742717400/mx.evidence.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.evidence.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<nobody@nowhere.example>: host nowhere.example said: 550 5.1.1 User unknown

--ABC12.1742717400/mx.evidence.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.evidence.example.org
Arrival-Date: Mon, 23 Mar 2026 08:09:58 +0000

Final-Recipient: rfc822; nobody@nowhere.example
Action: failed
Status: 5.1.1

--ABC12.1742717400/mx.evidence.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: evidence@evidence.example.org
To: nobody@nowhere.example
Subject: [EV-000031] Thank you for your evidence
Message-ID: <ack.EV-000031.77aa@evidence.example.org>

--ABC12.1742717400/mx.evidence.example.org--
"""

MESSAGES["20_bulk_newsletter.eml"] = """\
From: Public Sector Weekly <newsletter@publicsectorweekly.example.com>
To: evidence@evidence.example.org
Subject: This week: outsourcing round-up
Date: Tue, 24 Mar 2026 06:00:00 +0000
Message-ID: <nl-2026-12@publicsectorweekly.example.com>
Precedence: bulk
List-Unsubscribe: <https://publicsectorweekly.example.com/unsub?u=123>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

This week: three councils bring services back in house.
"""

MESSAGES["21_follow_up_subject_ref.eml"] = """\
From: Joy Okafor <j.okafor@gmail.com>
To: evidence@evidence.example.org
Subject: Re: [EV-000042] Thank you for your evidence
Date: Wed, 25 Mar 2026 10:00:00 +0000
Message-ID: <CAF3n9xfollow1@mail.gmail.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"

One more thing: the contract was extended in 2021 without a tender.

On Tue, 3 Mar 2026 at 09:20, Outsourcing Inquiry <evidence@evidence.example.org> wrote:
> Thank you for your evidence. Your reference is EV-000042.
"""

MESSAGES["22_follow_up_in_reply_to.eml"] = """\
From: Gareth Pritchard <gareth.pritchard@swansea.gov.uk>
To: evidence@evidence.example.org
Subject: RE: Thank you for your evidence
Date: Thu, 26 Mar 2026 11:00:00 +0000
Message-ID: <DB9PR06MB7345FOLLOW@DB9PR06MB7345.eurprd06.prod.outlook.com>
In-Reply-To: <ack.EV-000042.c0ffee12@evidence.example.org>
References: <DB9PR06MB7345A1B2C3D4E5F6@DB9PR06MB7345.eurprd06.prod.outlook.com>
 <ack.EV-000042.c0ffee12@evidence.example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"

Please correct the savings figure: it was 1.1m, not 1.2m.

Gareth
"""

MESSAGES["23_confidential_request.eml"] = """\
From: Anonymous Worker <worker.4471@protonmail.com>
To: evidence@evidence.example.org
Subject: Call centre contract
Date: Fri, 27 Mar 2026 22:30:00 +0000
Message-ID: <conf-0001@protonmail.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Please do not publish my name - I still work there.

Public body: Department for Work and Pensions
Supplier: Serco
Outcome: failure

Calls were closed unanswered to meet the average handling time target.
"""

MESSAGES["24_related_inline_image.eml"] = """\
From: Beth Wilson <beth.wilson@example.ac.uk>
To: evidence@evidence.example.org
Subject: Library service evidence
Date: Sat, 28 Mar 2026 12:00:00 +0000
Message-ID: <img-0001@example.ac.uk>
MIME-Version: 1.0
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

Project: Library service
Public body: Bradford Council
Outcome: unknown yet

The library service transferred to a trust in 2025.

--alt
Content-Type: text/html; charset=utf-8

<p>Project: Library service<br>Public body: Bradford Council<br>Outcome: unknown yet</p>
<p>The library service transferred to a trust in 2025.</p><img src="cid:logo@x">

--alt--

--rel
Content-Type: image/png
Content-ID: <logo@x>
Content-Transfer-Encoding: base64

iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==

--rel--
"""


# -- Free prose (issue 11): outcome stated in words, money in words or wrapped, a body named only
# in the subject, greetings and sign-offs, follow-ups, and short forms of public bodies' names.

MESSAGES["25_prose_quiet_success.eml"] = """\
From: Denise Holt <denise.holt63@btinternet.com>
To: evidence@evidence.example.org
Subject: Payroll at Tameside
Date: Mon, 6 Apr 2026 19:42:10 +0100
Message-ID: <5f1c2a9e-33b1-4c2e-9a77-holt@btinternet.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8; format=flowed
Content-Transfer-Encoding: 8bit

Dear reviewers,

I ran the payroll team at Tameside MBC until I retired last year, so I saw
the move to Zellis from the inside. The old in-house system was a single
point of failure: one server, one contractor who understood it.

Everyone expected chaos at the changeover and the union said so in
writing. In short, it was a quiet success. Staff were paid on time every
month after the switch and queries went down by about a third.

Kind regards,
Denise Holt
"""

MESSAGES["26_prose_results_mixed.eml"] = """\
From: "Cllr Mike Bateson" <mike.bateson@cllr.example.org.uk>
To: <evidence@evidence.example.org>
Subject: Revenues and benefits in Swale
Date: Tue, 7 Apr 2026 08:05:33 +0000
Message-ID: <000501dc8a7e$1f2a3b40$5d7eb1c0$@cllr.example.org.uk>
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: 7bit
X-Mailer: Microsoft Outlook 16.0

Hi all,

Swale Borough Council's revenues and benefits service went to Civica in
2020. The results were mixed. Council tax collection improved, but the
benefits backlog was worse than it had ever been in house and complaints
doubled in the second year.

Thanks,
Mike
"""

MESSAGES["27_prose_back_to_paper.eml"] = """\
From: Sam Whitfield <sam.whitfield@nhs.net>
To: evidence@evidence.example.org
Subject: E-rostering
Date: Wed, 8 Apr 2026 21:17:45 +0100
Message-ID: <LO2P265MB5570AB12CD34EF56@LO2P265MB5570.GBRP265.PROD.OUTLOOK.COM>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

""" + qp("""Good evening,

I work on a surgical ward at Hull University Teaching Hospitals NHS Trust.
The e-rostering system we were sold in 2022 went down for days at a time,
shifts vanished and agency staff turned up to wards that didn't need them.
The supplier's brochure still calls it a success story.

After eighteen months the trust went back to paper rotas on every ward.

Best wishes
Sam
""")

MESSAGES["28_prose_headline_not_a_success.eml"] = """\
From: Priya Natarajan <priya.n@fastmail.co.uk>
To: evidence@evidence.example.org
Subject: Not a success: the Oracle rollout in Birmingham
Date: Thu, 9 Apr 2026 12:30:00 +0100
Message-ID: <b7a1f0c4-0e55-4b53-a1d4-natarajan@fastmail.co.uk>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="=-fm-8c1d"

--=-fm-8c1d
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

I was a finance officer at Birmingham City Council during the move to Oracle.
The implementation partner was paid against its own success measures, which
were all met on paper. The books could not be closed for two years and the
cost went from £19m to over £100m.

--=-fm-8c1d
Content-Type: text/html; charset=utf-8

<div>I was a finance officer at Birmingham City Council during the move to Oracle.
The implementation partner was paid against its own success measures, which
were all met on paper. The books could not be closed for two years and the
cost went from &pound;19m to over &pound;100m.</div>

--=-fm-8c1d--
"""

MESSAGES["29_money_wrapped_worth.eml"] = """\
From: Alan Pearce <alan.pearce@gmail.com>
To: evidence@evidence.example.org
Subject: Highways in Lancashire
Date: Fri, 10 Apr 2026 07:55:12 +0100
Message-ID: <CAJx9=pearce-ab12@mail.gmail.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

""" + qp("""In 2015 Lancashire County Council signed a ten-year deal with Amey worth
£30m for street lighting and gully cleaning. We were told it would save
£450k a year. Gullies on our estate were not cleared for three winters
running and the deal was terminated early in 2021.

Alan
""")

MESSAGES["30_money_in_words.eml"] = """\
From: Grace Mbeki <grace.mbeki@yahoo.co.uk>
To: evidence@evidence.example.org
Subject: School cleaning contract
Date: Sat, 11 Apr 2026 16:20:41 +0000
Message-ID: <1744388441.55102.yahoo@mail.yahoo.co.uk>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8

I am a school business manager in Derbyshire. The county's cleaning contract
with Mitie was worth thirty million pounds over seven years, and the council
said it saved about half a million pounds a year. In our school the cleaning
hours were cut from twenty a week to twelve, and the toilets show it.

Grace Mbeki
"""

MESSAGES["31_money_split_figures.eml"] = """\
From: "Rees, Owain" <owain.rees@unison-cymru.example.org>
To: evidence@evidence.example.org
Subject: Housing repairs - Cardiff
Date: Sun, 12 Apr 2026 10:10:10 +0100
Message-ID: <AM6PR02MB4321REES@AM6PR02MB4321.eurprd02.prod.outlook.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"

Cardiff Council signed a contract with Mears for GBP 3.25
million a year to run responsive repairs. The council's own report
says the change cut costs by £1,200,
000 in the first year, mostly by closing the depot.

Owain Rees
Unison Cymru
"""

MESSAGES["32_subject_only_kent_cc.eml"] = """\
From: Jo Barker <jobarker@outlook.com>
To: evidence@evidence.example.org
Subject: Kent CC home care
Date: Mon, 13 Apr 2026 09:01:00 +0100
Message-ID: <DU0P190MB1880BARKER@DU0P190MB1880.EURP190.PROD.OUTLOOK.COM>
MIME-Version: 1.0
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

My mum's home care was moved to a new provider when the council
re-let the contract. Visits were cut to fifteen minutes and we had
eleven different carers in one month. It has been a disaster.

Jo
"""

MESSAGES["33_subject_only_moj.eml"] = """\
From: Tom Ashworth <tom.ashworth@outlook.com>
To: evidence@evidence.example.org
Subject: FW: the MoJ tagging contract
Date: Tue, 14 Apr 2026 14:44:00 +0100
Message-ID: <DB7PR04MB5000ASHWORTH2@DB7PR04MB5000.eurprd04.prod.outlook.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"

Passing this on from a former colleague.

The ministry paid G4S and Serco for tagging people who were dead, in
prison or had left the country. The contracts were later brought back
in-house.
"""

MESSAGES["34_subject_only_nhs_lothian.eml"] = """\
From: Morag Stewart <morag.stewart@btinternet.com>
To: evidence@evidence.example.org
Subject: NHS Lothian - hospital cleaning
Date: Wed, 15 Apr 2026 18:30:00 +0100
Message-ID: <e4f1a9d2-stewart@btinternet.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello,

I have been a domestic at the Royal Infirmary for twenty years. When
the cleaning was contracted out to ISS we lost a third of the hours and
the infection control nurses were in despair. It was not a success.

Morag
"""

MESSAGES["35_greeting_dear_reviewers.eml"] = """\
From: Anne-Marie Doyle <am.doyle@unison-suffolk.example.org>
To: evidence@evidence.example.org
Subject: Library services
Date: Thu, 16 Apr 2026 11:11:11 +0100
Message-ID: <doyle-0416@unison-suffolk.example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Dear reviewers,

Suffolk County Council moved its libraries to an employee-owned mutual,
Suffolk Libraries, in 2012. Branches stayed open and the service went
well for most of a decade, though pay fell behind.

Best wishes,
Anne-Marie Doyle
Branch secretary, Unison Suffolk
"""

MESSAGES["36_greeting_hi_all_inline.eml"] = """\
From: Raj Patel <raj.patel@hotmail.co.uk>
To: evidence@evidence.example.org
Subject: bins
Date: Fri, 17 Apr 2026 17:45:00 +0100
Message-ID: <PA4P190MB1234PATEL@PA4P190MB1234.EURP190.PROD.OUTLOOK.COM>
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"

Hi all, our bin collections in Leeds CC went to Biffa in 2023 for the
garden waste round only. Missed bins doubled and the council withheld
payment twice.

Thanks, Raj
"""

MESSAGES["37_greeting_to_whom.eml"] = """\
From: Peter Okonkwo <p.okonkwo@aol.com>
To: evidence@evidence.example.org
Subject: Patient transport
Date: Sat, 18 Apr 2026 08:00:00 +0000
Message-ID: <18f2a.okonkwo@aol.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

To whom it may concern:

I am a kidney patient. Since the patient transport service for
Leicester went to a private firm I have missed dialysis four times
because the car did not come. It was a failure from the first week.

Thank you for your time.

Yours faithfully

Mr P. Okonkwo
"""

MESSAGES["38_follow_up_correction.eml"] = """\
From: Alan Pearce <alan.pearce@gmail.com>
To: evidence@evidence.example.org
Subject: Re: [EV-000107] Thank you for your evidence
Date: Sun, 19 Apr 2026 20:02:00 +0100
Message-ID: <CAJx9=pearce-cd34@mail.gmail.com>
In-Reply-To: <ack.EV-000107.5a5a5a@evidence.example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

""" + qp("""Sorry, one correction: the deal was worth £30m in total, not per year.

On Fri, 10 Apr 2026 at 08:00, Outsourcing Inquiry <evidence@evidence.example.org> wrote:
> Thank you for your evidence. Your reference is EV-000107.
""")

MESSAGES["39_follow_up_outlook_references.eml"] = """\
From: "Rees, Owain" <owain.rees@unison-cymru.example.org>
To: evidence@evidence.example.org
Subject: RE: Thank you for your evidence
Date: Mon, 20 Apr 2026 09:15:00 +0100
Message-ID: <AM6PR02MB4321REES2@AM6PR02MB4321.eurprd02.prod.outlook.com>
In-Reply-To: <ack.EV-000311.77e1@evidence.example.org>
References: <AM6PR02MB4321REES@AM6PR02MB4321.eurprd02.prod.outlook.com>
 <ack.EV-000311.77e1@evidence.example.org>
Thread-Topic: Housing repairs - Cardiff
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"

I have attached nothing, sorry - the council report is on its website
under cabinet papers for March 2026.

Owain

-----Original Message-----
From: Outsourcing Inquiry <evidence@evidence.example.org>
Sent: 12 April 2026 10:11
To: Rees, Owain <owain.rees@unison-cymru.example.org>
Subject: Thank you for your evidence

Thank you for your evidence.
"""

MESSAGES["40_follow_up_withdraw.eml"] = """\
From: Jo Barker <jobarker@outlook.com>
To: evidence@evidence.example.org
Subject: RE: EV-000058 received
Date: Tue, 21 Apr 2026 22:40:00 +0100
Message-ID: <DU0P190MB1880BARKER3@DU0P190MB1880.EURP190.PROD.OUTLOOK.COM>
MIME-Version: 1.0
Content-Type: text/plain; charset="us-ascii"

Please can you hold off using what I sent about my mum's care until I
have spoken to her. Thank you.

Jo
"""

MESSAGES["41_gazetteer_lb_barnet.eml"] = """\
From: Chris Hall <chris.hall@barnetalliance.example.org>
To: evidence@evidence.example.org
Subject: One Barnet
Date: Wed, 22 Apr 2026 13:00:00 +0100
Message-ID: <hall-0422@barnetalliance.example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: 8bit

LB Barnet handed most of its back office to Capita in 2013 in a £320m
deal. Planning and building control followed. By 2022 the council was
taking services back in-house one by one.
"""

MESSAGES["42_gazetteer_stockport_mbc.eml"] = """\
From: Liz Carter <liz.carter@icloud.com>
To: evidence@evidence.example.org
Subject: Parking enforcement
Date: Thu, 23 Apr 2026 10:30:00 +0100
Message-ID: <C1A2B3C4-carter@icloud.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Stockport MBC let parking enforcement to NSL. Appeals against tickets
went up every year and a tribunal found the signage unlawful on two
streets. Overall the contract was poor value for money and a failure.

Sent from my iPhone
"""

MESSAGES["43_gazetteer_glasgow_board.eml"] = """\
From: Iain Fraser <iain.fraser@gmail.com>
To: evidence@evidence.example.org
Subject: Hospital car parking PFI
Date: Fri, 24 Apr 2026 15:00:00 +0100
Message-ID: <CAKfraser99@mail.gmail.com>
MIME-Version: 1.0
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

""" + qp("""The DWP is not involved here, but staff on benefits were hit hardest.
NHS Greater Glasgow and Clyde paid a private operator to run car parks
under a PFI deal; staff paid up to £1,000 a year to park at work until
the Scottish Government bought the contracts out.
""")


def main() -> None:
    for name, text in MESSAGES.items():
        # Bodies with 8-bit bytes (the windows-1252 and unknown-charset ones) are written as the
        # raw bytes they stand for; everything else is ASCII.
        data = text.encode("latin-1") if any(ord(c) > 127 for c in text) else text.encode("ascii")
        (HERE / name).write_bytes(data)
    print(f"wrote {len(MESSAGES)} messages to {HERE}")


if __name__ == "__main__":
    main()
