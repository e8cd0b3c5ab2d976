"""Owner-supplied scripts and letter templates within hard limits: time in helpers counts, effects
per step are capped, templates are bounded, and publish-time checks run in a child process with
operating-system limits, so `casereview validate` refuses a runaway bundle within seconds."""
from __future__ import annotations

import time

import pytest

from engine.bounded_render import TemplateLimitExceeded
from engine.letters import render
from engine.sandbox import ScriptTimeout, make_script_engine
from engine.studio import isolation, validate_bundle
from engine.studio.bundles import read_bundle

ACKNOWLEDGE = 'send_letter("acknowledgement")</bpmn:script>'
NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def _shipped() -> dict[str, str]:
    from pathlib import Path
    return read_bundle(Path(__file__).resolve().parent.parent)


def _with_script(files: dict[str, str], extra: str) -> dict[str, str]:
    changed = dict(files)
    diagram = changed["processes/case_review.bpmn"]
    assert ACKNOWLEDGE in diagram
    changed["processes/case_review.bpmn"] = diagram.replace(ACKNOWLEDGE, f'send_letter("acknowledgement")\n{extra}</bpmn:script>')
    return changed


def test_time_spent_in_helpers_counts_toward_the_budget():
    def slow_helper():
        time.sleep(0.02)
        return 1

    engine = make_script_engine({"slow_helper": slow_helper}, time_limit=0.5)
    started = time.monotonic()
    with pytest.raises(ScriptTimeout):
        engine.environment.execute("total = 0\nfor i in range(1000):\n    total = total + slow_helper()", {})
    assert time.monotonic() - started < 1.5  # stopped near the budget, not after 1,000 calls (20 s)


def test_a_letter_template_cannot_run_for_ever_or_write_without_end():
    started = time.monotonic()
    with pytest.raises(TemplateLimitExceeded, match="longer than"):
        render({"bomb": NESTED_LOOPS}, "bomb", {})
    with pytest.raises(TemplateLimitExceeded, match="characters"):
        render({"flood": "{% for i in range(100000) %}{% for j in range(100) %}xxxxx{% endfor %}{% endfor %}"},
               "flood", {})
    assert time.monotonic() - started < 10


@pytest.fixture
def quick_limits(monkeypatch):
    monkeypatch.setattr(isolation, "CPU_SECONDS", 5)
    monkeypatch.setattr(isolation, "ADDRESS_SPACE_BYTES", 2 * 2**30)


@pytest.mark.parametrize("extra", [
    "a = list(range(100000))\nb = [a] * 100000\nc = max(b)",  # one C-level call: about 10^10 comparisons
    "a = list(range(100000))\nb = [a] * 100000\nc = list(zip(*b))",  # one C-level call: tens of GB
])
def test_validate_refuses_a_script_whose_single_call_outruns_the_limits(quick_limits, extra):
    started = time.monotonic()
    problems = validate_bundle(_with_script(_shipped(), extra))
    assert time.monotonic() - started < 120
    assert problems, "a runaway script must not pass"
    assert any(p.rule == "resource-limit" or "memory" in p.message.lower() for p in problems), \
        [p.line() for p in problems]


def test_validate_refuses_a_letter_template_that_never_finishes():
    files = dict(_shipped())
    files["processes/letters/acknowledgement.txt"] = "Subject: Hello\n\n" + NESTED_LOOPS
    started = time.monotonic()
    problems = validate_bundle(files)
    assert time.monotonic() - started < 120
    assert any("longer than" in p.message for p in problems), [p.line() for p in problems]


def test_a_step_may_not_queue_thousands_of_letters():
    files = _with_script(_shipped(), 'for i in range(5000):\n    send_letter("acknowledgement")')
    problems = validate_bundle(files)
    assert any("at most 100 of 'letter'" in p.message for p in problems), [p.line() for p in problems]
