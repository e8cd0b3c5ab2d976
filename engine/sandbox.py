"""Restricted environment for the Python that process owners write in diagrams.

Scripts (script tasks, pre/post scripts), gateway conditions, timer expressions and DMN
cells are written by process owners in the browser, so their authors are not trusted with
the server.  SpiffWorkflow's own ``TaskDataEnvironment`` is plain ``eval``/``exec`` and is
not a sandbox (spiffworkflow.md section 5).  This module replaces it with four layers:

1. **Static check** (:func:`check_source`): the source is parsed with :mod:`ast` and every
   node must belong to a small whitelist (literals, names, arithmetic, comparisons, ``if``,
   ``for``, comprehensions, assignments, calls...).  Names and attributes starting with
   ``_`` are refused, attributes must be in :data:`SAFE_ATTRIBUTES`, and calls to
   ``eval``/``open``/``getattr``/``type``... are refused by name with a clear message.
2. **Runtime guards**: the checked tree is rewritten so that attribute reads, ``+``, ``*``,
   ``%`` and f-string values go through small guard functions.  They refuse attribute access
   on classes/modules and refuse operations that would build huge strings, lists or
   integers in a single C-level step (``'a' * 10**9`` written as ``'a' * (1000000 * 1000)``).
3. **Restricted builtins** (:data:`SAFE_BUILTINS`): only harmless functions and types are
   visible; ``range`` is bounded and ``str()`` refuses to render enormous objects.
4. **Run-time budget**: a ``sys.settrace`` tracer stops the script after ``time_limit``
   seconds (:class:`ScriptTimeout`) and when the process' peak memory has grown by more than
   :data:`MEMORY_BUDGET_BYTES` while it ran.

Values left in task data (and values returned by expressions) are also measured, so a script
cannot leave behind a structure whose JSON form is gigabytes long (e.g. a list holding the
same long string 100,000 times) or so deeply nested that copying or saving it fails.

Limits of this design (documented, not solved): a single C-level operation over large
*shared* structures (for example ``==`` between two lists of 100,000 references to the same
100,000-element list) is not interruptible by a tracer.  The worker process that runs
workflow steps should therefore also have an operating-system memory limit and a request
timeout; this module is the inner fence, not the only one.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

try:  # ``resource`` is POSIX only; without it the memory check is skipped.
    import resource
except ImportError:  # pragma: no cover - not on the platforms we deploy to
    resource = None  # type: ignore[assignment]

__all__ = [
    "UnsafeScript",
    "ScriptTimeout",
    "ScriptLimitExceeded",
    "SAFE_ATTRIBUTES",
    "SAFE_BUILTINS",
    "RestrictedEnvironment",
    "SandboxedScriptEngine",
    "check_source",
    "check_data_keys",
    "make_script_engine",
]

# --------------------------------------------------------------------------------------
# Limits.  Module constants so the lead can tune them in one place.
# --------------------------------------------------------------------------------------

#: Largest integer literal allowed in source (absolute value).
MAX_INT_CONSTANT = 10**6
#: Longest string literal allowed in source.
MAX_STR_CONSTANT = 10_000
#: Longest source text accepted at all (scripts in diagrams are a few lines long).
MAX_SOURCE_LENGTH = 50_000
#: Longest ``range()`` a script may create.
MAX_RANGE = 100_000
#: Largest string/list/tuple (characters or items) one guarded operation may produce:
#: ``+``, ``*``, ``str.join``, ``str.replace``, ``list.extend``, ``str()`` and f-string values.
MAX_SIZE = 100_000
#: Largest integer (in bits) that ``*`` may produce; about 10**308.
MAX_INT_BITS = 1024
#: Largest "serialized size" (roughly characters of JSON) of the task data a script leaves
#: behind, or of the value an expression returns.
MAX_DATA_SIZE = 5_000_000
#: How much the process' peak resident memory may grow while one script runs.
MEMORY_BUDGET_BYTES = 256 * 1024 * 1024
#: The tracer samples memory every this many trace events in script code.
MEMORY_CHECK_EVERY = 16

#: File name given to compiled scripts.  SpiffWorkflow's ``PythonScriptEngine`` looks for
#: frames with this file name to report the failing line of a script, so it must stay.
SCRIPT_FILENAME = "<string>"

# --------------------------------------------------------------------------------------
# Exceptions
# --------------------------------------------------------------------------------------


class UnsafeScript(Exception):
    """A script or expression uses something the sandbox does not allow.

    ``str(err)`` is written for the process owner who wrote the diagram and names the
    offending construct.  ``construct`` and ``lineno`` are kept for programmatic use.
    """

    def __init__(self, message: str, *, construct: str | None = None, lineno: int | None = None):
        # ``args[0]`` must be the message: SpiffWorkflow concatenates it into its errors.
        super().__init__(message)
        self.construct = construct
        self.lineno = lineno


class ScriptTimeout(UnsafeScript):
    """The script ran longer than the environment's time limit and was stopped."""


class ScriptLimitExceeded(UnsafeScript):
    """The script tried to build something too large or used too much memory."""


def _refuse(what: str, node: ast.AST | None = None, *, reason: str = "") -> UnsafeScript:
    """Build the UnsafeScript for a refused construct, with the line when known."""
    lineno = getattr(node, "lineno", None) if node is not None else None
    where = f"Line {lineno}: " if lineno else ""
    detail = f" ({reason})" if reason else ""
    return UnsafeScript(
        f"{where}{what} cannot be used in scripts or expressions{detail}",
        construct=what,
        lineno=lineno,
    )


# --------------------------------------------------------------------------------------
# Layer 1: static check of the syntax tree
# --------------------------------------------------------------------------------------

#: Attribute (method) names scripts may use.  Everything else, in particular every name
#: starting with ``_``, is refused.  ``format``/``format_map`` are deliberately absent: a
#: format string such as ``'{0.__class__}'`` reaches attributes without any ``.`` in the code.
SAFE_ATTRIBUTES: frozenset[str] = frozenset({
    "get", "items", "keys", "values",
    "append", "extend", "count", "index",
    "lower", "upper", "strip", "startswith", "endswith", "split", "join", "replace",
    "isoformat", "year", "month", "day",
})

#: Methods that modify their object.  Expressions (conditions, timers, DMN cells) must not
#: change task data, so these are refused in ``eval`` mode.
_MUTATING_ATTRIBUTES = frozenset({"append", "extend"})

#: Functions refused by name when called, so that the author gets a clear message instead
#: of a NameError (none of them is in SAFE_BUILTINS anyway).  A *reference* to these names is
#: not refused: a form field may well be called ``type`` or ``input``.
FORBIDDEN_CALLS: frozenset[str] = frozenset({
    "eval", "exec", "compile", "open", "input", "print", "help", "breakpoint", "exit", "quit",
    "getattr", "setattr", "delattr", "hasattr", "globals", "locals", "vars", "dir", "type",
    "object", "super", "classmethod", "staticmethod", "property", "memoryview", "bytearray",
    "bytes", "id", "hash", "iter", "next", "callable", "format", "repr", "ascii", "issubclass",
    "reload", "importlib",
})

# Node types allowed anywhere.  Operators and contexts are AST nodes too, so leaving ``Pow``,
# ``LShift``/``RShift`` and ``MatMult`` out of this set is what refuses ``**``, ``<<``...
_ALLOWED_NODES: frozenset[type] = frozenset({
    # roots
    ast.Module, ast.Expression,
    # statements
    ast.Expr, ast.Assign, ast.AugAssign, ast.If, ast.For, ast.Pass, ast.Break, ast.Continue,
    ast.Delete,
    # expressions
    ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.Compare, ast.Call, ast.keyword,
    ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.Starred,
    ast.List, ast.Tuple, ast.Dict, ast.Set,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension,
    ast.JoinedStr, ast.FormattedValue, ast.NamedExpr,
    # contexts
    ast.Load, ast.Store, ast.Del,
    # operators (no Pow, LShift, RShift, MatMult)
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod,
    ast.BitOr, ast.BitAnd, ast.BitXor,
    ast.UAdd, ast.USub, ast.Not, ast.Invert, ast.And, ast.Or,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
})

# Friendly names for refused node types; anything missing falls back to the class name.
_NODE_NAMES: dict[str, str] = {
    "Import": "import statements",
    "ImportFrom": "import statements",
    "FunctionDef": "function definitions (def)",
    "AsyncFunctionDef": "function definitions (async def)",
    "Lambda": "lambda expressions",
    "ClassDef": "class definitions",
    "While": "while loops",
    "With": "with blocks",
    "AsyncWith": "async with blocks",
    "AsyncFor": "async for loops",
    "Try": "try/except blocks",
    "TryStar": "try/except* blocks",
    "Raise": "raise statements",
    "Assert": "assert statements",
    "Global": "global declarations",
    "Nonlocal": "nonlocal declarations",
    "Yield": "yield",
    "YieldFrom": "yield from",
    "Await": "await",
    "Return": "return statements",
    "Match": "match statements",
    "AnnAssign": "annotated assignments",
    "Pow": "the power operator **",
    "LShift": "the shift operator <<",
    "RShift": "the shift operator >>",
    "MatMult": "the @ operator",
    "Interactive": "interactive input",
}

_DIGITS = re.compile(r"\d+")


def _parse(source: str, mode: str) -> ast.AST:
    """Parse ``source``; SyntaxError propagates unchanged (SpiffWorkflow's DMN engine relies
    on it), other parser failures become UnsafeScript."""
    if mode not in ("exec", "eval"):
        raise ValueError(f"mode must be 'exec' or 'eval', not {mode!r}")
    if not isinstance(source, str):
        raise UnsafeScript(f"a script must be text, not {type(source).__name__}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise UnsafeScript(
            f"the script is {len(source):,} characters long; the limit is {MAX_SOURCE_LENGTH:,}",
            construct="long source",
        )
    if mode == "eval":
        # ``eval()`` of a string skips leading spaces and tabs, ``compile`` does not, and
        # neither accepts an expression on an indented line.  SpiffWorkflow passes the
        # element text as is, so ``<conditionExpression>`` content laid out on its own
        # indented line would fail: an expression is one value, so surrounding blanks and
        # line breaks carry no meaning and are removed.
        source = source.strip()
    try:
        return ast.parse(source, filename=SCRIPT_FILENAME, mode=mode)
    except (RecursionError, MemoryError) as exc:
        raise UnsafeScript("the script is nested too deeply", construct="deep nesting") from exc
    except ValueError as exc:  # e.g. null bytes in the source on Python 3.11
        raise UnsafeScript(f"the script cannot be read: {exc}") from exc


def _check_name(name: str, node: ast.AST, kind: str) -> None:
    """Refuse identifiers starting with ``_`` (dunders, ``__builtins__``, our guards)."""
    if name.startswith("_"):
        raise _refuse(f"{kind} '{name}'", node, reason="names starting with '_' are reserved")


def _check_tree(tree: ast.AST, mode: str) -> None:
    """Walk ``tree`` (iteratively, so deep trees cannot overflow our stack) and raise
    UnsafeScript at the first refused construct."""
    for node in ast.walk(tree):
        node_type = type(node)
        if node_type not in _ALLOWED_NODES:
            name = node_type.__name__
            raise _refuse(_NODE_NAMES.get(name, f"{name} syntax"), node)

        if node_type is ast.Name:
            _check_name(node.id, node, "the name")

        elif node_type is ast.Attribute:
            attr = node.attr
            _check_name(attr, node, "the attribute")
            if attr in ("format", "format_map"):
                raise _refuse(
                    f"'.{attr}()'", node,
                    reason="format strings can reach object internals; use an f-string",
                )
            if attr not in SAFE_ATTRIBUTES:
                raise _refuse(
                    f"the attribute '.{attr}'", node,
                    reason="allowed: " + ", ".join(sorted(SAFE_ATTRIBUTES)),
                )
            if not isinstance(node.ctx, ast.Load):
                raise _refuse(f"assigning to or deleting '.{attr}'", node)
            if mode == "eval" and attr in _MUTATING_ATTRIBUTES:
                raise _refuse(f"'.{attr}()'", node, reason="expressions must not change data")

        elif node_type is ast.Constant:
            _check_constant(node)

        elif node_type is ast.Call:
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                raise _refuse(f"the function '{func.id}()'", node)
            for kw in node.keywords:
                if kw.arg is not None:
                    _check_name(kw.arg, node, "the keyword argument")

        elif node_type is ast.Subscript:
            # Slice assignment (``l[0:0] = l``) can grow a list in place without limit.
            if isinstance(node.ctx, ast.Store) and any(
                isinstance(sub, ast.Slice) for sub in ast.walk(node.slice)
            ):
                raise _refuse("assigning to a slice", node)

        elif node_type is ast.comprehension:
            if node.is_async:
                raise _refuse("async comprehensions", node.target)

        elif node_type is ast.FormattedValue:
            _check_format_spec(node)


def _check_constant(node: ast.Constant) -> None:
    """Only None, booleans, numbers and (bounded) strings may appear as literals."""
    value = node.value
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_INT_CONSTANT:
            raise _refuse(
                f"the number {value}", node, reason=f"integer literals are limited to {MAX_INT_CONSTANT:,}"
            )
        return
    if isinstance(value, float):
        return
    if isinstance(value, str):
        if len(value) > MAX_STR_CONSTANT:
            raise _refuse(
                f"a text literal of {len(value):,} characters", node,
                reason=f"the limit is {MAX_STR_CONSTANT:,}",
            )
        return
    raise _refuse(f"{type(value).__name__} literals", node)


def _check_format_spec(node: ast.FormattedValue) -> None:
    """f-string format specs must be fixed text with small numbers (``:.2f``, ``:%d/%m/%Y``).

    A spec cannot reach attributes (only ``str.format`` fields can), but a computed or
    huge width (``f'{x:1000000000}'``) would build an enormous string.
    """
    spec = node.format_spec
    if spec is None:
        return
    parts = spec.values if isinstance(spec, ast.JoinedStr) else [spec]
    for part in parts:
        if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
            raise _refuse("computed f-string format specifications", node)
        for digits in _DIGITS.findall(part.value):
            if len(digits) > 3:
                raise _refuse(f"the f-string format specification ':{part.value}'", node,
                              reason="widths and precisions are limited to 999")


def check_source(source: str, mode: str = "exec") -> None:
    """Raise :class:`UnsafeScript` unless ``source`` only uses the allowed constructs.

    ``mode`` is ``"exec"`` for scripts and ``"eval"`` for expressions.  A syntax error is
    raised as :class:`SyntaxError` (not wrapped), as ``ast.parse`` would.
    """
    _check_tree(_parse(source, mode), mode)


# --------------------------------------------------------------------------------------
# Layer 2: runtime guards, inserted by rewriting the checked tree
# --------------------------------------------------------------------------------------

# Names of the guard functions inside the script namespace.  They start with ``_`` so that
# no script can name (or replace) them: the static check refuses such names.
_G_GETATTR = "__sandbox_getattr__"
_G_BINOP = "__sandbox_binop__"
_G_INPLACE = "__sandbox_inplace__"
_G_INPLACE_ITEM = "__sandbox_inplace_item__"
_G_TEXT = "__sandbox_text__"

_OP_SYMBOLS: dict[type, str] = {ast.Add: "+", ast.Mult: "*", ast.Mod: "%"}
_BINARY: dict[str, Callable[[Any, Any], Any]] = {"+": operator.add, "*": operator.mul, "%": operator.mod}
_INPLACE: dict[str, Callable[[Any, Any], Any]] = {"+": operator.iadd, "*": operator.imul, "%": operator.imod}
_SEQUENCES = (str, bytes, list, tuple)
#: Objects whose attributes scripts may not read at all.
_NO_ATTRIBUTES = (type, types.ModuleType, types.GenericAlias, types.UnionType)
#: Nesting deeper than this in a value is refused (it would break copying and saving).
MAX_DATA_DEPTH = 100


def _too_large(what: str, size: int) -> ScriptLimitExceeded:
    return ScriptLimitExceeded(
        f"{what} would be too large ({size:,} items; the limit is {MAX_SIZE:,})",
        construct=what,
    )


def _check_operands(op: str, left: Any, right: Any) -> None:
    """Refuse ``+``, ``*`` and ``%`` whose result would be huge, before computing it."""
    if op == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            size = len(left) + len(right)
            if size > MAX_SIZE:
                raise _too_large("the result of '+'", size)
    elif op == "*":
        if isinstance(left, _SEQUENCES) and isinstance(right, int):
            size = len(left) * max(right, 0)
        elif isinstance(right, _SEQUENCES) and isinstance(left, int):
            size = len(right) * max(left, 0)
        elif isinstance(left, int) and isinstance(right, int):
            bits = left.bit_length() + right.bit_length()
            if bits > MAX_INT_BITS:
                raise ScriptLimitExceeded(
                    f"the result of '*' would be a {bits:,}-bit number (the limit is {MAX_INT_BITS:,})",
                    construct="huge number",
                )
            return
        else:
            return
        if size > MAX_SIZE:
            raise _too_large("the result of '*'", size)
    elif op == "%":
        if isinstance(left, (str, bytes)):
            raise UnsafeScript(
                "'%' text formatting cannot be used in scripts or expressions; use an f-string",
                construct="% formatting",
            )


def _guard_binop(op: str, left: Any, right: Any) -> Any:
    _check_operands(op, left, right)
    return _BINARY[op](left, right)


def _guard_inplace(op: str, target: Any, value: Any) -> Any:
    """``name op= value``: checked, keeping Python's in-place semantics for lists."""
    _check_operands(op, target, value)
    return _INPLACE[op](target, value)


def _guard_inplace_item(op: str, container: Any, key: Any, value: Any) -> None:
    """``container[key] op= value``, evaluating ``container`` and ``key`` once."""
    container[key] = _guard_inplace(op, container[key], value)


def _text_size(obj: Any, limit: int) -> int:
    """Estimate how many characters ``str(obj)`` or ``json.dumps(obj)`` would produce.

    Shared references are counted every time they are reached (that is what the text
    would contain), and the walk stops as soon as ``limit`` is exceeded, so it costs at most
    about ``limit`` steps whatever the structure (including self-referencing ones).
    Nesting deeper than MAX_DATA_DEPTH counts as exceeding the limit.
    """
    total = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) + 2
        elif isinstance(item, (dict, list, tuple, set, frozenset)):
            if depth >= MAX_DATA_DEPTH:
                return limit + 1
            if isinstance(item, dict):
                total += 2 + 4 * len(item)
                stack.extend((key, depth + 1) for key in item.keys())
                stack.extend((value, depth + 1) for value in item.values())
            else:
                total += 2 + 2 * len(item)
                stack.extend((element, depth + 1) for element in item)
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        else:  # floats, dates, None, booleans...
            total += 8
        if total > limit:
            break
    return total


def _check_text(obj: Any) -> Any:
    """Refuse converting ``obj`` to text when the text would exceed MAX_SIZE characters."""
    if isinstance(obj, (int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, str):
        if len(obj) > MAX_SIZE:
            raise _too_large("the text", len(obj))
        return obj
    size = _text_size(obj, MAX_SIZE)
    if size > MAX_SIZE:
        raise _too_large("the text of this value", size)
    return obj


def _safe_join(separator: str | bytes, iterable: Iterable[Any]) -> Any:
    items = list(iterable)
    size = len(separator) * max(len(items) - 1, 0)
    for item in items:
        if isinstance(item, (str, bytes)):
            size += len(item)
    if size > MAX_SIZE:
        raise _too_large("the result of '.join()'", size)
    return separator.join(items)


def _safe_replace(text: str | bytes, old: Any, new: Any, count: int = -1) -> Any:
    if isinstance(old, (str, bytes)) and isinstance(new, (str, bytes)) and isinstance(count, int):
        hits = len(text) + 1 if len(old) == 0 else text.count(old)
        if count >= 0:
            hits = min(hits, count)
        size = len(text) + hits * (len(new) - len(old))
        if size > MAX_SIZE:
            raise _too_large("the result of '.replace()'", size)
    return text.replace(old, new, count)


def _safe_extend(target: list, iterable: Iterable[Any]) -> None:
    items = list(iterable)  # a copy, so ``l.extend(l)`` is measured before it runs
    size = len(target) + len(items)
    if size > MAX_SIZE:
        raise _too_large("the list", size)
    target.extend(items)


def _guard_getattr(obj: Any, name: str) -> Any:
    """Every ``obj.name`` in a script becomes ``_guard_getattr(obj, 'name')``."""
    if name not in SAFE_ATTRIBUTES:  # already refused statically; checked again for safety
        raise UnsafeScript(f"the attribute '.{name}' cannot be used in scripts or expressions")
    if isinstance(obj, _NO_ATTRIBUTES):
        # Classes lead to their metaclass, base classes and unbound methods (``list[int]``
        # forwards to ``list``, so ``list[int].extend`` would be the unguarded method);
        # scripts only need attributes of data values (dates, strings, lists, dicts).
        raise UnsafeScript(
            f"'.{name}' on a type or module cannot be used in scripts or expressions",
            construct="attribute of a type",
        )
    if isinstance(obj, (str, bytes)):
        if name == "join":
            return functools.partial(_safe_join, obj)
        if name == "replace":
            return functools.partial(_safe_replace, obj)
    elif isinstance(obj, list) and name == "extend":
        return functools.partial(_safe_extend, obj)
    return getattr(obj, name)


_GUARDS: dict[str, Callable[..., Any]] = {
    _G_GETATTR: _guard_getattr,
    _G_BINOP: _guard_binop,
    _G_INPLACE: _guard_inplace,
    _G_INPLACE_ITEM: _guard_inplace_item,
    _G_TEXT: _check_text,
}


def _guard_call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


class _GuardInserter(ast.NodeTransformer):
    """Rewrites a tree that already passed :func:`_check_tree` to call the guards."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        # Only loads remain after the static check.
        call = _guard_call(_G_GETATTR, node.value, ast.Constant(node.attr))
        return ast.copy_location(call, node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        symbol = _OP_SYMBOLS.get(type(node.op))
        if symbol is None:
            return node
        call = _guard_call(_G_BINOP, ast.Constant(symbol), node.left, node.right)
        return ast.copy_location(call, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        symbol = _OP_SYMBOLS.get(type(node.op))
        if symbol is None:
            return node
        target = node.target
        if isinstance(target, ast.Name):
            value = _guard_call(
                _G_INPLACE, ast.Constant(symbol), ast.Name(id=target.id, ctx=ast.Load()), node.value
            )
            new: ast.stmt = ast.Assign(targets=[ast.Name(id=target.id, ctx=ast.Store())], value=value)
        elif isinstance(target, ast.Subscript):
            new = ast.Expr(
                value=_guard_call(_G_INPLACE_ITEM, ast.Constant(symbol), target.value, target.slice, node.value)
            )
        else:  # attribute targets were refused by the static check
            raise _refuse("this assignment target", node)
        return ast.copy_location(new, node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        self.generic_visit(node)
        node.value = ast.copy_location(_guard_call(_G_TEXT, node.value), node.value)
        return node


# --------------------------------------------------------------------------------------
# Compilation cache
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    code: types.CodeType
    #: names the source binds or deletes (assignments, loop and comprehension variables)
    stored_names: frozenset[str]
    #: ids of the module code and every nested code object (comprehensions), so the tracer
    #: can tell script frames from helper frames.  ``code`` keeps them all alive.
    code_ids: frozenset[int]


def _nested_code_ids(code: types.CodeType) -> frozenset[int]:
    ids: set[int] = set()
    pending = [code]
    while pending:
        current = pending.pop()
        ids.add(id(current))
        pending.extend(const for const in current.co_consts if isinstance(const, types.CodeType))
    return frozenset(ids)


@functools.lru_cache(maxsize=4096)
def _compile(source: str, mode: str) -> _Compiled:
    """Check, rewrite and compile ``source``.  Cached: DMN cells are evaluated many times.

    Failures are exceptions, which ``lru_cache`` does not store, so a refused source is
    checked again (and refused again) on every call.
    """
    tree = _parse(source, mode)
    _check_tree(tree, mode)
    stored = frozenset(
        node.id for node in ast.walk(tree)
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)
    )
    try:
        tree = ast.fix_missing_locations(_GuardInserter().visit(tree))
        code = compile(tree, SCRIPT_FILENAME, mode)
    except RecursionError as exc:
        raise UnsafeScript("the script is nested too deeply", construct="deep nesting") from exc
    return _Compiled(code=code, stored_names=stored, code_ids=_nested_code_ids(code))


# --------------------------------------------------------------------------------------
# Layer 3: builtins
# --------------------------------------------------------------------------------------


def _bounded_range(*args: int) -> range:
    """``range`` refusing more than MAX_RANGE numbers."""
    result = range(*args)
    try:
        length = len(result)
    except OverflowError:  # longer than sys.maxsize
        length = MAX_RANGE + 1
    if length > MAX_RANGE:
        raise ScriptLimitExceeded(
            f"range() of {length:,} numbers is too long (the limit is {MAX_RANGE:,})",
            construct="long range",
        )
    return result


def _numeric_sum(iterable: Iterable[Any], /, start: int | float = 0) -> Any:
    """``sum`` for numbers only: summing lists or strings is quadratic in one C call."""
    if isinstance(start, bool) or not isinstance(start, (int, float)):
        raise UnsafeScript("sum() can only add numbers", construct="sum of non-numbers")
    return sum(iterable, start)


class _GuardedStrType(type):
    """Metaclass making ``_GuardedStr`` behave like ``str`` for calls and isinstance.

    ``str(x)`` then refuses to render enormous objects, while ``isinstance(x, str)`` and
    ``sorted(items, key=str)`` keep working.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> str:
        if args:
            _check_text(args[0])
        return str(*args, **kwargs)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, str)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, str)

    def __repr__(cls) -> str:
        return "<class 'str'>"


class _GuardedStr(metaclass=_GuardedStrType):
    """Stands for ``str`` inside scripts (see :class:`_GuardedStrType`)."""


#: The only builtins scripts see.  ``isinstance`` is included: it returns a bool, the only
#: classes a script can pass to it are the builtin types below, and authors cannot define
#: classes with their own ``__instancecheck__``, so it gives no way to reach an object.
#: Left out on purpose: getattr/type/vars/dir/globals (introspection), eval/exec/compile/
#: open/__import__/breakpoint/input/print (code and I/O), iter/next, map/filter (not
#: needed), format/repr (format specs), bytes/bytearray/memoryview.
SAFE_BUILTINS: dict[str, Any] = {
    "len": len,
    "min": min,
    "max": max,
    "sum": _numeric_sum,
    "sorted": sorted,
    "any": any,
    "all": all,
    "str": _GuardedStr,
    "int": int,
    "float": float,
    "bool": bool,
    "list": list,
    "dict": dict,
    "set": set,
    "tuple": tuple,
    "range": _bounded_range,
    "enumerate": enumerate,
    "zip": zip,
    "abs": abs,
    "round": round,
    "isinstance": isinstance,
    "True": True,
    "False": False,
    "None": None,
}


# --------------------------------------------------------------------------------------
# Layer 4: time and memory budget
# --------------------------------------------------------------------------------------


def _peak_rss_bytes() -> int | None:
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


class _Budget:
    """The trace function of one script run.

    Only frames running the script's own code (module body, comprehensions, generator
    expressions) are traced line by line; helpers are trusted and run untraced.  Raising
    from a trace function stops the traced code and makes Python drop the tracer, which
    :meth:`RestrictedEnvironment._run` then restores to the previous one.
    """

    def __init__(self, time_limit: float, code_ids: frozenset[int]):
        self.time_limit = time_limit
        self.deadline = time.monotonic() + time_limit
        self.code_ids = code_ids
        self.events = 0
        start = _peak_rss_bytes()
        self.memory_ceiling = None if start is None else start + MEMORY_BUDGET_BYTES

    def global_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if id(frame.f_code) in self.code_ids:
            self.check()
            return self.local_trace
        return None

    def local_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        self.check()
        return self.local_trace

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise ScriptTimeout(
                f"the script ran longer than {self.time_limit:g} s and was stopped "
                "(a loop that runs too often?)",
                construct="time limit",
            )
        self.events += 1
        if self.memory_ceiling is not None and self.events % MEMORY_CHECK_EVERY == 0:
            peak = _peak_rss_bytes()
            if peak is not None and peak > self.memory_ceiling:
                raise ScriptLimitExceeded(
                    f"the script used more than {MEMORY_BUDGET_BYTES // 2**20} MiB of memory "
                    "and was stopped",
                    construct="memory limit",
                )


# --------------------------------------------------------------------------------------
# The environment
# --------------------------------------------------------------------------------------


def _check_data_size(values: Iterable[Any], what: str) -> None:
    total = 0
    for value in values:
        total += _text_size(value, MAX_DATA_SIZE - total)
        if total > MAX_DATA_SIZE:
            raise ScriptLimitExceeded(
                f"{what} is too large (more than {MAX_DATA_SIZE:,} characters once saved), "
                f"nested more than {MAX_DATA_DEPTH} levels deep, or refers to itself",
                construct="data size",
            )


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """A SpiffWorkflow script environment that runs diagram code in the sandbox.

    Data semantics follow ``TaskDataEnvironment``: ``evaluate`` returns the value of an
    expression over the task data; ``execute`` runs a script over the task data and leaves
    new and changed variables in it (deleted ones are removed; functions are never stored).
    Differences, on purpose:

    * **Helpers and builtins win over task data.**  A task-data key named like a helper
      (``today``) or a builtin (``len``) is hidden from the code instead of shadowing it,
      and the key is left untouched in task data.  Assigning to such a name in a script is
      refused.  Use :func:`check_data_keys` with :attr:`reserved_names` to refuse such form
      fields when they are submitted.
    * Task-data keys starting with ``_`` are invisible to code and never modified.
    * Expressions may not call ``append``/``extend`` (they must not change data).
    """

    def __init__(self, helpers: Mapping[str, Callable[..., Any]], time_limit: float = 1.0):
        for name in helpers:
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
                raise ValueError(f"helper names must be identifiers not starting with '_': {name!r}")
        if time_limit <= 0:
            raise ValueError("time_limit must be positive")
        self.helpers: dict[str, Callable[..., Any]] = {name: _timed(fn) for name, fn in helpers.items()}
        self.time_limit = float(time_limit)
        #: Names task data cannot use: helpers and builtins.
        self.reserved_names: frozenset[str] = frozenset(self.helpers) | frozenset(SAFE_BUILTINS)
        super().__init__(self.helpers)

    # -- SpiffWorkflow interface -------------------------------------------------------

    def evaluate(self, expression: str, context: dict[str, Any],
                 external_context: dict[str, Any] | None = None) -> Any:
        compiled = _compile(expression, "eval")
        self._check_assignments(compiled)
        namespace = self._namespace(context, external_context)
        result = self._run(compiled, namespace, "eval")
        _check_data_size([result], "the value of the expression")
        return result

    def execute(self, script: str, context: dict[str, Any],
                external_context: dict[str, Any] | None = None) -> bool:
        compiled = _compile(script or "", "exec")
        self._check_assignments(compiled)
        external = external_context or {}
        namespace = self._namespace(context, external)
        self._run(compiled, namespace, "exec")

        # Variables to store: everything visible to the script except what the
        # environment itself put there, and except external-only values (as SpiffWorkflow,
        # which removes external context from task data after running).
        kept = {
            key: value for key, value in namespace.items()
            if self._is_data_name(key) and (key in context or key not in external)
        }
        _check_data_size(kept.values(), "the task data left by the script")
        for key in [k for k in context if self._is_data_name(k) and k not in namespace]:
            del context[key]  # ``del name`` in the script
        for key, value in kept.items():
            if callable(value):  # as TaskDataEnvironment: never keep functions in task data
                context.pop(key, None)
            elif key not in context or context[key] is not value:
                context[key] = value
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise UnsafeScript("service tasks are not supported by this application", construct="service task")

    # -- internals ---------------------------------------------------------------------

    def _is_data_name(self, key: Any) -> bool:
        return isinstance(key, str) and not key.startswith("_") and key not in self.reserved_names

    def _check_assignments(self, compiled: _Compiled) -> None:
        clash = compiled.stored_names & self.reserved_names
        if clash:
            names = ", ".join(sorted(clash))
            raise UnsafeScript(
                f"{names}: the name of a helper or built-in function cannot be assigned; "
                "choose another variable name",
                construct="assignment to helper",
            )

    def _namespace(self, context: Mapping[str, Any], external: Mapping[str, Any] | None) -> dict[str, Any]:
        """Globals for one run: external context, then task data (task data wins, as in
        TaskDataEnvironment.evaluate), then helpers and guards (they win over both)."""
        namespace: dict[str, Any] = {}
        for source in (external or {}), context:
            for key, value in source.items():
                if self._is_data_name(key):
                    namespace[key] = value
        namespace.update(self.helpers)
        namespace.update(_GUARDS)
        # Must always be set: without it Python would insert the real builtins module.
        namespace["__builtins__"] = SAFE_BUILTINS
        return namespace

    def _run(self, compiled: _Compiled, namespace: dict[str, Any], mode: str) -> Any:
        budget = _Budget(self.time_limit, compiled.code_ids)
        previous = sys.gettrace()
        outer = getattr(_running, "budget", None)
        _running.budget = budget
        sys.settrace(budget.global_trace)
        try:
            if mode == "eval":
                return eval(compiled.code, namespace)  # noqa: S307 - checked and guarded code
            exec(compiled.code, namespace)  # noqa: S102 - checked and guarded code
            return None
        finally:
            sys.settrace(previous)
            _running.budget = outer


_running = threading.local()


def _timed(helper: Callable[..., Any]) -> Callable[..., Any]:
    """Helpers are trusted code, but their time is the script's: a script calling a helper in a
    loop is stopped like any other loop. The tracer cannot see inside a helper, so the budget is
    checked as soon as the helper returns (helpers bound their own work: add_working_days refuses
    more than 10,000 days; the bank holidays are loaded before any script runs)."""

    @functools.wraps(helper)
    def call(*args: Any, **kwargs: Any) -> Any:
        result = helper(*args, **kwargs)
        budget = getattr(_running, "budget", None)
        if budget is not None:
            budget.check()
        return result

    return call


def check_data_keys(data: Mapping[str, Any], reserved: Iterable[str]) -> list[str]:
    """Messages for submitted form keys that scripts could not use safely.

    A key is refused when it starts with ``_`` (reserved for the sandbox and Python
    internals) or is in ``reserved`` (helper and builtin names: pass
    ``RestrictedEnvironment.reserved_names``).  Only top-level keys are checked: only they
    become variables.  An empty list means the data is acceptable.
    """
    reserved_set = set(reserved)
    errors: list[str] = []
    for key in data:
        if not isinstance(key, str):
            errors.append(f"Field name {key!r} is not text.")
        elif key.startswith("_"):
            errors.append(f"Field '{key}': field names cannot start with '_'.")
        elif key in reserved_set:
            errors.append(
                f"Field '{key}' has the name of a script function; rename the field."
            )
    return errors


# --------------------------------------------------------------------------------------
# Script engine
# --------------------------------------------------------------------------------------


class SandboxedScriptEngine(PythonScriptEngine):
    """``PythonScriptEngine`` using :class:`RestrictedEnvironment`, with three fixes:

    * ``validate`` (used by the DMN engine, and useful when publishing diagrams) also runs
      :func:`check_source`; syntax errors are still raised as ``SyntaxError``, which the
      DMN engine relies on to decide whether a cell needs ``==``;
    * errors name the cause: the library's ``evaluate`` drops the message of the original
      exception, and its ``create_task_exec_exception`` fails when ``args[0]`` is not text
      (``{}[1]`` raises ``KeyError(1)``);
    * ``call_service`` refers to an undefined variable in the library (3.2.0); here it
      raises a ``WorkflowTaskException`` wrapping :class:`UnsafeScript`.
    """

    environment: RestrictedEnvironment

    def validate(self, expression: str) -> None:
        check_source(expression, "exec")

    def evaluate(self, task: Any, expression: str, external_context: dict[str, Any] | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SpiffWorkflowException as err:
            err.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as err:
            raise WorkflowTaskException(
                f"Error evaluating expression '{expression}': {err}", task=task, exception=err
            ) from err

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        try:
            return self.environment.call_service(task.data, **kwargs)
        except Exception as err:
            raise WorkflowTaskException(str(err), task=task, exception=err) from err

    def create_task_exec_exception(self, task: Any, script: str, err: Exception) -> Exception:
        line_number, error_line = self.get_error_line_number_and_content(script or "", err)
        if isinstance(err, UnsafeScript) and err.lineno and not line_number:
            # Refused before running: the line comes from the static check.
            lines = (script or "").splitlines()
            line_number = err.lineno
            error_line = lines[line_number - 1] if line_number <= len(lines) else ""
        if isinstance(err, SpiffWorkflowException):
            err.line_number = line_number
            err.error_line = error_line
            err.add_note(f"Python script error on line {line_number}: '{error_line}'")
            return err
        detail = type(err).__name__
        if err.args:
            detail += ": " + str(err.args[0])
        wrapped = WorkflowTaskException(
            detail, task=task, exception=err, line_number=line_number, error_line=error_line
        )
        wrapped.__cause__ = err
        return wrapped


def make_script_engine(helpers: Mapping[str, Callable[..., Any]], time_limit: float = 1.0) -> SandboxedScriptEngine:
    """A SpiffWorkflow script engine (a ``PythonScriptEngine``) running in the sandbox."""
    return SandboxedScriptEngine(environment=RestrictedEnvironment(helpers, time_limit))
