"""The applicant's side in a real browser, at phone width (375×740) and with the keyboard alone:
applying as the victim, applying for someone else (who then consents by the link in their
letter), and following the case by the link in the acknowledgement. No mouse: Tab and Shift+Tab
move, Space ticks and chooses, the arrow keys move between options, Enter follows links and
sends forms. Every page loaded is checked with axe-core for WCAG 2.2 AA (browser_support.py).

SQLite only: the pages are the point here; the engine's databases are covered elsewhere.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from email import policy
from email.parser import BytesParser

import pytest
from sqlalchemy import select

from engine.models import Case
from engine.queries import case_view
from engine.scenarios import Walker, application
from engine.worker import run_pass

from .browser_support import Site, Visitor
from .conftest import START

pytestmark = pytest.mark.browser
TODAY = START.date()
PHONE = {"width": 375, "height": 740}
CONTINUE = "button[name='form-action'][value='']"
PRIVATE_LINK = re.compile(r"https?://[^/\s]+(/(?:track|consent)/[A-Za-z0-9_-]+)")


def on_a_phone(site: Site, who: str) -> Visitor:
    person = site.visitor()
    person.who = who
    person.page.set_viewport_size(PHONE)
    return person


# ----- the keyboard -------------------------------------------------------------------------

def follow(person: Visitor, selector: str) -> None:
    """Tab to a link or button and press Enter: a new page loads (and is checked)."""
    person.tab_to(selector)
    person.navigates(lambda: person.page.keyboard.press("Enter"))


def type_into(person: Visitor, selector: str, text: str) -> None:
    person.tab_to(selector)
    person.page.keyboard.type(text)


def type_date(person: Visitor, prefix: str, day: date) -> None:
    type_into(person, f"#{prefix}-day", str(day.day))
    for part, text in (("month", day.month), ("year", day.year)):
        person.page.keyboard.press("Tab")
        assert person.focused()["id"] == f"{prefix}-{part}"
        person.page.keyboard.type(str(text))


def choose(person: Visitor, name: str, value: str) -> None:
    """Tab into a radio group (onto its chosen option, else its first), Space to choose, then the
    arrow keys to move to the option wanted (which chooses it)."""
    keys = person.page.keyboard
    person.tab_to(f"input[type=radio][name='{name}']")
    if not person.focused()["checked"]:
        keys.press("Space")
    for _ in range(10):
        if person.focused()["value"] == value:
            break
        keys.press("ArrowDown")
    assert person.page.is_checked(f"input[name='{name}'][value='{value}']")


def tick(person: Visitor, selector: str) -> None:
    person.tab_to(selector)
    person.page.keyboard.press("Space")
    assert person.page.is_checked(selector)


def tab_to_text(person: Visitor, selector: str, words: str, limit: int = 150) -> None:
    """Tab until an element matching `selector` whose text (visually hidden words too) holds `words`."""
    for _ in range(limit):
        person.page.keyboard.press("Tab")
        if person.page.evaluate("([s, w]) => { const e = document.activeElement;"
                                " return Boolean(e && e.matches(s) && e.textContent.includes(w)); }",
                                [selector, words]):
            return
    raise AssertionError(f"Tab never reached {selector} with {words!r}")


def expect_error_summary(person: Visitor, href: str) -> None:
    """The error summary has the focus; Tab reaches its link to the field, Enter moves there."""
    page = person.page
    assert page.title().startswith("Error: ")
    page.wait_for_function("() => document.activeElement && "
                           "document.activeElement.classList.contains('govuk-error-summary')")
    page.keyboard.press("Tab")
    assert person.focused()["href"] == href
    page.keyboard.press("Enter")
    page.wait_for_function("(id) => document.activeElement && document.activeElement.id === id", arg=href[1:])


# ----- the applicant's answers ----------------------------------------------------------------

def answer_incident(person: Visitor, index: int, occurred: date, reported_to: str, hate: str) -> None:
    prefix = f"incidents-{index}"
    type_date(person, f"{prefix}-occurred_on", occurred)
    type_date(person, f"{prefix}-reported_on", occurred + timedelta(days=1))
    choose(person, f"{prefix}-reported_to", reported_to)
    type_into(person, f"#{prefix}-reference", f"CAD-{index + 1}")
    type_into(person, f"#{prefix}-description", f"Shouting and banging at the door, time {index + 1}.")
    choose(person, f"{prefix}-hate", hate)


def answer_contact(person: Visitor, name: str, email: str) -> None:
    assert person.heading() == "What are your name and contact details?"
    type_into(person, "#name", name)
    type_into(person, "#email", email)
    follow(person, CONTINUE)
    assert person.heading() == "How would you like us to contact you?"
    choose(person, "preferred_contact", "email")
    person.page.keyboard.press("Tab")
    assert person.focused()["id"] == "email" and person.focused()["value"] == email, \
        "the email address given on the last page is shown under the choice"
    person.checked()  # with the reveal open
    follow(person, CONTINUE)


def reference_on_confirmation(person: Visitor) -> str:
    assert person.heading() == "Application sent"
    found = re.search(r"Your case reference\s+(ASB-\d{4}-\d+)", person.main_text())
    assert found, person.main_text()[:500]
    return found.group(1)


def outbox_letters(site: Site) -> list:
    """Every letter the worker delivered, read back from the .eml files it wrote."""
    run_pass(site.service)
    folder = site.service.settings.outbox_dir
    return [BytesParser(policy=policy.default).parsebytes(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def link_in_letter(site: Site, subject: str, purpose: str) -> str:
    for letter in outbox_letters(site):
        if str(letter["Subject"]).strip().startswith(subject):  # a folded subject reads back with a space
            body = letter.get_body(preferencelist=("plain",)).get_content()
            links = [m.group(1) for m in PRIVATE_LINK.finditer(body) if m.group(1).startswith(f"/{purpose}/")]
            assert len(links) == 1, body
            return links[0]
    raise AssertionError(f"no letter {subject!r} in the outbox")


# ----- a. the victim applies ------------------------------------------------------------------

def test_a_victim_applies_by_keyboard_on_a_phone(site):
    person = on_a_phone(site, "victim")
    keys = person.page.keyboard
    person.open("/apply")
    assert person.heading() == "Apply for an ASB case review"
    follow(person, "a.govuk-button--start")

    # Continuing without an answer: the error summary leads to the question.
    assert person.heading() == "Who are you applying for?"
    follow(person, CONTINUE)
    expect_error_summary(person, "#relationship_to_victim")
    keys.press("Space")  # the first option, "Myself", now has the focus
    assert person.page.is_checked("input[name=relationship_to_victim][value=self]")
    follow(person, CONTINUE)

    assert person.heading() == "Are you applying as a person, or for a business or group?"  # never "About the victim"
    choose(person, "type", "individual")
    type_into(person, "#postcode", "EX1 1AA")
    follow(person, CONTINUE)
    answer_contact(person, "Robin Victim", "robin@example.org")

    assert person.heading() == "Do you need any help to communicate with us?"
    tick(person, "input[name=communication_needs][value=interpreter]")
    keys.press("Tab")
    assert person.focused()["id"] == "interpreter_language", "the language is asked under the ticked option"
    keys.type("Polish")
    tick(person, "input[name=communication_needs][value=large_print]")
    person.checked()  # the page with its reveal open meets WCAG too
    follow(person, CONTINUE)

    assert person.heading() == "Which incidents have you reported?"
    answer_incident(person, 0, TODAY - timedelta(days=40), "police", "no")
    follow(person, "button[value='add:incidents']")
    assert person.page.input_value("#incidents-0-description") == "Shouting and banging at the door, time 1."
    answer_incident(person, 1, TODAY - timedelta(days=6), "council", "no")
    follow(person, CONTINUE)

    assert person.heading() == "How is the behaviour affecting you?"
    type_into(person, "#impact", "I cannot sleep and I am afraid to go out.")
    follow(person, CONTINUE)

    assert person.heading() == "Check your answers before sending your application"
    text = person.main_text()
    assert "Help to communicate An interpreter (Polish), Large print" in " ".join(text.split())
    hint = person.page.inner_text("#threshold-hint")
    assert "do not appear to meet the threshold" in hint and "still" in hint, "never a dead end"

    # Back to the incidents to say the second was motivated by hate; the hint follows the change.
    tab_to_text(person, "a", "incident 2 motivated by hate")
    person.navigates(lambda: keys.press("Enter"))
    assert person.page.get_attribute("a.govuk-back-link", "href") == "/apply/check-answers"
    choose(person, "incidents-1-hate", "yes")
    follow(person, CONTINUE)
    assert "appear to meet the threshold" in person.page.inner_text("#threshold-hint")
    assert "do not appear" not in person.page.inner_text("#threshold-hint")

    follow(person, "button[data-prevent-double-click]")
    reference = reference_on_confirmation(person)
    with site.service.sessions() as db:
        sent = db.scalar(select(Case).where(Case.reference == reference)).application
    assert sent["applicant"]["preferred_contact"] == "email"
    assert sent["applicant"]["communication_needs"] == ["interpreter", "large_print"]
    assert sent["applicant"]["interpreter_language"] == "Polish"
    assert [i["hate"] for i in sent["incidents"]] == [False, True]
    site.findings.assert_clean()


# ----- b. someone applies for the victim, who consents by the link in the letter ---------------

def test_a_third_party_applies_and_the_victim_consents_by_the_letters_link(site):
    helper = on_a_phone(site, "third party")
    helper.open("/apply")
    follow(helper, "a.govuk-button--start")
    choose(helper, "relationship_to_victim", "family")
    follow(helper, CONTINUE)
    choose(helper, "type", "individual")
    type_into(helper, "#name", "Pat Victim")
    type_into(helper, "#postcode", "EX2 2BB")
    follow(helper, CONTINUE)
    assert helper.heading() == "How can we contact the victim?"
    follow(helper, CONTINUE)
    expect_error_summary(helper, "#email")  # at least one way to reach the victim
    type_into(helper, "#email", "pat@example.org")
    follow(helper, CONTINUE)
    answer_contact(helper, "Sam Helper", "sam@example.org")
    tick(helper, "input[name=communication_needs][value=none]")
    follow(helper, CONTINUE)
    assert helper.heading() == "Has the victim agreed to this application?"
    choose(helper, "consent_confirmed", "yes")
    follow(helper, CONTINUE)
    answer_incident(helper, 0, TODAY - timedelta(days=10), "police", "yes")
    follow(helper, CONTINUE)
    type_into(helper, "#impact", "My mother is frightened in her own home.")
    follow(helper, CONTINUE)
    assert "The victim agrees Yes" in " ".join(helper.main_text().split())
    assert "appear to meet the threshold" in helper.page.inner_text("#threshold-hint")
    follow(helper, "button[data-prevent-double-click]")
    reference = reference_on_confirmation(helper)
    with site.service.sessions() as db:
        assert case_view(db, reference)["stage"] == "consent"

    sent = {str(letter["Subject"]).split(" (")[0].split("?")[0]: letter for letter in outbox_letters(site)}
    assert str(sent["Do you agree to an ASB case review"]["To"]) == "pat@example.org"  # the victim's own address
    told = sent["We have asked the victim to agree to your ASB case review application"]
    assert str(told["To"]) == "sam@example.org"
    assert "/consent/" not in told.get_body(preferencelist=("plain",)).get_content()  # never the victim's link
    victim = on_a_phone(site, "victim")
    victim.open(link_in_letter(site, "Do you agree to an ASB case review?", "consent"))
    assert victim.heading() == "Do you agree to an ASB case review?"
    assert "Sam Helper has applied" in victim.main_text()
    choose(victim, "consent", "given")
    follow(victim, "form button.govuk-button")
    assert victim.heading() == "Thank you for your answer"
    with site.service.sessions() as db:
        assert case_view(db, reference)["stage"] == "incident_history"
    site.findings.assert_clean()


# ----- c. the applicant follows the case and is heard -------------------------------------------

def test_the_applicant_follows_the_case_reads_a_letter_and_sends_an_impact_statement(site):
    service = site.service
    sample = application(TODAY, name="Jordan Lee", preferred_contact="email")
    reference = service.apply(sample)["reference"]
    walker = Walker(service, reference)
    walker.provide_histories()
    walker.verify(sample["incidents"])
    walker.confirm()
    walker.schedule_panel(TODAY + timedelta(days=14))
    assert walker.ready("impact_statement")

    person = on_a_phone(site, "applicant")
    keys = person.page.keyboard
    person.open(link_in_letter(site, "We have received your ASB case review application", "track"))
    assert person.heading() == "Your ASB case review"
    assert reference in person.main_text()

    tab_to_text(person, "#letters a", "will go ahead")  # the threshold decision
    person.navigates(lambda: keys.press("Enter"))
    assert person.heading().startswith("Your ASB case review will go ahead")
    assert reference in person.main_text() and "threshold" in person.main_text()
    follow(person, "a.govuk-back-link")

    follow(person, "a[href*='/tasks/']")
    assert person.heading() == walker.ready("impact_statement")[0].title
    type_into(person, "#statement", "I want to be able to sleep again.")
    choose(person, "wishes_to_attend", "yes")
    keys.press("Shift+Tab")  # back to the statement (the choice is one stop), to add a sentence
    assert person.focused()["id"] == "statement"
    keys.press("Control+End")
    keys.type(" And to feel safe at my own door.")
    follow(person, CONTINUE)

    assert person.heading() == "Your ASB case review"
    assert "is sent" in person.page.inner_text(".govuk-notification-banner")
    assert not walker.ready("impact_statement")
    with service.sessions() as db:
        history = case_view(db, reference)["history"]
    assert any(h["actor"] == "applicant" and h["event"] == "task_completed" for h in history), history[-3:]
    site.findings.assert_clean()
