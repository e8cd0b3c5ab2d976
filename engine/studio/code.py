"""Every piece of Python in a bundle (scripts, conditions, timers, task properties, DMN cells),
read from the XML and put through the sandbox's static check.

The XML is read directly rather than through SpiffWorkflow's specs so the check also runs on
a bundle that does not compile, and covers DMN cells, which the spec-based checks in
engine/checks.py do not see.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Iterator

from lxml import etree

from ..sandbox import UnsafeScript, check_source
from .bpmnmodel import Diagram, bpmn, local
from .problems import Problem

CODE_PROPERTIES = ("dueDate", "agency")
LOOP_AND_EVENT_CONDITIONS = (("multiInstanceLoopCharacteristics", "completionCondition"),
                             ("standardLoopCharacteristics", "loopCondition"),
                             ("conditionalEventDefinition", "condition"))
_QUESTION_MARK = re.compile(r"""(\?)(?=(?:[^'"]|['"][^'"]*['"])*$)""")  # as SpiffWorkflow's DMN engine


@dataclass(frozen=True)
class Code:
    file: str
    element: str | None
    what: str  # script, preScript, condition, timeDate, dueDate, input expression...
    source: str
    mode: str  # exec, eval, or "unary" (a DMN input entry)
    process: str | None = None


def bpmn_code(diagram: Diagram) -> Iterator[Code]:
    for node in diagram.nodes.values():
        script = node.element.find(bpmn("script"))
        if script is not None and (script.text or "").strip():
            yield Code(diagram.file, node.id, "script", script.text, "exec", node.process)
        for tag in ("preScript", "postScript"):
            text = node.extension_text(tag)
            if text and text.strip():
                yield Code(diagram.file, node.id, tag, text, "exec", node.process)
        timer = node.timer()
        if timer and timer[1]:
            yield Code(diagram.file, node.id, timer[0], timer[1], "eval", node.process)
        properties = node.properties()
        for name in CODE_PROPERTIES:
            if properties.get(name, "").strip():
                yield Code(diagram.file, node.id, name, properties[name], "eval", node.process)
        for holder, tag in LOOP_AND_EVENT_CONDITIONS:
            for found in node.element.findall(f"{bpmn(holder)}/{bpmn(tag)}"):
                if (found.text or "").strip():
                    yield Code(diagram.file, node.id, tag, found.text, "eval", node.process)
    for flow in diagram.flows.values():
        if flow.condition:
            yield Code(diagram.file, flow.id, "condition", flow.condition, "eval", flow.process)


def dmn_code(root: etree._Element, file: str) -> Iterator[Code]:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        kind = local(element)
        if kind not in ("inputExpression", "inputEntry", "outputEntry"):
            continue
        text_element = next((c for c in element if local(c) == "text"), None)
        text = (text_element.text or "").strip() if text_element is not None else ""
        if not text or (kind == "inputEntry" and text == "-"):
            continue
        owner = element.getparent()
        element_id = element.get("id") or (owner.get("id") if owner is not None else None)
        if kind == "inputExpression":
            yield Code(file, element_id, "input expression", text, "eval")
        elif kind == "inputEntry":
            yield Code(file, element_id, "input entry", text, "unary")
        else:
            yield Code(file, element_id, "output entry", text, "eval")


def check_code(code: Code) -> str | None:
    """The sandbox's objection to one piece of code, or None."""
    try:
        if code.mode == "unary":
            _check_unary(code.source)
        else:
            check_source(code.source, code.mode)
    except UnsafeScript as exc:
        return f"{code.what}: {exc}"
    except SyntaxError as exc:
        return f"{code.what}: syntax error: {exc.msg}"
    return None


def _check_unary(text: str) -> None:
    """A DMN input entry is an expression (`"high"`), a test (`>= 3`) or uses `?` for the input;
    checked the way SpiffWorkflow's DMN engine turns it into Python."""
    if "?" in text:
        check_source(_QUESTION_MARK.sub("dmn_input", text), "eval")
        return
    try:
        check_source(text, "eval")
    except SyntaxError:
        check_source(f"dmn_input {text}", "eval")


def sandbox_problems(codes: list[Code]) -> list[Problem]:
    problems = []
    for code in codes:
        objection = check_code(code)
        if objection:
            problems.append(Problem(code.file, code.element, "sandbox", objection))
    return problems


def names_read(source: str, mode: str) -> set[str]:
    """Variable names the code reads (best effort; empty when it does not parse)."""
    try:
        tree = ast.parse(source.strip() if mode != "exec" else source, mode="eval" if mode != "exec" else "exec")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def names_written(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}

