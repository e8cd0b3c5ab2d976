"""Hardened XML parsing: entity attacks and DTDs are refused, plain BPMN is accepted."""
from __future__ import annotations

import pytest

from engine.safexml import UnsafeXML, parse_xml

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment is fine -->
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:scriptTask id="s"><bpmn:script><![CDATA[x = "<!DOCTYPE is just text here>"]]></bpmn:script></bpmn:scriptTask>
  </bpmn:process>
</bpmn:definitions>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<foo>&xxe;</foo>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE definitions SYSTEM "http://example.invalid/evil.dtd">
<definitions/>"""

PARAMETER_ENTITY = b"""<!DOCTYPE foo [<!ENTITY % p SYSTEM "http://example.invalid/x"> %p;]><foo/>"""


def test_plain_bpmn_accepted():
    root = parse_xml(BPMN, "ok.bpmn")
    assert root.tag == "{http://www.omg.org/spec/BPMN/20100524/MODEL}definitions"
    assert root.find(".//{*}script").text == 'x = "<!DOCTYPE is just text here>"'
    # bytes work too, and the tree is usable by SpiffWorkflow's parser
    from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

    parser = SpiffBpmnParser()
    parser.add_bpmn_xml(parse_xml(BPMN.encode("utf-8"), "ok.bpmn"), filename="ok.bpmn")
    assert parser.get_spec("p").name == "p"


def test_str_with_other_encoding_declaration():
    root = parse_xml('<?xml version="1.0" encoding="ISO-8859-1"?><a>café</a>', "latin.bpmn")
    assert root.text == "café"


@pytest.mark.parametrize("document", [XXE, BILLION_LAUGHS, EXTERNAL_DTD, PARAMETER_ENTITY,
                                      b"<!DOCTYPE a><a/>"],
                         ids=["xxe", "billion-laughs", "external-dtd", "parameter-entity", "bare-doctype"])
def test_doctype_refused(document):
    with pytest.raises(UnsafeXML) as info:
        parse_xml(document, "evil.bpmn")
    message = str(info.value)
    assert "evil.bpmn" in message
    assert "DOCTYPE declarations are not allowed" in message
    assert info.value.filename == "evil.bpmn"
    assert "root:" not in message  # nothing from /etc/passwd leaked into the message


def test_doctype_refused_in_utf16():
    with pytest.raises(UnsafeXML, match="DOCTYPE"):
        parse_xml(XXE.decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
                  .encode("utf-16"), "utf16.bpmn")


def test_doctype_refused_as_str():
    with pytest.raises(UnsafeXML, match="DOCTYPE"):
        parse_xml(XXE.decode(), "text.bpmn")


@pytest.mark.parametrize("document, line", [
    (b"<a>\n<b>\n</a>", 3),
    (b"<a></b>", 1),
    (b"", 1),
    (b"not xml", 1),
])
def test_malformed_refused_with_file_and_line(document, line):
    with pytest.raises(UnsafeXML) as info:
        parse_xml(document, "broken.dmn")
    assert isinstance(info.value, ValueError)
    assert info.value.line == line
    assert str(info.value).startswith(f"broken.dmn, line {line}: malformed XML")


def test_wrong_type():
    with pytest.raises(TypeError):
        parse_xml(None)  # type: ignore[arg-type]
