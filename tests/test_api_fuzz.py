"""schemathesis against the OpenAPI description: no generated request makes the server fail."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from engine.clock import FixedClock
from engine.config import Settings
from engine.demo import seed_accounts
from engine.scenarios import application
from engine.service import CaseReview
from engine.tokens import create_token

from .conftest import START
from .web_helpers import make_app


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    service = CaseReview(Settings(database_url=f"sqlite:///{folder / 'db.sqlite3'}", outbox_dir=folder / "out",
                                  demo_password="test-password"), FixedClock(START))
    service.init()
    seed_accounts(service)
    service.apply(application(START.date()))
    with service.transaction() as db:
        coordinator = create_token(db, "coordinator@demo.test", service.now())
        police = create_token(db, "police@demo.test", service.now())
    app = make_app(service)
    yield app, {"coordinator": coordinator, "police": police}
    service.engine.dispose()


@pytest.fixture(scope="module")
def api_schema(fuzz_target):
    app, _tokens = fuzz_target
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, fuzz_target):
    _app, tokens = fuzz_target
    for who in ("coordinator", "police", None):  # every role's view, and no token at all
        headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
        response = case.call(headers=headers)
        assert response.status_code < 500, (who, response.text[:500])
