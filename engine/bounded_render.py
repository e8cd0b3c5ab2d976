"""Rendering a process owner's Jinja template within hard limits.

Jinja's sandbox stops attribute tricks but not work: `{% for i in range(100000) %}{% for j in
range(100000) %}…` runs for hours. Templates are rendered here with a tracer on the template's own
code that stops it after MAX_RENDER_SECONDS, and the output is collected chunk by chunk up to
MAX_OUTPUT_CHARACTERS, so neither time nor memory depends on what the template asks for."""
from __future__ import annotations

import sys
import time
import types
from typing import Any

from jinja2 import Template

from .errors import CaseReviewError

MAX_RENDER_SECONDS = 2.0  # a letter renders in milliseconds
MAX_OUTPUT_CHARACTERS = 200_000  # about 60 pages of text


class TemplateLimitExceeded(CaseReviewError):
    """A template took too long or wrote too much."""


class _Deadline:
    def __init__(self, code_file: str, seconds: float):
        self.code_file = code_file
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def global_trace(self, frame: types.FrameType, event: str, arg: Any):
        return self.local_trace if frame.f_code.co_filename == self.code_file else None

    def local_trace(self, frame: types.FrameType, event: str, arg: Any):
        if time.monotonic() > self.deadline:
            raise TemplateLimitExceeded(f"the template ran longer than {self.seconds:g} s and was stopped "
                                        "(a loop that runs too often?)")
        return self.local_trace


def render_bounded(template: Template, context: dict, *, seconds: float = MAX_RENDER_SECONDS,
                   max_characters: int = MAX_OUTPUT_CHARACTERS) -> str:
    budget = _Deadline(template.root_render_func.__code__.co_filename, seconds)
    previous = sys.gettrace()
    sys.settrace(budget.global_trace)
    parts, size = [], 0
    try:
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > max_characters:
                raise TemplateLimitExceeded(f"the template wrote more than {max_characters:,} characters")
            parts.append(chunk)
    finally:
        sys.settrace(previous)
    return "".join(parts)
