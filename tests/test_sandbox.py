"""The restricted script environment: what diagram code may do, and what it may not."""
from __future__ import annotations

import sys
import time
from datetime import date

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine.safexml import parse_xml
from engine.sandbox import (
    MAX_RANGE,
    SAFE_BUILTINS,
    RestrictedEnvironment,
    ScriptLimitExceeded,
    ScriptTimeout,
    UnsafeScript,
    check_data_keys,
    check_source,
    make_script_engine,
)
from engine.workdays import add_working_days


def today() -> date:
    return date(2026, 3, 2)


HELPERS = {"add_working_days": add_working_days, "today": today, "double": lambda x: 2 * x}


@pytest.fixture
def env() -> RestrictedEnvironment:
    return RestrictedEnvironment(HELPERS, time_limit=0.5)


def cause_chain(exc: BaseException) -> list[BaseException]:
    chain = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


# --- allowed code ----------------------------------------------------------------------

def test_evaluate_conditions(env):
    data = {"amount": 250, "kind": "hate", "items": [1, 2, 3], "d": {"a": 1}}
    assert env.evaluate("amount > 100 and kind == 'hate'", data) is True
    assert env.evaluate("  amount < 100 or not items", data) is False  # leading blanks, as eval
    assert env.evaluate("len(items) if kind in ('hate', 'other') else 0", data) == 3
    assert env.evaluate("d.get('b', 'none')", data) == "none"
    assert env.evaluate("sum(i * 2 for i in items)", data) == 12
    assert env.evaluate("sorted({k: v for k, v in d.items()})", data) == ["a"]
    assert env.evaluate("f'{kind.upper()} {amount:>6.1f} {d}'", data) == "HATE  250.0 {'a': 1}"
    assert env.evaluate("isinstance(kind, str) and isinstance(amount, (int, float))", data) is True
    assert env.evaluate("str(amount) + '!'", data) == "250!"
    assert env.evaluate("sorted(['b', 'a'], key=str)", data) == ["a", "b"]
    assert data == {"amount": 250, "kind": "hate", "items": [1, 2, 3], "d": {"a": 1}}


def test_helpers_and_dates(env):
    data = {"received_on": "2026-12-24"}
    due = env.evaluate("add_working_days(received_on, 2)", data)
    assert due == date(2026, 12, 30)
    assert env.evaluate("today().year", data) == 2026
    assert env.evaluate("add_working_days(today(), 1).isoformat()", data) == "2026-03-03"
    assert env.evaluate("double(21)", data) == 42


def test_execute_scripts(env):
    data = {"incidents": [{"kind": "hate", "n": 2}, {"kind": "noise", "n": 1}], "summary": {}, "old": 1}
    script = "\n".join([
        "total = 0",
        "for incident in incidents:",
        "    if incident['kind'] == 'hate':",
        "        total += incident['n'] * 10",
        "    elif incident['kind'] == 'noise':",
        "        total += 1",
        "    else:",
        "        pass",
        "kinds = sorted({i['kind'] for i in incidents})",
        "summary['kinds'] = ', '.join(kinds)",
        "summary['count'] = len(incidents)",
        "names = []",
        "names.append('x')",
        "names.extend(['y', 'z'])",
        "first, *rest = names",
        "due = add_working_days('2026-03-06', 1)",
        "label = 'high' if total > 10 else 'low'",
        "del old",
        "fn = len",
    ])
    assert env.execute(script, data) is True
    assert data["total"] == 21
    assert data["summary"] == {"kinds": "hate, noise", "count": 2}
    assert data["names"] == ["x", "y", "z"] and data["rest"] == ["y", "z"]
    assert data["due"] == date(2026, 3, 9)
    assert data["label"] == "high"
    assert "old" not in data                      # del removes the variable
    assert "fn" not in data                       # functions are never stored (as SpiffWorkflow)
    for name in list(HELPERS) + ["__builtins__", "__sandbox_getattr__"]:
        assert name not in data                   # helpers and builtins are not left behind


def test_inplace_list_semantics_kept(env):
    data = {"a": [1], "d": {"k": [1]}}
    env.execute("b = a\nb += [2]\nd['k'] += [3]\nd['k'] *= 2\nn = 3\nn *= 2\ns = 'x'\ns += 'y'", data)
    assert data["a"] == [1, 2] and data["b"] is data["a"]
    assert data["d"]["k"] == [1, 3, 1, 3]
    assert data["n"] == 6 and data["s"] == "xy"


def test_external_context(env):
    data = {"x": 1}
    assert env.evaluate("dmninputexpr >= 3", data, {"dmninputexpr": 5}) is True
    assert env.evaluate("x", data, {"x": 99}) == 1  # task data wins over external context
    env.execute("y = obj + 1", data, {"obj": 41})
    assert data == {"x": 1, "y": 42}            # external context is not copied into task data


def test_compiled_code_is_cached(env):
    from engine import sandbox

    sandbox._compile.cache_clear()
    for _ in range(50):
        env.evaluate("(x) == ('a')", {"x": "a"})
    info = sandbox._compile.cache_info()
    assert info.misses == 1 and info.hits == 49


def test_safe_builtins_contents():
    assert set(SAFE_BUILTINS) == {
        "len", "min", "max", "sum", "sorted", "any", "all", "str", "int", "float", "bool", "list",
        "dict", "set", "tuple", "range", "enumerate", "zip", "abs", "round", "isinstance",
        "True", "False", "None",
    }


def test_range_bound(env):
    assert env.evaluate(f"len(range({MAX_RANGE}))", {}) == MAX_RANGE
    with pytest.raises(ScriptLimitExceeded, match="range"):
        env.evaluate(f"range({MAX_RANGE} + 1)", {})
    with pytest.raises(ScriptLimitExceeded):
        env.evaluate("range(-1000000, 1000000)", {})


# --- refused code ----------------------------------------------------------------------

ESCAPES = [
    "().__class__.__base__.__subclasses__()",
    "[c for c in ().__class__.__bases__]",
    "getattr(x, '__class__')",
    "__import__('os')",
    "import os",
    "from os import system",
    "open('/etc/passwd')",
    "eval('1')",
    "exec('x=1')",
    "globals()",
    "locals()",
    "vars()",
    "dir()",
    "type(x)",
    "'{0.__class__}'.format(1)",
    "'{a.__class__}'.format_map({'a': 1})",
    "f'{x.__class__}'",
    "(lambda: 1)()",
    "x.gi_frame",
    "x.f_globals",
    "x.__globals__",
    "9**9**9",
    "'a' * 10**9",
    "'a' * 1000000000",
    "while True: pass",
    "__builtins__",
    "__builtins__['open']",
    "breakpoint()",
    "compile('1', 'f', 'eval')",
    "def f(): pass",
    "class A: pass",
    "try:\n    pass\nexcept Exception:\n    pass",
    "with x: pass",
    "raise ValueError()",
    "global y",
    "x.year = 1",
    "del x.year",
    "x = [i for i in (yield)]",
    "assert x",
    "_secret = 1",
    "len(__name__)",
    "dict(__class__=1)",
    "x[0:0] = x",
    "f'{x:{y}}'",
    "f'{x:>1000000000}'",
    "b'bytes'",
    "...",
    "1 << 100",
    "'%s' % x",
    "'x' * " + "9" * 7,
    "'" + "a" * 10_001 + "'",
    "str.lower('A')",
    "dict.fromkeys(x)",
    "list[int].extend(x, x)",
    "(int | str).count",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escapes_refused(env, source):
    data = {"x": [1, 2], "y": 1}
    with pytest.raises(UnsafeScript):
        env.execute(source, data)
    assert data == {"x": [1, 2], "y": 1}


@pytest.mark.parametrize("source", [s for s in ESCAPES if "\n" not in s and not s.startswith(
    ("import", "from", "while", "def", "class", "with", "raise", "global", "x =", "x.year =",
     "del", "assert", "_secret", "x[0:0]"))])
def test_escapes_refused_as_expressions(env, source):
    with pytest.raises(UnsafeScript):
        env.evaluate(source, {"x": [1, 2], "y": 1})


def test_refusal_messages_name_the_construct():
    cases = {
        "import os": "import statements",
        "().__class__": "'__class__'",
        "x.gi_frame": "'.gi_frame'",
        "'{}'.format(1)": ".format()",
        "type(x)": "'type()'",
        "9**9": "**",
        "while True: pass": "while loops",
        "y = 1\n(lambda: 1)()": "Line 2: lambda",
    }
    for source, expected in cases.items():
        with pytest.raises(UnsafeScript) as info:
            check_source(source)
        assert expected in str(info.value), (source, str(info.value))


def test_syntax_errors_stay_syntax_errors():
    with pytest.raises(SyntaxError):
        check_source("x = ")
    with pytest.raises(SyntaxError):
        check_source("< 1000")  # SpiffWorkflow's DMN engine relies on this


def test_expressions_may_not_modify_data(env):
    data = {"x": [1]}
    with pytest.raises(UnsafeScript, match="append"):
        env.evaluate("x.append(2)", data)
    assert data == {"x": [1]}


def test_size_limits_at_run_time(env):
    refused = [
        "'a' * (1000000 * 1000)",
        "[0] * 1000 * 1000",
        "s = 'a' * 1000\nfor i in range(10):\n    s = s + s",
        "s = 'a' * 1000\nfor i in range(10):\n    s += s",
        "n = 1000000\nfor i in range(10):\n    n = n * n",
        "s = 'a' * 1000\nt = s.replace('a', s)",
        "s = 'a' * 1000\nt = s.join([s] * 1000)",
        "l = [0] * 1000\nfor i in range(10):\n    l.extend(l)",
        "l = ['a' * 1000] * 1000\nt = str(l)",
        "l = ['a' * 1000] * 1000\nt = f'{l}'",
        "l = ['a' * 1000] * 1000\nt = sorted([l, l], key=str)",
        "t = sum([[1], [2]], [])",
    ]
    for source in refused:
        with pytest.raises(UnsafeScript):
            env.execute(source, {})


def test_deep_nesting_refused(env):
    with pytest.raises(ScriptLimitExceeded, match="nested"):
        env.execute("x = []\nfor i in range(1000):\n    x = [x]", {})
    env.execute("x = []\nfor i in range(50):\n    x = [x]", {})


def test_slices_can_be_read_and_deleted(env):
    data = {"l": [1, 2, 3, 4]}
    env.execute("head = l[:2]\ndel l[0:1]\nrev = l[::-1]", data)
    assert data == {"l": [2, 3, 4], "head": [1, 2], "rev": [4, 3, 2]}


def test_task_data_left_behind_is_bounded(env):
    # 100,000 references to a 100-character string: tiny in memory, 10 MB of JSON.
    with pytest.raises(ScriptLimitExceeded, match="task data"):
        env.execute("s = 'a' * 100\nrows = [s] * 100000", {})
    with pytest.raises(ScriptLimitExceeded, match="value of the expression"):
        env.evaluate("[['a' * 1000] * 1000] * 100", {})


def test_timeout_stops_nested_range_loop():
    env = RestrictedEnvironment(HELPERS, time_limit=0.3)
    before = sys.gettrace()
    started = time.monotonic()
    with pytest.raises(ScriptTimeout):
        env.execute("for x in range(100000):\n    for y in range(100000):\n        pass", {})
    assert time.monotonic() - started < 3
    assert sys.gettrace() is before


def test_timeout_inside_comprehension_and_generator():
    env = RestrictedEnvironment(HELPERS, time_limit=0.2)
    with pytest.raises(ScriptTimeout):
        env.evaluate("[[y for y in range(100000)] for x in range(100000)]", {})
    with pytest.raises(ScriptTimeout):
        env.evaluate("any(x < 0 for x in range(100000) for y in range(100000))", {})


def test_previous_tracer_restored(env):
    calls = []

    def outer_tracer(frame, event, arg):
        calls.append(event)
        return None

    sys.settrace(outer_tracer)
    try:
        env.execute("x = 1", {})
        with pytest.raises(UnsafeScript):
            env.execute("x = 'a' * (1000000 * 1000)", {})
        assert sys.gettrace() is outer_tracer
    finally:
        sys.settrace(None)


# --- helpers cannot be shadowed --------------------------------------------------------

def test_task_data_cannot_shadow_helpers(env):
    data = {"today": "a form value", "len": 3, "x": [1, 2]}
    # evaluate: the helper and the builtin win
    assert env.evaluate("today()", data) == date(2026, 3, 2)
    assert env.evaluate("len(x)", data) == 2
    # execute: the helper wins and the data key is left untouched
    env.execute("y = today().day", data)
    assert data["y"] == 2 and data["today"] == "a form value" and data["len"] == 3


def test_scripts_cannot_assign_helper_names(env):
    for source in ["today = 1", "for today in x: pass", "add_working_days = len", "len = 1",
                   "y = [today for today in x]", "del today"]:
        with pytest.raises(UnsafeScript, match="cannot be assigned"):
            env.execute(source, {"x": [1]})


def test_check_data_keys(env):
    errors = check_data_keys(
        {"name": "A", "_hidden": 1, "__class__": 2, "today": 3, "len": 4, "type": 5},
        env.reserved_names,
    )
    assert len(errors) == 4
    assert any("'_hidden'" in e for e in errors)
    assert any("'__class__'" in e for e in errors)
    assert any("'today'" in e and "script function" in e for e in errors)
    assert any("'len'" in e for e in errors)
    assert check_data_keys({"name": "A", "type": "x"}, set(HELPERS)) == []


def test_helper_names_validated():
    with pytest.raises(ValueError):
        RestrictedEnvironment({"_private": len})
    with pytest.raises(ValueError):
        RestrictedEnvironment({"not an identifier": len})


def test_call_service_refused(env):
    with pytest.raises(UnsafeScript):
        env.call_service({}, operation_name="x")


# --- through SpiffWorkflow -------------------------------------------------------------

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="t">
  <bpmn:process id="gate" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="prepare">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>score = sum(i['n'] for i in incidents)
due = add_working_days(received_on, 15)</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:businessRuleTask id="decide">
      <bpmn:extensionElements>
        <spiffworkflow:calledDecisionId>risk</spiffworkflow:calledDecisionId>
      </bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:businessRuleTask>
    <bpmn:exclusiveGateway id="gw" default="low_flow">
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>high_flow</bpmn:outgoing><bpmn:outgoing>low_flow</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="prepare"/>
    <bpmn:sequenceFlow id="f2" sourceRef="prepare" targetRef="decide"/>
    <bpmn:sequenceFlow id="f3" sourceRef="decide" targetRef="gw"/>
    <bpmn:sequenceFlow id="high_flow" sourceRef="gw" targetRef="high">
      <bpmn:conditionExpression>
        level == "high" and score >= 3
      </bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="low_flow" sourceRef="gw" targetRef="low"/>
    <bpmn:scriptTask id="high"><bpmn:incoming>high_flow</bpmn:incoming><bpmn:outgoing>e1</bpmn:outgoing>
      <bpmn:script>route = "high"</bpmn:script></bpmn:scriptTask>
    <bpmn:scriptTask id="low"><bpmn:incoming>low_flow</bpmn:incoming><bpmn:outgoing>e2</bpmn:outgoing>
      <bpmn:script>route = "low"</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>e1</bpmn:incoming><bpmn:incoming>e2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="e1" sourceRef="high" targetRef="end"/>
    <bpmn:sequenceFlow id="e2" sourceRef="low" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""

# Cells exercising the three shapes SpiffWorkflow's DMN engine produces: a bare value
# ("(input) == (\"x\")"), an operator ("input >= 3") and "?" (external "dmninputexpr").
DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="dmn" name="d" namespace="t">
  <decision id="risk" name="Risk">
    <decisionTable id="table" hitPolicy="FIRST">
      <input id="in_kind" label="Kind"><inputExpression id="ie1"><text>kind</text></inputExpression></input>
      <input id="in_score" label="Score"><inputExpression id="ie2"><text>score</text></inputExpression></input>
      <output id="out_level" name="level" label="Level"/>
      <rule id="r1">
        <inputEntry id="r1a"><text>"hate"</text></inputEntry>
        <inputEntry id="r1b"><text>&gt;= 3</text></inputEntry>
        <outputEntry id="r1c"><text>"high"</text></outputEntry>
      </rule>
      <rule id="r2">
        <inputEntry id="r2a"><text></text></inputEntry>
        <inputEntry id="r2b"><text>1 &lt;= ? &lt; 3</text></inputEntry>
        <outputEntry id="r2c"><text>"medium"</text></outputEntry>
      </rule>
      <rule id="r3">
        <inputEntry id="r3a"><text></text></inputEntry>
        <inputEntry id="r3b"><text></text></inputEntry>
        <outputEntry id="r3c"><text>"low"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""


def run_workflow(data: dict, dmn: str = DMN) -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    parser.add_bpmn_xml(parse_xml(BPMN, "gate.bpmn"), filename="gate.bpmn")
    parser.add_dmn_xml(parse_xml(dmn, "risk.dmn"), filename="risk.dmn")
    workflow = BpmnWorkflow(parser.get_spec("gate"), script_engine=make_script_engine(HELPERS, time_limit=0.5))
    start = workflow.get_tasks(state=TaskState.READY)[0]
    start.data.update(data)
    workflow.do_engine_steps()
    return workflow


def test_make_script_engine_is_a_python_script_engine():
    engine = make_script_engine(HELPERS)
    assert isinstance(engine, PythonScriptEngine)
    assert isinstance(engine.environment, RestrictedEnvironment)


def test_workflow_with_gateway_and_dmn():
    incidents = [{"n": 2}, {"n": 2}]
    workflow = run_workflow({"kind": "hate", "incidents": incidents, "received_on": "2026-03-02"})
    assert workflow.is_completed()
    assert workflow.data["level"] == "high"
    assert workflow.data["route"] == "high"
    assert workflow.data["due"] == date(2026, 3, 23)

    workflow = run_workflow({"kind": "noise", "incidents": [{"n": 2}], "received_on": "2026-03-02"})
    assert (workflow.data["level"], workflow.data["route"]) == ("medium", "low")  # "?" cell

    workflow = run_workflow({"kind": "noise", "incidents": [], "received_on": "2026-03-02"})
    assert (workflow.data["level"], workflow.data["route"]) == ("low", "low")


def test_engine_evaluates_condition_against_task_data():
    workflow = run_workflow({"kind": "hate", "incidents": [{"n": 5}], "received_on": "2026-03-02"})
    task = workflow.get_tasks(spec_name="end")[0]
    engine = workflow.script_engine
    assert engine.evaluate(task, 'level == "high" and score > 4') is True
    assert engine.evaluate(task, "add_working_days(received_on, 1)") == date(2026, 3, 3)
    with pytest.raises(WorkflowTaskException) as info:
        engine.evaluate(task, "score.__class__")
    assert "'__class__'" in str(info.value)
    assert any(isinstance(e, UnsafeScript) for e in cause_chain(info.value))


def test_unsafe_dmn_cell_fails_the_task():
    evil = DMN.replace("<text>&gt;= 3</text>", "<text>&gt;= ().__class__.__base__</text>")
    with pytest.raises(WorkflowTaskException) as info:
        run_workflow({"kind": "hate", "incidents": [{"n": 5}], "received_on": "2026-03-02"}, evil)
    assert any(isinstance(e, UnsafeScript) for e in cause_chain(info.value))


def test_unsafe_script_task_reports_line():
    engine = make_script_engine(HELPERS)
    workflow = run_workflow({"kind": "x", "incidents": [], "received_on": "2026-03-02"})
    task = workflow.get_tasks(spec_name="end")[0]
    with pytest.raises(WorkflowTaskException) as info:
        engine.execute(task, "a = 1\nb = open('/etc/passwd')")
    assert info.value.line_number == 2
    assert "open()" in str(info.value)
    with pytest.raises(WorkflowTaskException) as info:
        engine.execute(task, "a = {}\nb = a[1]")  # KeyError(1): library would crash on args[0]
    assert info.value.line_number == 2
    with pytest.raises(WorkflowTaskException):
        engine.call_service(task, operation_name="anything")


def test_validate_is_used_by_dmn_and_checks():
    engine = make_script_engine(HELPERS)
    engine.validate('"x"')
    with pytest.raises(SyntaxError):
        engine.validate(">= 3")
    engine.validate("v >= 3")
    with pytest.raises(UnsafeScript):
        engine.validate("v >= ().__class__")
