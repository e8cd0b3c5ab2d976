"""Letters and emails from the version's templates (processes/letters/NAME.txt).

Templates are edited by process owners, so they render in Jinja2's sandbox: no attribute
tricks, no file access. The first line is `Subject: ...`, then a blank line, then the body.

Besides the task data, every letter gets `case` (reference, stage) and `service` (the service's
`name`, `phone`, `email` and `address` from the settings), and the filter `long_date` writes a
date as GOV.UK does ("2 December 2026"). Each template signs itself with its sender's role.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateError, Undefined, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from .bounded_render import render_bounded
from .errors import CaseReviewError


def long_date(value) -> str:
    """A date as GOV.UK writes it, "2 December 2026", from a date, a datetime or an ISO string
    (task data holds dates as ISO strings). Anything else is printed as it is, so a letter never
    fails on a date someone has already written out; nothing prints nothing."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
        except ValueError:
            return value
    if isinstance(value, (date, datetime)):
        return f"{value.day} {value:%B %Y}"
    return str(value)


# What templates may use beyond Jinja's own filters (the studio's check knows the same list).
FILTERS = {"long_date": long_date}


def _environment(undefined) -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=undefined, autoescape=False, keep_trailing_newline=True)
    env.filters.update(FILTERS)
    return env


_env = _environment(Undefined)
_strict = _environment(StrictUndefined)  # for checking


@dataclass(frozen=True)
class RenderedLetter:
    template: str
    subject: str
    body: str


def render(templates: dict[str, str], name: str, context: dict) -> RenderedLetter:
    source = templates.get(name)
    if source is None:
        raise CaseReviewError(f"the process version has no letter template {name!r}")
    if "service" not in context:  # the runtime passes the service's settings; anything else gets them here
        from .config import Settings

        context = {**context, "service": Settings.from_env().service}
    try:
        text = render_bounded(_env.from_string(source), context)
    except TemplateError as exc:
        raise CaseReviewError(f"letter template {name!r} could not be rendered: {exc}") from None
    head, _, body = text.partition("\n")
    if head.lower().startswith("subject:"):
        subject = head.split(":", 1)[1].strip()
    else:
        subject, body = name.replace("_", " ").capitalize(), text
    return RenderedLetter(name, subject, body.lstrip("\n"))


@lru_cache(maxsize=256)
def variables_used(source: str) -> frozenset[str]:
    """The names a template reads from its context (so links are issued only for letters that show them)."""
    try:
        return frozenset(meta.find_undeclared_variables(_env.parse(source)))
    except TemplateError:
        return frozenset()


def check_template(source: str) -> str | None:
    """A problem in a template (syntax, or a filter the letter environment does not have), or None."""
    try:
        tree = _strict.parse(source)
    except TemplateError as exc:
        return str(exc)
    # Jinja reports an unknown filter only when it runs (inside {% if %}), so look for them here.
    for node in tree.find_all(nodes.Filter):
        if node.name not in _strict.filters:
            return f"no filter named {node.name!r} (letters can use Jinja's filters and long_date)"
    for node in tree.find_all(nodes.Test):
        if node.name not in _strict.tests:
            return f"no test named {node.name!r}"
    return None
