"""Publishing: unsafe or broken bundles are refused; versions are immutable; cases keep theirs."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.errors import InvalidProcess
from engine.models import Case, ProcessVersion
from engine.scenarios import Walker, application
from engine.versions import compile_files, publish, shipped_files

from .conftest import START

XXE = """<?xml version="1.0"?>
<!DOCTYPE definitions [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">&secret;</definitions>"""

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">&lol3;</definitions>"""


def messages(files) -> list[str]:
    with pytest.raises(InvalidProcess) as error:
        compile_files(files)
    return [f"{e.get('file')} {e.get('element')} {e['message']}" for e in error.value.errors]


@pytest.fixture(scope="module")
def bundle():
    return shipped_files()


def test_shipped_bundle_compiles(bundle):
    version = compile_files(bundle)
    assert {"case_review", "threshold_check", "action_delivery", "escalation", "withdrawal"} <= set(version.specs)
    assert version.message_starts == {"escalation_requested": "escalation", "withdrawal_requested": "withdrawal"}
    assert [name for name, _ in version.threshold_inputs] == ["occasions", "reported_in_last_month", "hate_incidents"]


@pytest.mark.parametrize("document", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_entity_tricks_are_refused(bundle, document):
    found = messages({**bundle, "processes/evil.bpmn": document})
    assert any("processes/evil.bpmn" in m and "DOCTYPE" in m for m in found)


@pytest.mark.parametrize("escape", [
    "x = ().__class__.__base__.__subclasses__()",
    "import os",
    "x = open('/etc/passwd').read()",
    "x = getattr(reference, '__class__')",
    "x = '{0.__class__}'.format(reference)",
])
def test_escape_attempts_in_scripts_are_refused(bundle, escape):
    text = bundle["processes/case_review.bpmn"]
    marker = 'set_stage("application")'
    assert marker in text
    found = messages({**bundle, "processes/case_review.bpmn": text.replace(marker, escape + "\n" + marker, 1)})
    assert any("case_review.bpmn" in m and "acknowledge" in m for m in found), found


def test_escape_attempt_in_a_gateway_condition_is_refused(bundle):
    text = bundle["processes/case_review.bpmn"]
    start = text.index("<bpmn:conditionExpression")
    body_start = text.index(">", start) + 1
    body_end = text.index("</bpmn:conditionExpression>", body_start)
    evil = text[:body_start] + "().__class__.__mro__[1].__subclasses__()" + text[body_end:]
    found = messages({**bundle, "processes/case_review.bpmn": evil})
    assert any("condition" in m for m in found), found


def test_user_task_without_a_form_is_refused(bundle):
    text = bundle["processes/case_review.bpmn"]
    broken = text.replace('value="verify_incidents.json"', 'value="missing_form.json"', 1)
    assert broken != text
    found = messages({**bundle, "processes/case_review.bpmn": broken})
    assert any("verify_incidents" in m and "missing_form.json" in m for m in found)


def test_letter_without_template_is_refused(bundle):
    without = {k: v for k, v in bundle.items() if k != "processes/letters/closure.txt"}
    assert any("closure" in m for m in messages(without))


def test_invalid_form_schema_is_refused(bundle):
    found = messages({**bundle, "forms/follow_up.json": '{"type": "nonsense"}'})
    assert any("forms/follow_up.json" in m for m in found)


def test_running_cases_keep_their_version(service, bundle):
    old = service.apply(application(START.date()))["reference"]
    changed = bundle["processes/letters/acknowledgement.txt"].replace("Subject:", "Subject: [v2]", 1)
    with service.transaction() as db:
        version, created = publish(db, {**bundle, "processes/letters/acknowledgement.txt": changed},
                                   note="New wording", by="owner@demo.test", now=service.now())
        assert created and version.number == 2
    new = service.apply(application(START.date()))["reference"]
    with service.sessions() as db:
        pinned = dict(db.execute(select(Case.reference, ProcessVersion.number)
                                 .join(ProcessVersion, ProcessVersion.id == Case.process_version_id)).all())
    assert pinned == {old: 1, new: 2}
    Walker(service, old).provide_histories()  # the old case still runs on version 1
    with service.transaction() as db:
        again, created = publish(db, {**bundle, "processes/letters/acknowledgement.txt": changed},
                                 note="same", by="owner@demo.test", now=service.now())
        assert not created and again.number == 2
