"""The HTML pack in a real headless Chromium: it renders, its DOM says what the file says, and the
browser's Print makes a multi-page A4 PDF. Skips when no chromium binary is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy.engine import Engine

from bot import pack
from tests.conftest import make_settings
from tests.test_pack import EMAIL_RE, TITLE, build_corpus

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome"))
                 if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install -y chromium)"
)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def pack_file(engine: Engine, db_url: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    settings = make_settings(db_url, EVIDENCE_INQUIRY_TITLE=TITLE)
    corpus = build_corpus(engine, settings)
    f = tmp_path / "pack.html"
    f.write_text(pack.render(pack.collect(engine, settings=settings), "html"), encoding="utf-8")
    return f, vars(corpus)


def test_the_pack_renders_prints_and_keeps_its_secrets(pack_file: tuple[Path, dict[str, str]],
                                                       tmp_path: Path) -> None:
    html, refs = pack_file
    url = html.as_uri()

    shot = tmp_path / "pack.png"
    p = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert shot.is_file(), p.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000

    p = chromium(tmp_path, "--dump-dom", url)
    assert p.returncode == 0, p.stderr[-2000:]
    dom = p.stdout
    assert "<h1>Outsourcing in the public sector: what worked &amp; what didn't</h1>" in dom
    assert f"Written evidence submitted by Ann Named ({refs['named']})" in dom
    assert f"Written evidence submitted by an anonymous contributor ({refs['anonymous']})" in dom
    assert dom.count("<svg") == 3 and "<script" not in dom
    text = re.sub(r"<[^>]+>", " ", dom)
    for gone in ("Bob", "Hidden", "Carol", "NFP-MARKER", refs["not_for_publication"], refs["withdrawn"],
                 "WITHDRAWN-MARKER", "Not for publication"):
        assert gone not in dom, gone
    assert not EMAIL_RE.search(text)

    pdf = tmp_path / "pack.pdf"
    p = chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", url)
    assert pdf.is_file(), p.stderr[-2000:]
    reader = PdfReader(pdf)
    # Cover, contents, overview, then one page (at least) for each of the five public records.
    assert len(reader.pages) >= 8
    width, height = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    starts = [page.extract_text().lstrip().split("\n", 1)[0] for page in reader.pages]
    assert f"Written evidence submitted by Ann Named ({refs['named']})" in starts  # a record starts a page
