"""Letters and emails from the version's templates (processes/letters/NAME.txt).

Templates are edited by process owners, so they render in Jinja2's sandbox: no attribute
tricks, no file access. The first line is `Subject: ...`, then a blank line, then the body.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateError, Undefined, meta
from jinja2.sandbox import SandboxedEnvironment

from .bounded_render import render_bounded
from .errors import CaseReviewError

_env = SandboxedEnvironment(undefined=Undefined, autoescape=False, keep_trailing_newline=True)


@dataclass(frozen=True)
class RenderedLetter:
    template: str
    subject: str
    body: str


def render(templates: dict[str, str], name: str, context: dict) -> RenderedLetter:
    source = templates.get(name)
    if source is None:
        raise CaseReviewError(f"the process version has no letter template {name!r}")
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
    """A syntax problem in a template, or None."""
    try:
        SandboxedEnvironment(undefined=StrictUndefined).parse(source)
    except TemplateError as exc:
        return str(exc)
    return None
