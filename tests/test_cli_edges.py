"""The command line as a careless or unlucky operator meets it: wrong paths, odd files, odd words.

Each test is a mistake that once lost data, stored noise or answered with a misleading line.
"""

from __future__ import annotations

import gzip
import json
import mailbox
import shutil
import sqlite3
from pathlib import Path

from tests.test_cli import mail, one_clear_line, run


def _sqlite(tmp_path: Path, template: Path) -> tuple[Path, str]:
    db = tmp_path / "evidence.db"
    shutil.copyfile(template, db)
    return db, f"sqlite:///{db}"


def _refs(db_url: str) -> list[str]:
    p = run("list", "--json", db_url=db_url)
    assert p.returncode == 0, p.stderr
    return [r["reference"] for r in json.loads(p.stdout)]


def _mbox(path: Path, n: int) -> Path:
    mb = mailbox.mbox(path)
    for i in range(n):
        mb.add(mail(i))
    mb.flush()
    mb.close()
    return path


def test_export_onto_the_database_file_is_refused_and_the_records_survive(
    tmp_path: Path, sqlite_template: Path
) -> None:
    # `export -o evidence.db` replaced the database with JSON lines: every record lost.
    db, url = _sqlite(tmp_path, sqlite_template)
    (tmp_path / "one.eml").write_bytes(bytes(mail(1)))
    assert run("import", str(tmp_path / "one.eml"), db_url=url).returncode == 0
    for target in (db, tmp_path / "." / "evidence.db", Path(f"{db}-wal")):
        out = one_clear_line(run("export", "-o", str(target), db_url=url))
        assert "it is the database" in out
    assert _refs(url) == ["EV-000001"]
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_export_replaces_an_earlier_file_whole_and_writes_through_a_symlink(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "one.eml").write_bytes(bytes(mail(1)))
    assert run("import", str(tmp_path / "one.eml"), db_url=db_url).returncode == 0
    real = tmp_path / "pack.jsonl"
    real.write_text("old export\n")
    real.chmod(0o600)
    link = tmp_path / "latest.jsonl"
    link.symlink_to(real)
    p = run("export", "-o", str(link), db_url=db_url)
    assert p.returncode == 0, p.stderr
    assert link.is_symlink() and [json.loads(x)["reference"] for x in real.read_text().splitlines()] == ["EV-000001"]
    assert real.stat().st_mode & 0o777 == 0o600  # an export kept private stays private
    assert not any(x.name.endswith(".tmp") for x in tmp_path.iterdir())
    assert "folder" in one_clear_line(run("export", "-o", str(tmp_path), db_url=db_url))


def test_import_of_a_gzipped_mbox_is_refused_not_stored_as_a_record(db_url: str, tmp_path: Path) -> None:
    # A gzip'd mbox became one "evidence" record of binary noise, with a reference and a receipt.
    plain = _mbox(tmp_path / "old.mbox", 2)
    gz = tmp_path / "old.mbox.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    out = one_clear_line(run("import", str(gz), db_url=db_url))
    assert "gzip-compressed" in out and "gunzip" in out
    assert _refs(db_url) == []
    p = run("import", str(plain), db_url=db_url)  # decompressed, as the line says: both messages
    assert "imported 2 message(s)" in p.stdout, p.stderr


def test_import_of_a_file_that_is_not_mail_is_refused(db_url: str, tmp_path: Path) -> None:
    for name, data in [("notes.txt", b"remember to chase the council\nabout the contract\n"),
                       ("scan.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"),
                       ("blob.bin", b"\x00\x01\x02\xff\xfe binary")]:
        (tmp_path / name).write_bytes(data)
        out = one_clear_line(run("import", str(tmp_path / name), db_url=db_url))
        assert "is not an e-mail message or mbox" in out, out
    assert _refs(db_url) == []
    # A message with a byte-order mark or a blank line before its headers is still mail.
    (tmp_path / "bom.eml").write_bytes(b"\xef\xbb\xbf\r\n" + bytes(mail(7)))
    p = run("import", str(tmp_path / "bom.eml"), db_url=db_url)
    assert "imported 1 message(s)" in p.stdout, p.stderr


def test_search_takes_an_excluded_word_with_its_dash(db_url: str, tmp_path: Path) -> None:
    # README: `-exclude`. `search fleet -babcock` ended with "unrecognized arguments: -babcock".
    (tmp_path / "a.eml").write_bytes(bytes(mail(1)))
    (tmp_path / "b.eml").write_bytes(bytes(mail(2, "bob@example.org", body=(
        "Project: Fleet 2\nPublic body: Kent County Council\nSupplier: Serco\n\nThe fleet contract ran late.\n"))))
    for f in ("a.eml", "b.eml"):
        assert run("import", str(tmp_path / f), db_url=db_url).returncode == 0
    p = run("search", "fleet", "-babcock", "--json", db_url=db_url)
    assert p.returncode == 0, p.stderr
    assert [h["reference"] for h in json.loads(p.stdout)] == ["EV-000002"]
    p = run("search", "-serco", "--limit", "5", "fleet", db_url=db_url)
    assert p.returncode == 0, p.stderr
    assert "EV-000001" in p.stdout and "EV-000002" not in p.stdout
    # A misspelt option is still an error, not a word.
    assert "--lmit" in one_clear_line(run("search", "fleet", "--lmit", "3", db_url=db_url))


def test_backup_onto_a_folder_is_refused_and_leaves_no_copy_behind(tmp_path: Path, sqlite_template: Path) -> None:
    # `backup DIR --force` copied the whole database to DIR.tmp, then failed with
    # "IsADirectoryError: [Errno 21] ..." and left the copy there.
    _db, url = _sqlite(tmp_path, sqlite_template)
    folder = tmp_path / "backups"
    folder.mkdir()
    for extra in ([], ["--force"]):
        out = one_clear_line(run("backup", str(folder), *extra, db_url=url))
        assert "is a folder" in out and "IsADirectoryError" not in out
    assert not (tmp_path / "backups.tmp").exists() and list(folder.iterdir()) == []
    out = one_clear_line(run("backup", str(tmp_path / "nope" / "b.db"), db_url=url))
    assert "no such folder" in out
    # The database itself (or its WAL) is refused before --force is suggested.
    assert "database itself" in one_clear_line(run("backup", str(tmp_path / "evidence.db"), db_url=url))
    assert "database's own files" in one_clear_line(run("backup", f"{tmp_path}/evidence.db-wal", "--force",
                                                        db_url=url))


def test_a_database_from_a_newer_version_says_so_instead_of_asking_for_db_upgrade(
    tmp_path: Path, sqlite_template: Path
) -> None:
    # Every command said "run: evidence-bot db upgrade", which then failed with
    # "CommandError: Can't locate revision identified by '9999'": a circle.
    db, url = _sqlite(tmp_path, sqlite_template)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = '9999'")
    for args in (["db", "upgrade"], ["list"], ["search", "fleet"], ["import", str(tmp_path / "x.eml")]):
        out = one_clear_line(run(*args, db_url=url))
        assert "newer evidence-bot" in out and "(9999)" in out, out
    with sqlite3.connect(db) as con:  # and nothing was done to it
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999",)]


def test_purge_with_an_age_beyond_the_calendar_is_one_clear_line(db_url: str) -> None:
    out = one_clear_line(run("purge", "--older-than", "99999y", "--yes", db_url=db_url))
    assert "OverflowError" not in out and "99999y" in out


def test_a_database_error_names_the_database_but_never_its_password(tmp_path: Path) -> None:
    """SQLite's "file is not a database" and "unable to open database file" say which file nowhere."""
    junk = tmp_path / "notes.db"
    junk.write_text("not a database")
    out = one_clear_line(run("list", db_url=f"sqlite:///{junk}"))
    assert "file is not a database" in out and str(junk) in out
    missing = tmp_path / "no-such-folder" / "evidence.db"
    out = one_clear_line(run("list", db_url=f"sqlite:///{missing}"))
    assert "unable to open database file" in out and str(missing) in out
    out = one_clear_line(run("list", db_url="postgresql+psycopg://postgres:s3cret-pw@127.0.0.1:9/none"))
    assert "database unavailable" in out and "s3cret-pw" not in out
