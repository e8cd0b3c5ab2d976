"""A letter as an accessible PDF: plain HTML laid out for an A4 window envelope, printed by WeasyPrint.

The layout follows GOV.UK Notify's letter specification (A4; the recipient's address 24.6 mm
from the left and 39.5 mm from the top, 95.4 mm by 26.8 mm; a contact block 125 mm from the
left and 30 mm from the top), so the same file can be posted by Notify as a precompiled letter.
The PDF is tagged (PDF/UA-1): headings, paragraphs and lists keep their structure for screen
readers, and the document has a title and a language.

Letter text comes from the process owners' plain-text templates: blank lines separate
paragraphs, "- " starts a list item, and a short first line without punctuation followed by
more text is a section heading ("What happens next").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from jinja2 import Environment
from markupsafe import Markup, escape

SERVICE_NAME = "ASB case review"

_HEADING_END = tuple(".,;:?!)")


@dataclass(frozen=True)
class LetterContent:
    reference: str | None
    letter_date: date
    recipient_lines: tuple[str, ...]
    subject: str
    body: str
    service_name: str = SERVICE_NAME  # the sender, from the settings (CASEREVIEW_SERVICE_NAME)
    service_phone: str = ""  # shown under the service's name when set (CASEREVIEW_SERVICE_PHONE)
    service_email: str = ""  # (CASEREVIEW_SERVICE_EMAIL)
    large_print: bool = False  # the applicant asked for large print (application's communication needs)


@dataclass(frozen=True)
class Block:
    kind: str  # "heading", "paragraph" (lines kept as written) or "list" (items)
    lines: tuple[str, ...]


def _is_heading(line: str) -> bool:
    text = line.strip()
    return (0 < len(text) <= 60 and text[0].isupper() and ":" not in text
            and not text.endswith(_HEADING_END) and not text.startswith("- "))


def body_blocks(text: str) -> list[Block]:
    """Split letter text into headings, paragraphs and bulleted lists."""
    blocks: list[Block] = []
    for chunk in re.split(r"\n[ \t]*\n", text.strip()):
        lines = [line.rstrip() for line in chunk.splitlines() if line.strip()]
        if len(lines) > 1 and _is_heading(lines[0]):
            blocks.append(Block("heading", (lines.pop(0).strip(),)))
        run: list[str] = []
        in_list = False
        for line in lines:
            item = line.lstrip().startswith("- ")
            if run and item != in_list:
                blocks.append(Block("list" if in_list else "paragraph", tuple(run)))
                run = []
            in_list = item
            run.append(line.lstrip()[2:].strip() if item else line.strip())
        if run:
            blocks.append(Block("list" if in_list else "paragraph", tuple(run)))
    return blocks


def long_date(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:)]")


def linkify(text: str) -> Markup:
    """Escaped text whose web addresses (a tracking link, say) can be followed from the PDF."""
    parts, last = [], 0
    for match in _URL.finditer(text):
        url = match.group(0)
        parts += [escape(text[last:match.start()]), Markup('<a href="{0}">{0}</a>').format(url)]
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["linkify"] = linkify
_LAYOUT = _ENV.from_string("""\
<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<title>{{ letter.subject }}</title>
<meta name="author" content="{{ letter.service_name }}">
<meta name="dcterms.created" content="{{ letter.letter_date.isoformat() }}">
<style>
@page { size: A4; margin: 15mm;
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font-size: 9pt; } }
html { font-family: Arial, "Liberation Sans", "DejaVu Sans", sans-serif; font-size: 11pt; line-height: 1.4; color: #000; }
body { margin: 0; }
.service { position: absolute; left: 0; top: 0; margin: 0; font-size: 16pt; font-weight: bold; }
/* The sender's telephone and email under its name, clear of the address window (from 39.5 mm) */
.sender { position: absolute; left: 0; top: 9mm; width: 90mm; margin: 0; font-size: 9pt; line-height: 1.3; }
.recipient { position: absolute; left: 9.6mm; top: 24.5mm; width: 95.4mm; height: 26.8mm;
  overflow: hidden; margin: 0; font-size: 10pt; line-height: 1.2; }
.contact { position: absolute; left: 110mm; top: 15mm; width: 65mm; margin: 0; }
.contact dt { font-weight: bold; margin: 0; }
.contact dd { margin: 0 0 3mm 0; }
.contact .reference { font-size: 15pt; font-weight: bold; }
main { padding-top: 60mm; }  /* below the address window (ends 66.3 mm from the top edge) */
h1 { font-size: 14pt; margin: 0 0 5mm 0; }
h2 { font-size: 12pt; margin: 5mm 0 1mm 0; }
p { margin: 0 0 3mm 0; }
ul { margin: 0 0 3mm 0; padding-left: 6mm; }
li { margin: 0 0 1mm 0; }
a { color: #1d70b8; overflow-wrap: anywhere; }
{% if letter.large_print %}
/* Large print (RNIB's clear print guidance: at least 16 point; the address window keeps Notify's size) */
main { font-size: 16pt; line-height: 1.5; }
main h1 { font-size: 20pt; }
main h2 { font-size: 18pt; }
.contact { font-size: 13pt; }
{% endif %}
</style>
</head>
<body>
<p class="service">{{ letter.service_name }}</p>
{% if letter.service_phone or letter.service_email %}
<p class="sender">{% if letter.service_phone %}Telephone: {{ letter.service_phone }}{% endif %}{% if letter.service_phone and letter.service_email %}<br>{% endif %}{% if letter.service_email %}Email: <a href="mailto:{{ letter.service_email }}">{{ letter.service_email }}</a>{% endif %}</p>
{% endif %}
<p class="recipient">{% for line in letter.recipient_lines %}{{ line }}{% if not loop.last %}<br>{% endif %}{% endfor %}</p>
<dl class="contact">
  <dt>Date</dt><dd>{{ day }}</dd>
{% if letter.reference %}
  <dt>Case reference</dt><dd class="reference">{{ letter.reference }}</dd>
{% endif %}
</dl>
<main>
<h1>{{ letter.subject }}</h1>
{% for block in blocks %}
{% if block.kind == "heading" %}
<h2>{{ block.lines[0] }}</h2>
{% elif block.kind == "list" %}
<ul>
{% for item in block.lines %}
  <li>{{ item | linkify }}</li>
{% endfor %}
</ul>
{% else %}
<p>{% for line in block.lines %}{{ line | linkify }}{% if not loop.last %}<br>{% endif %}{% endfor %}</p>
{% endif %}
{% endfor %}
</main>
</body>
</html>
""")


def letter_html(letter: LetterContent) -> str:
    return _LAYOUT.render(letter=letter, day=long_date(letter.letter_date), blocks=body_blocks(letter.body))


def render_pdf(letter: LetterContent) -> bytes:
    """About a fifth of a second a letter: call it outside any database transaction."""
    from weasyprint import HTML  # imported on first use: it takes most of a second

    return HTML(string=letter_html(letter)).write_pdf(pdf_variant="pdf/ua-1")
