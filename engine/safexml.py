"""Hardened XML parsing for uploaded BPMN and DMN files.

SpiffWorkflow parses with plain ``etree.fromstring``; diagrams are uploaded by process
owners, so the application parses them itself and hands the tree to the library
(``add_bpmn_xml``/``add_dmn_xml``).  The parser here

* never resolves entities, never loads a DTD and never touches the network;
* keeps libxml2's default size limits (``huge_tree=False``);
* refuses any document with a DOCTYPE at all: BPMN and DMN never need one, and refusing it
  removes every entity trick (XXE, "billion laughs", external DTD fetches) in one rule.
"""

from __future__ import annotations

import re

from lxml import etree

__all__ = ["UnsafeXML", "parse_xml"]


class UnsafeXML(ValueError):
    """The XML is refused: malformed, or using a feature we do not allow (a DOCTYPE).

    ``filename`` and ``line`` (None when unknown) say where; the message names both.
    """

    def __init__(self, message: str, filename: str, line: int | None = None):
        super().__init__(message)
        self.filename = filename
        self.line = line


# "<!DOCTYPE" as it appears in common encodings (to explain parse errors caused by a DTD).
_DOCTYPE_MARKERS: tuple[bytes, ...] = tuple(
    "<!DOCTYPE".encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)
# The encoding declaration of an XML declaration, e.g. encoding="ISO-8859-1".
_ENCODING_DECL = re.compile(r"""^(\s*<\?xml[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""")


def _parser() -> etree.XMLParser:
    # A new parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=False,
    )


def _mentions_doctype(data: bytes) -> bool:
    return any(marker in data for marker in _DOCTYPE_MARKERS)


def _doctype_line(data: bytes) -> int | None:
    """Line of the first "<!DOCTYPE" when the document is ASCII-compatible."""
    position = data.find(_DOCTYPE_MARKERS[0])
    return data[:position].count(b"\n") + 1 if position >= 0 else None


def _doctype_refused(filename: str, line: int | None = None) -> UnsafeXML:
    where = f" (line {line})" if line else ""
    return UnsafeXML(f"{filename}{where}: DOCTYPE declarations are not allowed", filename, line)


def parse_xml(content: bytes | str, filename: str = "<string>") -> etree._Element:
    """Parse ``content`` safely and return the root element.

    Raises :class:`UnsafeXML` naming ``filename`` for a document with a DOCTYPE (internal
    or external DTD) and, with the line number, for malformed XML.
    """
    if isinstance(content, str):
        # lxml refuses str input that carries an encoding declaration; the text is already
        # decoded, so encode it as UTF-8 and make the declaration say so.
        data = _ENCODING_DECL.sub(r"\1\2UTF-8\2", content, count=1).encode("utf-8")
    elif isinstance(content, (bytes, bytearray)):
        data = bytes(content)
    else:
        raise TypeError(f"XML content must be bytes or str, not {type(content).__name__}")

    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        if _mentions_doctype(data):
            # A broken or hostile DTD: say what is refused rather than why it broke.
            raise _doctype_refused(filename, _doctype_line(data)) from None
        line = exc.lineno or None
        where = f", line {line}" if line else ""
        message = exc.msg or str(exc)
        raise UnsafeXML(f"{filename}{where}: malformed XML: {message}", filename, line) from None
    if root is None:  # lxml may return None for some empty documents
        raise UnsafeXML(f"{filename}: the document is empty", filename)

    # The parser neither expanded entities nor loaded anything, so it is safe to look at
    # the parsed prolog.  (A "<!DOCTYPE" inside CDATA or a comment is just text: accepted.)
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None \
            or docinfo.system_url or docinfo.public_id:
        raise _doctype_refused(filename, _doctype_line(data))
    return root
