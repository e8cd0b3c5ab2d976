"""The demo data gives every demo account something to do, on the page they land on after
signing in (`casereview seed-demo`, run by `make run`)."""
from __future__ import annotations

import pytest

from engine.accounts import require_user
from engine.demo import AGENCIES, STAFF, seed
from engine.queries import ready_tasks
from engine.service import Actor
from engine.studio import list_drafts

from .web_helpers import make_app, page, sign_in

WORKING = ["coordinator@demo.test", "chair@demo.test", "reviewer@demo.test",
           *(email for _name, email in AGENCIES.values())]


@pytest.fixture
def seeded(service):
    made = seed(service)
    assert made["cases_created"]
    return service


def test_every_demo_account_that_works_on_cases_has_a_ready_task(seeded):
    assert set(WORKING) | {"owner@demo.test", "admin@demo.test"} == set(STAFF) | {e for _n, e in AGENCIES.values()}
    with seeded.sessions() as db:
        for email in WORKING:
            user = require_user(db, email)
            tasks = ready_tasks(db, actor=Actor(user.email, user))
            assert tasks, f"{email} has nothing to do"
        fire = require_user(db, "fire@demo.test")
        names = {t["name"] for t in ready_tasks(db, actor=Actor(fire.email, fire))}
        assert "deliver_action" in names  # the fire and rescue service's action from the panel
        # The process owner has a draft in progress.
        assert list_drafts(db)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_each_demo_account_lands_on_a_page_with_work(seeded):
    app = make_app(seeded)
    for email in [*WORKING, "owner@demo.test", "admin@demo.test"]:
        client = app.test_client()
        landed = sign_in(client, email).headers["Location"]
        shown = page(client.get(landed))
        if email == "owner@demo.test":
            assert landed.rstrip("/") == "/studio" and shown.cssselect('main a[href^="/studio/drafts/"]'), email
        elif email == "admin@demo.test":
            assert landed.rstrip("/") == "/admin"
            listed = " ".join(shown.text_content().split())
            assert all(other in listed for other in WORKING), "the accounts to manage"
        else:
            assert landed.rstrip("/") == "/tasks"
            assert shown.cssselect('main a[href^="/tasks/"]'), f"{email} lands on an empty task list"
