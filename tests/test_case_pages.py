"""The case page in sections, the case list, and the coordinator's confirmation and reassign pages,
through Flask's test client: what each person sees on each page, and that nothing changes until
it is confirmed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.models import AuditEvent, Case
from engine.scenarios import Walker, application

from .conftest import START
from .web_helpers import make_app, page, sign_in, text_of

TODAY = START.date()
SECTIONS = {"": "Summary", "/incidents": "Incidents and threshold", "/actions": "Action plan",
            "/letters": "Letters and documents", "/timeline": "Timeline", "/process": "Process"}


@pytest.fixture
def app(service):
    return make_app(service)


def client_for(app, email):
    client = app.test_client()
    sign_in(client, email)
    return client


@pytest.fixture
def delivering(service):
    """A case whose panel gave the police and the council an action each."""
    reference = service.apply(application(TODAY, name="Jordan Lee", postcode="EX1 1AA"))["reference"]
    walker = Walker(service, reference)
    walker.provide_histories()
    walker.verify(application(TODAY)["incidents"])
    walker.confirm()
    walker.schedule_panel(TODAY + timedelta(days=10))
    walker.panel_inputs()
    walker.outcome([
        {"description": "Joint visit to the neighbour", "agency": "police", "owner": "PC Evans",
         "due": (TODAY + timedelta(days=28)).isoformat()},
        {"description": "Noise monitoring for a month", "agency": "council", "owner": "Noise team",
         "due": (TODAY + timedelta(days=35)).isoformat()},
    ])
    return reference


def identity_bar(response) -> dict[str, str]:
    bar = page(response).cssselect(".moj-identity-bar")[0]
    facts = {" ".join(dt.text_content().split()): " ".join(dd.text_content().split())
             for dt, dd in zip(bar.cssselect("dt"), bar.cssselect("dd"))}
    return {"title": " ".join(bar.cssselect("h1")[0].text_content().split()), **facts}


def test_every_section_has_the_identity_bar_and_the_sub_navigation(app, service, delivering):
    coordinator = client_for(app, "coordinator@demo.test")
    for suffix, name in SECTIONS.items():
        response = coordinator.get(f"/cases/{delivering}{suffix}")
        assert response.status_code == 200, suffix
        bar = identity_bar(response)
        assert bar["title"] == f"Case {delivering} Open"
        assert bar["Victim"] == "Jordan Lee"
        assert bar["Stage"] == "Delivering the action plan"
        assert bar["Next deadline"].startswith(f"{(TODAY + timedelta(days=28)):%-d %B %Y}"), bar
        links = page(response).cssselect("nav.moj-sub-navigation a")
        assert [a.text_content() for a in links] == list(SECTIONS.values())
        assert [a.get("href") for a in links] == [f"/cases/{delivering}{s}" for s in SECTIONS]
        current = [a.text_content() for a in links if a.get("aria-current") == "page"]
        assert current == [name]
        assert page(response).cssselect("h2#section")[0].text_content() == name
    # Each view is audited, with the section that was seen.
    with service.sessions() as db:
        views = db.scalars(select(AuditEvent).where(AuditEvent.event == "case_viewed")
                           .order_by(AuditEvent.id)).all()
    assert [v.detail["section"] for v in views] == ["summary", "incidents", "actions", "letters", "timeline",
                                                    "process"]
    assert {v.detail["page"] for v in views} == {"case"} and {v.actor for v in views} == {"coordinator@demo.test"}


def test_sections_show_agency_names_and_long_dates(app, delivering):
    coordinator = client_for(app, "coordinator@demo.test")
    summary = text_of(coordinator.get(f"/cases/{delivering}"))
    assert "Agencies involved Exampleshire Police, Exampleton District Council" in summary
    assert f"Received {TODAY:%-d %B %Y}" in summary
    incidents = page(coordinator.get(f"/cases/{delivering}/incidents"))
    reported_to = [row.cssselect("td")[2].text_content() for row in incidents.cssselect("table tbody tr")[:3]]
    assert reported_to == ["Exampleshire Police (REF-001)", "Exampleton District Council (REF-002)",
                           "Exampleshire Police (REF-003)"]
    assert "The threshold was met" in incidents.text_content()
    actions = page(coordinator.get(f"/cases/{delivering}/actions"))
    rows = [[" ".join(td.text_content().split()) for td in tr.cssselect("td")] for tr in actions.cssselect("tbody tr")]
    assert [row[:4] for row in rows] == [
        ["Joint visit to the neighbour", "Exampleshire Police", "PC Evans", f"{TODAY + timedelta(days=28):%-d %B %Y}"],
        ["Noise monitoring for a month", "Exampleton District Council", "Noise team",
         f"{TODAY + timedelta(days=35):%-d %B %Y}"]]
    timeline = page(coordinator.get(f"/cases/{delivering}/timeline"))
    titles = [t.text_content() for t in timeline.cssselect(".moj-timeline__title")]
    assert titles[-1] == "Application received" and "Task done: Record the panel outcome" in titles
    bylines = [b.text_content() for b in timeline.cssselect(".moj-timeline__byline")]
    assert bylines[0] == "by Pat Chair (chair@demo.test)" and bylines[-1] == "by the applicant"
    dates = [d.text_content() for d in timeline.cssselect(".moj-timeline__date time")]
    assert dates and all(d.startswith(f"{TODAY:%-d %B %Y} ") for d in dates)
    letters = text_of(coordinator.get(f"/cases/{delivering}/letters"))
    assert "to Exampleshire Police" in letters and "to the applicant" in letters
    for suffix in SECTIONS:
        html = coordinator.get(f"/cases/{delivering}{suffix}").get_data(as_text=True)
        assert f"{TODAY.isoformat()}<" not in html and ">police<" not in html


def test_a_partner_sees_only_their_agency_and_no_contact_details(app, delivering):
    police = client_for(app, "police@demo.test")
    for suffix in SECTIONS:
        response = police.get(f"/cases/{delivering}{suffix}")
        assert response.status_code == 200, suffix
        body = text_of(response)
        assert "applicant@example.org" not in body and "01632 960000" not in body and "1 High Street" not in body
        assert identity_bar(response)["Victim"] == "Jordan Lee"
    # A partner's next deadline is their own agency's.
    council_bar = identity_bar(client_for(app, "council@demo.test").get(f"/cases/{delivering}"))
    assert council_bar["Next deadline"].startswith(f"{TODAY + timedelta(days=35):%-d %B %Y}"), council_bar
    actions = text_of(police.get(f"/cases/{delivering}/actions"))
    assert "Joint visit to the neighbour" in actions and "Noise monitoring" not in actions
    documents = police.get(f"/cases/{delivering}/letters")
    assert [a.text_content() for a in page(documents).cssselect("nav.moj-sub-navigation a")][3] == "Documents"
    assert "Download PDF" not in text_of(documents)
    # No buttons to withdraw or escalate for a partner, and those pages refuse them.
    assert not page(police.get(f"/cases/{delivering}")).cssselect(".moj-identity-bar__actions")
    assert police.get(f"/cases/{delivering}/withdraw").status_code == 403
    # An agency not involved cannot see any section, and is told what they can do.
    fire = client_for(app, "fire@demo.test")
    for suffix in SECTIONS:
        refused = fire.get(f"/cases/{delivering}{suffix}")
        assert refused.status_code == 404
    assert "find a case in the list of cases you can see" in text_of(refused)


def test_withdrawing_needs_a_reason_and_changes_nothing_until_confirmed(app, service, delivering):
    coordinator = client_for(app, "coordinator@demo.test")
    summary = page(coordinator.get(f"/cases/{delivering}"))
    link = [a for a in summary.cssselect(".moj-identity-bar__actions a") if "Withdraw" in a.text_content()][0]
    assert link.get("href") == f"/cases/{delivering}/withdraw"
    assert not summary.cssselect("form[action$='/withdraw']")  # no one-click button on the case page
    confirm = coordinator.get(link.get("href"))
    assert confirm.status_code == 200
    assert page(confirm).cssselect("h1")[0].text_content() == "Withdraw the case on the applicant's behalf"
    missing = coordinator.post(f"/cases/{delivering}/withdraw", data={"reason": "   "})
    assert missing.status_code == 422
    summary_links = page(missing).cssselect(".govuk-error-summary a")
    assert [(a.text_content(), a.get("href")) for a in summary_links] == [
        ("Enter why the applicant is withdrawing", "#reason")]
    assert page(missing).cssselect("title")[0].text_content().startswith("Error: ")
    with service.sessions() as db:
        assert db.scalar(select(Case.status).where(Case.reference == delivering)) == "open"
    done = coordinator.post(f"/cases/{delivering}/withdraw", data={"reason": "Moved away, told us by phone"})
    assert done.status_code == 302 and done.headers["Location"] == f"/cases/{delivering}"
    with service.sessions() as db:
        assert db.scalar(select(Case.status).where(Case.reference == delivering)) == "withdrawn"
    after = coordinator.get(f"/cases/{delivering}")
    assert identity_bar(after)["title"] == f"Case {delivering} Withdrawn"
    assert not page(after).cssselect(".moj-identity-bar__actions")


def test_escalating_keeps_what_was_typed_when_the_engine_refuses(app, service):
    reference = service.apply(application(TODAY))["reference"]  # no threshold decision yet
    coordinator = client_for(app, "coordinator@demo.test")
    empty = coordinator.post(f"/cases/{reference}/escalate", data={"reason": ""})
    assert empty.status_code == 422 and "Enter why the applicant wants an escalation" in text_of(empty)
    refused = coordinator.post(f"/cases/{reference}/escalate", data={"reason": "Nobody called me back"})
    assert refused.status_code == 422
    assert "no threshold decision yet" in page(refused).cssselect(".govuk-error-summary")[0].text_content()
    assert page(refused).cssselect("textarea#reason")[0].text_content() == "Nobody called me back"
    assert Walker(service, reference).ready("decide_escalation") == []


def test_reassigning_lists_only_people_who_may_do_the_task(app, service, delivering):
    from engine.accounts import create_user

    with service.sessions() as db, db.begin():
        create_user(db, email="second@police.example", name="Second Officer", role="partner", agency="police",
                    now=service.now())
        create_user(db, email="gone@police.example", name="Gone Officer", role="partner", agency="police",
                    now=service.now())
        from engine.models import User
        db.scalar(select(User).where(User.email == "gone@police.example")).active = False
    task = Walker(service, delivering).ready("deliver_action")
    police_task = next(t for t in task if t.agency == "police")
    coordinator = client_for(app, "coordinator@demo.test")
    summary = page(coordinator.get(f"/cases/{delivering}"))
    assert summary.cssselect(f"a[href='/tasks/{police_task.id}/assign']")
    form = page(coordinator.get(f"/tasks/{police_task.id}/assign"))
    choices = [i.get("value") for i in form.cssselect("input[name=assignee]")]
    assert choices == ["police@demo.test", "second@police.example", ""]  # by name; inactive and others left out
    assert not form.cssselect("input[type=email]")
    refused = coordinator.post(f"/tasks/{police_task.id}/assign", data={"assignee": "council@demo.test"})
    assert refused.status_code == 422
    assert "only an officer of Exampleshire Police may do this task" in text_of(refused)
    assert coordinator.post(f"/tasks/{police_task.id}/assign",
                            data={"assignee": "gone@police.example"}).status_code == 422
    assert next(t for t in Walker(service, delivering).ready() if t.id == police_task.id).assignee is None
    given = coordinator.post(f"/tasks/{police_task.id}/assign", data={"assignee": "second@police.example"})
    assert given.status_code == 302
    assert next(t for t in Walker(service, delivering).ready() if t.id == police_task.id).assignee == \
        "second@police.example"
    assert "‘Update the action’ is now with Second Officer." in text_of(coordinator.get(given.headers["Location"]))


def _listed(response) -> list[list[str]]:
    return [[" ".join(td.text_content().split()) for td in tr.cssselect("td")]
            for tr in page(response).cssselect("table.app-case-list tbody tr")]


def test_the_case_list_filters_sorts_and_tags(app, service, clock, delivering):
    housing_case = service.apply(application(TODAY, name="Chris Patel", postcode="EX3 3CC",
                                             reported_to="housing"))["reference"]
    clock.set(clock.now() + timedelta(days=1))
    later = service.apply(application(TODAY + timedelta(days=1), name="Sam Later"))["reference"]
    service.withdraw(later, reason="Changed their mind")
    coordinator = client_for(app, "coordinator@demo.test")
    everything = coordinator.get("/cases")
    rows = _listed(everything)
    assert [row[0] for row in rows] == [later, housing_case, delivering]  # newest received first
    by_reference = {row[0]: row for row in rows}
    assert by_reference[delivering][2:4] == ["Open", "Delivering the action plan"]
    assert by_reference[later][2:4] == ["Withdrawn", "Withdrawn"]
    assert by_reference[later][4] == "–"
    assert "Overdue" not in by_reference[housing_case][4]
    header = page(everything).cssselect("th[aria-sort]")
    assert [h.text_content().strip().split(" (")[0] for h in header] == ["Received"]

    assert [r[0] for r in _listed(coordinator.get("/cases?status=withdrawn"))] == [later]
    assert [r[0] for r in _listed(coordinator.get("/cases?stage=action_delivery"))] == [delivering]
    assert [r[0] for r in _listed(coordinator.get("/cases?agency=housing"))] == [housing_case]
    assert [r[0] for r in _listed(coordinator.get("/cases?sort=reference"))] == sorted([later, housing_case,
                                                                                        delivering])
    by_due = [r[0] for r in _listed(coordinator.get("/cases?sort=due"))]
    assert by_due[-1] == later  # nothing due: last
    # Weeks later the housing case's history request is overdue; the delivering case's actions are not.
    clock.set(clock.now() + timedelta(days=20))
    overdue = coordinator.get("/cases?overdue=yes")
    assert [r[0] for r in _listed(overdue)] == [housing_case]
    assert "Overdue" in _listed(overdue)[0][4]
    chosen = page(overdue).cssselect(".moj-filter__selected a.moj-filter__tag")
    assert [a.text_content() for a in chosen] == ["Remove this filter: Overdue"]
    assert "No cases match these filters" in text_of(coordinator.get("/cases?q=nobody+at+all"))


def test_a_partner_lists_only_their_agencys_cases_without_contact_details(app, service, delivering):
    housing_case = service.apply(application(TODAY, name="Chris Patel", reported_to="housing"))["reference"]
    housing = client_for(app, "housing@demo.test")
    listed = housing.get("/cases")
    assert [r[0] for r in _listed(listed)] == [housing_case]
    assert "applicant@example.org" not in text_of(listed)
    assert not page(listed).cssselect("select#agency")  # a partner has no agency filter
    assert [r[0] for r in _listed(housing.get(f"/cases?q={delivering}"))] == []
    assert [r[0] for r in _listed(client_for(app, "fire@demo.test").get("/cases"))] == []


def test_a_long_case_list_is_paged(app, service, monkeypatch):
    from engine import queries

    references = [service.apply(application(TODAY, name=f"Person {n}"))["reference"] for n in range(5)]
    monkeypatch.setattr(queries, "CASES_PER_PAGE", 2)
    coordinator = client_for(app, "coordinator@demo.test")
    first = coordinator.get("/cases?sort=reference")
    assert [r[0] for r in _listed(first)] == references[:2]
    assert "5 cases (page 1 of 3)" in page(first).cssselect("caption")[0].text_content()
    third = coordinator.get("/cases?sort=reference&page=3")
    assert [r[0] for r in _listed(third)] == references[4:]
    assert page(third).cssselect(".govuk-pagination__prev a")[0].get("href") == "/cases?sort=reference&page=2"


def test_cannot_see_pages_say_what_to_do(app):
    owner = client_for(app, "owner@demo.test")
    refused = owner.get("/cases")
    assert refused.status_code == 403
    words = text_of(refused)
    assert "ask an administrator to change your account" in words and "go to the process studio" in words
    missing = client_for(app, "coordinator@demo.test").get("/no-such-page")
    assert missing.status_code == 404 and "go to your tasks" in text_of(missing)


def test_the_audit_trail_names_events_in_plain_words(app, service, delivering):
    admin = client_for(app, "admin@demo.test")
    trail = page(admin.get(f"/admin/audit?reference={delivering}"))
    events = {row.cssselect("td")[2].text_content() for row in trail.cssselect("table tbody tr")}
    assert {"Application received", "Task done"} <= events
    assert not any("_" in e for e in events)
    options = [o.text_content() for o in trail.cssselect("select#event option")]
    assert "Task done" in options and not any("_" in o for o in options)
    when = trail.cssselect("table tbody tr td")[0].text_content()
    assert when.startswith(f"{TODAY:%-d %B %Y} ")


def test_partners_search_only_what_they_may_see_and_not_who_downloaded_the_applicants_letters(app, service):
    """A third party's name is not shown to partner officers, so it does not find the case for them
    either; nor do they learn when staff read the applicant's letters."""
    sample = application(TODAY, third_party=True, name="Robin Victim")  # applied for by "Sam Carer"
    assert sample["applicant"]["name"] == "Sam Carer"
    reference = service.apply(sample)["reference"]
    coordinator, police = client_for(app, "coordinator@demo.test"), client_for(app, "police@demo.test")
    assert reference in text_of(coordinator.get("/cases?q=Sam Carer"))
    assert reference not in text_of(police.get("/cases?q=Sam Carer"))
    assert reference in text_of(police.get("/cases?q=Robin Victim"))

    letter = page(coordinator.get(f"/cases/{reference}/letters")).cssselect("a[href$='.pdf']")[0].get("href")
    assert coordinator.get(letter).status_code == 200
    assert "Letter downloaded" in text_of(coordinator.get(f"/cases/{reference}/timeline"))
    assert "Letter downloaded" not in text_of(police.get(f"/cases/{reference}/timeline"))


def test_the_process_section_shows_each_process_the_case_has_run(app, delivering):
    """Not only the case review: each action's delivery (and an escalation) has a diagram too, with
    the steps of every instance marked, and a process the case never ran is not found."""
    coordinator = client_for(app, "coordinator@demo.test")
    section = page(coordinator.get(f"/cases/{delivering}/process"))
    choices = [" ".join(item.text_content().split()) for item in section.cssselect("nav.app-process-choice li")]
    assert choices[0] == "ASB case review" and "Action delivery" in choices
    link = section.cssselect("nav.app-process-choice a")[0].get("href")
    assert "process=action_delivery" in link
    action_page = page(coordinator.get(link))
    diagram = action_page.cssselect("#case-diagram")[0]
    xml = coordinator.get(diagram.get("data-diagram"))
    assert b'id="action_delivery"' in xml.data
    state = coordinator.get(diagram.get("data-state")).get_json()
    assert state["current"], "each action waits for its update"
    assert coordinator.get(f"/cases/{delivering}/diagram.bpmn?process=escalation").status_code == 404
    assert coordinator.get(f"/cases/{delivering}/diagram.bpmn?process=nothing").status_code == 404
