"""Studio validation: every rule finds its kind of mistake, escape attempts are refused, the dry
run finds journeys that cannot end, and the shipped bundle has no problem at all."""
from __future__ import annotations

import json
import re

import pytest

from engine.studio import validate_bundle
from engine.studio.dryrun import JOURNEYS, dry_run
from engine.versions import shipped_files

NODE_TAGS = ("startEvent", "endEvent", "task", "userTask", "scriptTask", "exclusiveGateway", "parallelGateway",
             "inclusiveGateway", "complexGateway", "intermediateCatchEvent", "boundaryEvent")


@pytest.fixture(scope="module")
def shipped():
    return shipped_files()


def diagram(body: str, *, drawn: bool = True, lanes: str = "") -> str:
    """A one-process BPMN document around `body`, every element drawn unless `drawn` is False."""
    shapes = ""
    if drawn:
        for tag, element_id in re.findall(r'<bpmn:(\w+) id="([^"]+)"', body):
            if tag in NODE_TAGS:
                shapes += f'<bpmndi:BPMNShape id="{element_id}_di" bpmnElement="{element_id}"><dc:Bounds x="0" y="0" width="10" height="10" /></bpmndi:BPMNShape>'
            elif tag == "sequenceFlow":
                shapes += f'<bpmndi:BPMNEdge id="{element_id}_di" bpmnElement="{element_id}"><di:waypoint x="0" y="0" /><di:waypoint x="1" y="1" /></bpmndi:BPMNEdge>'
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="p" name="Test" isExecutable="true">{lanes}{body}</bpmn:process>
  <bpmndi:BPMNDiagram id="diagram"><bpmndi:BPMNPlane id="plane" bpmnElement="p">{shapes}</bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>"""


def flow(flow_id: str, source: str, target: str, condition: str | None = None, name: str = "") -> str:
    named = f' name="{name}"' if name else ""
    if condition is None:
        return f'<bpmn:sequenceFlow id="{flow_id}"{named} sourceRef="{source}" targetRef="{target}" />'
    return (f'<bpmn:sequenceFlow id="{flow_id}"{named} sourceRef="{source}" targetRef="{target}">'
            f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>'
            f'</bpmn:sequenceFlow>')


START = '<bpmn:startEvent id="s" name="Start" />'
END = '<bpmn:endEvent id="e" name="End" />'


def found(files: dict[str, str]) -> set[tuple[str | None, str | None, str]]:
    return {(p.file, p.element, p.rule) for p in validate_bundle(files, dry_run=False)}


BAD_DIAGRAMS = {
    "start-event-required": ("p", '<bpmn:task id="t" name="Do" />' + END + flow("f1", "t", "e")),
    "end-event-required": ("p", START + '<bpmn:task id="t" name="Do" />' + flow("f1", "s", "t")),
    "no-disconnected": ("lonely", START + END + flow("f1", "s", "e") + '<bpmn:task id="lonely" name="Lonely" />'),
    "no-implicit-split": ("t", START + '<bpmn:task id="t" name="Do" />' + END + '<bpmn:endEvent id="e2" name="Other" />'
                          + flow("f1", "s", "t") + flow("f2", "t", "e") + flow("f3", "t", "e2")),
    "no-duplicate-sequence-flows": ("f3", START + '<bpmn:task id="t" name="Do" />' + END + flow("f1", "s", "t")
                                    + flow("f2", "t", "e") + flow("f3", "t", "e")),
    "conditional-flows": ("f3", START + '<bpmn:exclusiveGateway id="g" name="Which?" />' + END
                          + '<bpmn:endEvent id="e2" name="Other" />' + flow("f1", "s", "g")
                          + flow("f2", "g", "e", "x == 1", "One") + flow("f3", "g", "e2")),
    "label-required": ("t", START + '<bpmn:userTask id="t" />' + END + flow("f1", "s", "t") + flow("f2", "t", "e")),
    "single-blank-start-event": ("p", START + '<bpmn:startEvent id="s2" name="Again" />' + END
                                 + flow("f1", "s", "e") + flow("f2", "s2", "e")),
    "no-gateway-join-fork": ("g", START + '<bpmn:startEvent id="s2" name="Again" />'
                             + '<bpmn:parallelGateway id="g" />' + END + '<bpmn:endEvent id="e2" name="Other" />'
                             + flow("f1", "s", "g") + flow("f2", "s2", "g") + flow("f3", "g", "e") + flow("f4", "g", "e2")),
    "superfluous-gateway": ("g", START + '<bpmn:exclusiveGateway id="g" />' + END + flow("f1", "s", "g")
                            + flow("f2", "g", "e")),
    "fake-join": ("t", START + '<bpmn:parallelGateway id="split" />' + '<bpmn:task id="t" name="Do" />' + END
                  + flow("f1", "s", "split") + flow("f2", "split", "t") + flow("f3", "split", "t") + flow("f4", "t", "e")),
    "no-implicit-start": ("t", START + '<bpmn:task id="t" name="Do" />' + END + flow("f1", "s", "e") + flow("f2", "t", "e")),
    "no-implicit-end": ("t", START + '<bpmn:task id="t" name="Do" />' + END + flow("f1", "s", "e") + flow("f2", "s", "t")),
    "gateway-default-flow": ("g", START + '<bpmn:exclusiveGateway id="g" name="Which?" />' + END
                             + '<bpmn:endEvent id="e2" name="Other" />' + flow("f1", "s", "g")
                             + flow("f2", "g", "e", "x == 1", "One") + flow("f3", "g", "e2", "x == 2", "Two")),
    "no-complex-gateway": ("g", START + '<bpmn:complexGateway id="g" name="Complex" />' + END
                           + '<bpmn:endEvent id="e2" name="Other" />' + flow("f1", "s", "g") + flow("f2", "g", "e")
                           + flow("f3", "g", "e2")),
    "single-event-definition": ("c", START + '<bpmn:intermediateCatchEvent id="c" name="Wait">'
                                '<bpmn:timerEventDefinition id="t1"><bpmn:timeDuration>"PT1H"</bpmn:timeDuration>'
                                '</bpmn:timerEventDefinition><bpmn:messageEventDefinition id="m1" />'
                                '</bpmn:intermediateCatchEvent>' + END + flow("f1", "s", "c") + flow("f2", "c", "e")),
    "unique-ids": ("t", START + '<bpmn:task id="t" name="Do" /><bpmn:task id="t" name="Again" />' + END
                   + flow("f1", "s", "t") + flow("f2", "t", "e")),
}


@pytest.mark.parametrize("rule", sorted(BAD_DIAGRAMS))
def test_each_lint_rule_flags_its_bad_diagram(rule):
    element, body = BAD_DIAGRAMS[rule]
    assert ("processes/t.bpmn", element, rule) in found({"processes/t.bpmn": diagram(body)})


def test_a_clean_small_diagram_has_no_lint_problem():
    body = (START + '<bpmn:exclusiveGateway id="g" name="Which?" default="f3" />' + END
            + '<bpmn:endEvent id="e2" name="Other" />' + flow("f1", "s", "g")
            + flow("f2", "g", "e", "x == 1", "One") + flow("f3", "g", "e2", name="Otherwise"))
    problems = {p.rule for p in validate_bundle({"processes/t.bpmn": diagram(body)}, dry_run=False)}
    assert not problems & {"conditional-flows", "gateway-default-flow", "label-required", "no-implicit-end",
                           "no-implicit-start", "no-bpmndi", "start-event-required", "end-event-required"}


def test_undrawn_elements_are_flagged():
    body = START + END + flow("f1", "s", "e")
    assert {("processes/t.bpmn", "s", "no-bpmndi"), ("processes/t.bpmn", "f1", "no-bpmndi")} \
        <= found({"processes/t.bpmn": diagram(body, drawn=False)})


@pytest.mark.parametrize("text", [
    "<bpmn:definitions><unclosed></bpmn:definitions>",
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>',
], ids=["malformed", "doctype"])
def test_unsafe_or_broken_xml_is_refused(text):
    assert ("processes/t.bpmn", None, "xml-safe") in found({"processes/t.bpmn": text})


def test_user_task_form_role_and_agency_checks_run(shipped):
    case_review = shipped["processes/case_review.bpmn"]
    broken = case_review.replace('<spiffworkflow:property name="formJsonSchemaFilename" value="verify_incidents.json" />',
                                 "", 1).replace('<spiffworkflow:property name="agency" value="item" />', "", 1)
    escalation = shipped["processes/escalation.bpmn"].replace('name="reviewer"', 'name="boss"', 1)
    problems = found({**shipped, "processes/case_review.bpmn": broken, "processes/escalation.bpmn": escalation})
    assert ("processes/case_review.bpmn", "verify_incidents", "user-task-form") in problems
    assert ("processes/case_review.bpmn", "provide_incident_history", "partner-task-agency") in problems
    assert ("processes/escalation.bpmn", "decide_escalation", "user-task-role") in problems


def test_forms_must_be_json_schema_with_real_ui_hints(shipped):
    follow_up = json.loads(shipped["forms/follow_up.json"])
    follow_up["x-ui"]["order"].append("no_such_field")
    follow_up["x-ui"]["widgets"]["outcome"] = "slider"
    follow_up["x-ui"]["labels"]["outcome"]["maybe"] = "Maybe"
    files = {**shipped, "forms/follow_up.json": json.dumps(follow_up),
             "forms/broken.json": '{"type": "object", "properties": {"a": {"type": "text"}}}',
             "forms/not_json.json": "{nope"}
    problems = validate_bundle(files, dry_run=False)
    ui = [p.message for p in problems if p.file == "forms/follow_up.json" and p.rule == "form-ui-hints"]
    assert any("no_such_field" in m for m in ui) and any("slider" in m for m in ui) and any("maybe" in m for m in ui)
    assert {("forms/broken.json", "form-json-schema"), ("forms/not_json.json", "form-json-schema")} \
        <= {(p.file, p.rule) for p in problems}


# Each tries to leave the sandbox: dunder walks, imports, introspection builtins, format strings
# reaching attributes, lambdas/generators/frames, and statements the sandbox does not run.
ESCAPE_EXPRESSIONS = [
    "().__class__.__base__.__subclasses__()",
    "[].__class__.__mro__[1].__subclasses__()",
    "__import__('os').system('id')",
    "__builtins__['open']('/etc/passwd')",
    "getattr(reference, '__class__')",
    "type(reference).__subclasses__(object)",
    "vars(reference)",
    "globals()",
    "eval('1 + 1')",
    "compile('1', 'x', 'eval')",
    "open('/etc/passwd').read()",
    "'{0.__class__.__init__.__globals__}'.format(reference)",
    "'{x.__class__}'.format_map({'x': reference})",
    "f'{reference.__class__}'",
    "(lambda: 0).__code__",
    "(lambda: (yield))().gi_frame.f_back.f_globals",
    "(x for x in [1]).gi_frame.f_globals",
    "[x for x in [1]].pop.__self__",
    "date_of.__globals__['os']",
    "str.mro()",
    "sum.__self__.__dict__",
    "(1).real.__class__",
    "10 ** 10 ** 10",
    "__sandbox_getattr__(reference, 'x')",
    "reference.tb_frame",
]
ESCAPE_STATEMENTS = [
    "import os",
    "from os import system",
    "def f():\n    pass",
    "class A:\n    pass",
    "while True:\n    pass",
    "try:\n    x = 1\nexcept Exception:\n    pass",
    "with open('/etc/passwd') as f:\n    pass",
    "global reference",
    "setattr(reference, 'x', 1)",
    "breakpoint()",
]


def _xml_text(source: str) -> str:
    return source.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_every_known_escape_attempt_in_a_test_diagram_is_rejected():
    """Each attempt as a script task, and each expression also as a gateway condition, in one
    diagram: start → scripts → gateways (default onwards, the escape as condition) → end."""
    scripts = ESCAPE_EXPRESSIONS + ESCAPE_STATEMENTS
    chain = ["s", *[f"script_{n}" for n in range(len(scripts))],
             *[f"gate_{n}" for n in range(len(ESCAPE_EXPRESSIONS))], "e"]
    parts = [START, END]
    for number, source in enumerate(scripts):
        parts.append(f'<bpmn:scriptTask id="script_{number}" name="Try {number}" scriptFormat="python">'
                     f"<bpmn:script>{_xml_text(source)}</bpmn:script></bpmn:scriptTask>")
    for number, source in enumerate(ESCAPE_EXPRESSIONS):
        following = chain[chain.index(f"gate_{number}") + 1]
        parts.append(f'<bpmn:exclusiveGateway id="gate_{number}" name="Gate {number}" default="plain_{number}" />')
        parts.append(f'<bpmn:endEvent id="gate_end_{number}" name="End {number}" />')
        parts.append(flow(f"evil_{number}", f"gate_{number}", f"gate_end_{number}", _xml_text(source), "Evil"))
        parts.append(flow(f"plain_{number}", f"gate_{number}", following))
    for number, (source, target) in enumerate(zip(chain, chain[1:])):
        if not source.startswith("gate_"):
            parts.append(flow(f"next_{number}", source, target))
    problems = validate_bundle({"processes/t.bpmn": diagram("".join(parts))}, dry_run=False)
    sandboxed = {p.element for p in problems if p.rule == "sandbox"}
    expected = {f"script_{n}" for n in range(len(scripts))} | {f"evil_{n}" for n in range(len(ESCAPE_EXPRESSIONS))}
    assert expected <= sandboxed, sorted(expected - sandboxed)
    assert not {p.rule for p in problems} & {"no-implicit-end", "no-implicit-start", "xml-safe"}


def test_escape_in_a_decision_table_cell_is_rejected(shipped):
    dmn = shipped["processes/threshold.dmn"].replace('<text>"HATE_INCIDENT"</text>',
                                                     "<text>().__class__.__base__.__subclasses__()</text>", 1)
    problems = found({**shipped, "processes/threshold.dmn": dmn})
    assert ("processes/threshold.dmn", "rule_hate_reason", "sandbox") in problems


def test_decision_table_inputs_must_exist_and_outputs_must_be_used(shipped):
    dmn = (shipped["processes/threshold.dmn"]
           .replace("hate_within(threshold_incidents, application_date, 6)",
                    "hate_within(verified_incidents, application_date, 6)")
           .replace('name="threshold_reasons"', 'name="threshold_grounds"')
           .replace('<input id="reported_in_last_month"', '<input id="recent_reports"'))
    problems = validate_bundle({**shipped, "processes/threshold.dmn": dmn}, dry_run=False)
    messages = {(p.element, p.rule): p.message for p in problems if p.file == "processes/threshold.dmn"}
    assert "verified_incidents" in messages[("hate_incidents", "dmn-input-variables")]
    assert "threshold_grounds" in messages[("threshold_reason", "dmn-output-used")]
    assert "reported_in_last_month" in messages[("threshold", "dmn-input-variables")]


def test_gateway_conditions_without_a_default_are_flagged_in_the_shipped_process(shipped):
    text = shipped["processes/case_review.bpmn"].replace(' default="flow_is_threshold_met_to_start_safety_net"', "")
    problems = found({**shipped, "processes/case_review.bpmn": text})
    assert ("processes/case_review.bpmn", "is_threshold_met", "gateway-default-flow") in problems
    assert ("processes/case_review.bpmn", "flow_is_threshold_met_to_start_safety_net", "conditional-flows") in problems


def test_dry_run_reports_a_case_that_cannot_close(shipped):
    text = shipped["processes/case_review.bpmn"]
    never_closes = text.replace('send_letter("closure")\nclose_case("closed")', 'send_letter("closure")', 1)
    assert never_closes != text
    problems, outcomes = dry_run({**shipped, "processes/case_review.bpmn": never_closes}, journeys=JOURNEYS[:1])
    assert outcomes[0].status == "open" and "follow_up" in outcomes[0].completed
    assert [p.rule for p in problems] == ["dry-run"]
    assert "cannot reach an end" in problems[0].message


def test_dry_run_reports_a_script_that_fails_with_its_element(shipped):
    text = shipped["processes/case_review.bpmn"].replace(
        'threshold_incidents = verified_incidents', 'threshold_incidents = verified_incidents_typo', 1)
    problems, _ = dry_run({**shipped, "processes/case_review.bpmn": text}, journeys=JOURNEYS[:1],
                          process_files={"case_review": "processes/case_review.bpmn"})
    assert [(p.file, p.element, p.rule) for p in problems] == [("processes/case_review.bpmn", "prepare_threshold",
                                                               "dry-run")]
    assert "verified_incidents_typo" in problems[0].message


def test_shipped_bundle_has_zero_problems_and_every_journey_ends(shipped):
    assert validate_bundle(shipped) == []
    _problems, outcomes = dry_run(shipped)
    assert {o.status for o in outcomes} <= {"closed", "withdrawn"}
    assert {"consent_deadline", "follow_up_due"} <= {name for o in outcomes for name in o.timers}


def test_every_problem_is_reported_at_once(shipped):
    text = shipped["processes/case_review.bpmn"].replace(' name="Threshold met?"', "", 1)
    files = {**shipped, "processes/case_review.bpmn": text, "forms/broken.json": "[]", "../evil.txt": "x"}
    rules = {p.rule for p in validate_bundle(files, dry_run=False)}
    assert {"label-required", "form-json-schema", "bundle-layout"} <= rules
