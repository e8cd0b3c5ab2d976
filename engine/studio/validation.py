"""validate_bundle: every rule over a candidate bundle, every problem at once.

Order: file names; XML safety (engine/safexml.py); BPMN lint (lint.py); forms and their
`x-ui` hints (formcheck.py); the sandbox check of every piece of code (code.py); DMN
variables and outputs (dmncheck.py); SpiffWorkflow's own parse plus the publish-time checks
of engine/checks.py (user task form, lane role, partner agency, letter templates); the
statutory facts the reports need (engine/statutoryfacts.py: checked here, at publish, and not
when an already published version is loaded, since versions published before facts were
declared must still run); and, when the bundle compiles and its code is safe, the dry run
(dryrun.py).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

from ..errors import InvalidProcess
from ..safexml import UnsafeXML, parse_xml
from ..statutoryfacts import statutory_fact_problems
from ..versions import bundle_sha256, compile_cached
from .bundles import name_problem
from .code import bpmn_code, dmn_code, sandbox_problems
from .dmncheck import dmn_problems, read_decisions
from .formcheck import load_form, ui_problems
from .isolation import LimitExceeded, run_limited
from .lint import duplicate_ids, lint_diagram
from .bpmnmodel import read_diagram
from .problems import Problem

# Rules whose problems compile_files also reports: the studio's own version is kept.
_ALSO_CHECKED_HERE = frozenset({"xml-safe", "form-json-schema", "sandbox"})
# After these, running the bundle would only repeat them (or run code the sandbox refuses).
_NO_DRY_RUN_AFTER = frozenset({"xml-safe", "sandbox", "bundle-layout"})

_results: OrderedDict[tuple[str, bool], tuple[Problem, ...]] = OrderedDict()
_results_lock = threading.Lock()
_RESULTS_KEPT = 32


def validate_bundle(files: dict[str, str], *, dry_run: bool = True) -> list[Problem]:
    """Every problem in the bundle (an empty list means it may be published).

    Results are remembered per content hash, so validating the same files again (publish
    after validate in the studio) costs nothing.
    """
    key = (bundle_sha256(files), dry_run)
    with _results_lock:
        if key in _results:
            return list(_results[key])
    problems = _validate_isolated(files, dry_run)
    with _results_lock:
        _results[key] = tuple(problems)
        while len(_results) > _RESULTS_KEPT:
            _results.popitem(last=False)
    return problems


def _validate_isolated(files: dict[str, str], dry_run: bool) -> list[Problem]:
    """_validate in a child process with CPU, memory and time limits (isolation.py): owner-written
    code that outruns them is refused, never left running in this process."""
    try:
        return run_limited(_validate, files, dry_run)
    except LimitExceeded as exc:
        return [Problem(None, None, "resource-limit",
                        f"Checking this bundle used {exc} and was stopped: a script, condition, decision "
                        "table or letter template does far too much work (a huge loop, or one step over a "
                        "very large list).")]


def _validate(files: dict[str, str], dry_run: bool) -> list[Problem]:
    problems: list[Problem] = []
    for name in files:
        message = name_problem(name)
        if message:
            problems.append(Problem(name, None, "bundle-layout", message))

    diagrams, dmn_trees = [], []
    for name, text in sorted(files.items()):
        if not (name.endswith(".bpmn") or name.endswith(".dmn")):
            continue
        try:
            root = parse_xml(text, name)
        except UnsafeXML as exc:
            problems.append(Problem(name, None, "xml-safe", str(exc)))
            continue
        problems.extend(duplicate_ids(root, name))
        if name.endswith(".bpmn"):
            diagram = read_diagram(root, name)
            diagrams.append(diagram)
            problems.extend(lint_diagram(diagram))
        else:
            dmn_trees.append((name, root))

    forms: dict[str, dict] = {}
    for name, text in sorted(files.items()):
        if name.startswith("forms/") and name.endswith(".json"):
            schema, found = load_form(name, text)
            problems.extend(found)
            if schema is not None:
                forms[name] = schema
                problems.extend(ui_problems(name, schema))

    codes = [code for diagram in diagrams for code in bpmn_code(diagram)]
    codes += [code for name, root in dmn_trees for code in dmn_code(root, name)]
    problems.extend(sandbox_problems(codes))
    decisions = [d for name, root in dmn_trees for d in read_decisions(root, name)]
    letters = {n: t for n, t in files.items() if n.startswith("processes/letters/")}
    problems.extend(dmn_problems(decisions, diagrams, codes, forms, letters))

    compiled = None
    try:
        compiled = compile_cached(bundle_sha256(files), files)
    except InvalidProcess as exc:
        for error in exc.errors:
            rule = error.get("rule") or "compile"
            if rule not in _ALSO_CHECKED_HERE:
                problems.append(Problem(error.get("file"), error.get("element"), rule, error["message"]))
    if compiled is not None:
        problems.extend(Problem(p["file"], p["element"], p["rule"], p["message"])
                        for p in statutory_fact_problems(compiled))

    if dry_run and compiled is not None and not any(p.rule in _NO_DRY_RUN_AFTER for p in problems):
        from .dryrun import dry_run as run_journeys  # late import: it pulls in the whole service

        process_files = {process: d.file for d in diagrams for process in d.processes}
        problems.extend(run_journeys(files, process_files=process_files)[0])
    return _ordered(problems)


def _ordered(problems: list[Problem]) -> list[Problem]:
    unique = dict.fromkeys(problems)
    return sorted(unique, key=lambda p: (p.file or "", p.element or "", p.rule, p.message))
