"""Due dates written in the one form the studio and the reports understand:
`add_working_days(<from>, <whole number>)` (the `dueDate` property of a task).

The studio's properties pages read and write them (web/studio/bpmnprops.py); the reports read a
target from the due date of the task that declares a statutory fact (engine/statutoryfacts.py).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class DueRule:
    start: str  # the expression counted from: received_on, today(), action["due"]...
    days: int  # working days after it (negative: before)

    def expression(self) -> str:
        return f"add_working_days({self.start}, {self.days})"


def read_due_rule(expression: str | None) -> DueRule | None:
    """`add_working_days(<from>, <whole number>)`, or None for any other expression."""
    if not expression:
        return None
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "add_working_days"
            and len(call.args) == 2 and not call.keywords):
        return None
    days = _whole_number(call.args[1])
    start = ast.get_source_segment(expression.strip(), call.args[0])
    return DueRule(start, days) if days is not None and start else None


def _whole_number(node: ast.expr) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _whole_number(node.operand)
        return -inner if inner is not None else None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None
