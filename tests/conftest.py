"""Fixtures: a migrated database per test (SQLite file, and PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.settings import Settings
from storage.db import make_engine
from storage.migrate import upgrade
from tests.support.pgscratch import scratch_database

PG_URL = os.environ.get("TEST_DATABASE_URL")
PG_SKIP = "PostgreSQL tests need TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"

CORPUS = Path(__file__).parent / "corpus"


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    """A database of this test session's own on the TEST_DATABASE_URL server, dropped at the end.

    Two test runs against one server (a developer and CI, or parallel agents) never meet.
    """
    if not PG_URL:
        pytest.skip(PG_SKIP)
    with scratch_database(Settings.model_validate({"DATABASE_URL": PG_URL}).database_url, "evidence_test") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; each test gets a copy (running every migration
    for each of some 450 tests took a minute and a half of the suite)."""
    path = tmp_path_factory.mktemp("template") / "evidence.db"
    upgrade(f"sqlite:///{path}")
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file, which is what is copied
    con.close()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A freshly migrated database of each kind the machine has."""
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "evidence.db")
        return f"sqlite:///{tmp_path}/evidence.db"
    url: str = request.getfixturevalue("pg_session_url")
    _reset_postgres(url)
    upgrade(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    yield e
    e.dispose()


def make_settings(db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": db_url,
        "EVIDENCE_ADDRESSES": "evidence@localhost,evidence@example.org",
        "EVIDENCE_SMTP_HOST": "127.0.0.1",
        "EVIDENCE_SMTP_PORT": 0,
        "PORT": 0,
        "EVIDENCE_FROM_ADDRESS": "evidence@example.org",
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Marks a test whose body failed, so a fixture's teardown can show what it collected (logs)."""
    report = yield
    if report.when == "call" and report.failed:
        item.failed_call = True  # type: ignore[attr-defined]
    return report
