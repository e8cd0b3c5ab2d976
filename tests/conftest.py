"""Fixtures: every engine test runs on SQLite and on PostgreSQL (its own schema per test)."""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from engine.clock import FixedClock
from engine.config import Settings
from engine.demo import seed_accounts
from engine.service import CaseReview

POSTGRES_URL = os.environ.get("CASEREVIEW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday


@pytest.fixture(scope="session")
def postgres_server():
    engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:  # never skip: the suite promises PostgreSQL coverage
        pytest.fail(f"PostgreSQL is needed at {POSTGRES_URL} (set CASEREVIEW_TEST_POSTGRES_URL): {exc}")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_server):
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with postgres_server.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with postgres_server.connect() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'casereview.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def clock():
    return FixedClock(START)


@pytest.fixture
def settings(database_url, tmp_path):
    return Settings(database_url=database_url, outbox_dir=tmp_path / "outbox", demo_password="test-password")


@pytest.fixture
def service(settings, clock):
    service = CaseReview(settings, clock)
    service.init()
    seed_accounts(service)
    yield service
    service.engine.dispose()


# ----- browser tests (Debian's chromium driven by Playwright; see browser_support.py) -----------

@pytest.fixture(scope="session")
def browser():
    from .browser_support import launch_chromium, missing_tools

    reason = missing_tools()
    if reason:
        pytest.fail(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def site(browser, tmp_path):
    """The app served on a local port, with demo accounts, a fixed clock at START and axe-core."""
    from .browser_support import Site

    site = Site(browser, tmp_path, START)
    yield site
    site.close()
