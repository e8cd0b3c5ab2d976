"""What changed between two bundles, as data a person can read (and a page can render).

`diff_versions(files_a, files_b)` returns
```
{"files": {"added": [...], "removed": [...], "changed": [...]},
 "elements": {"added": [el], "removed": [el], "changed": [el + "changes"]},   # BPMN flow nodes
 "flows": {"added": [flow], "removed": [flow], "changed": [flow + "changes"]},
 "decisions": {"added": [...], "removed": [...], "changed": [{"decision", "file", "rules": {...},
               "inputs": {...}, "outputs": {...}}]},
 "forms": {"added": [...], "removed": [...], "changed": [{"form", "fields": {...}, "changes": [...]}]},
 "letters": {"added": [...], "removed": [...], "changed": [{"letter", "diff": [unified diff lines]}]}}
```
where `el` is {"process", "id", "name", "type", "file"}, every "changes" is a list of
{"attribute", "before", "after"}, and "fields" lists form fields by path (`actions[]/due`).
`diff_lines(diff)` renders it as text, one change a line.
"""
from __future__ import annotations

import difflib
import json
from typing import Any

from ..safexml import UnsafeXML, parse_xml
from .bpmnmodel import Diagram, bpmn, local, read_diagram

FIELD_ATTRIBUTES = ("title", "type", "required", "enum", "format", "pattern", "minimum", "maximum",
                    "minLength", "maxLength", "minItems", "maxItems", "default", "const")


def diff_versions(files_a: dict[str, str], files_b: dict[str, str]) -> dict[str, Any]:
    names_a, names_b = set(files_a), set(files_b)
    return {
        "files": {"added": sorted(names_b - names_a), "removed": sorted(names_a - names_b),
                  "changed": sorted(n for n in names_a & names_b if files_a[n] != files_b[n])},
        **_bpmn_diff(files_a, files_b),
        "decisions": _decisions_diff(files_a, files_b),
        "forms": _forms_diff(files_a, files_b),
        "letters": _letters_diff(files_a, files_b),
    }


# ----- BPMN -------------------------------------------------------------------------------
def _diagrams(files: dict[str, str]) -> list[Diagram]:
    found = []
    for name, text in sorted(files.items()):
        if name.endswith(".bpmn"):
            try:
                found.append(read_diagram(parse_xml(text, name), name))
            except UnsafeXML:
                continue
    return found


def _element_facts(diagram: Diagram, node) -> dict[str, Any]:
    facts: dict[str, Any] = {"name": node.name, "type": node.kind, "lane": node.lane}
    for key, value in sorted(node.properties().items()):
        facts["form" if key == "formJsonSchemaFilename" else key] = value
    timer = node.timer()
    if timer:
        facts["timer"] = f"{timer[0]}: {timer[1]}"
    script = node.element.find(bpmn("script"))
    if script is not None:
        facts["script"] = (script.text or "").strip()
    for tag in ("preScript", "postScript", "calledDecisionId"):
        text = node.extension_text(tag)
        if text is not None:
            facts[tag] = text.strip()
    for attribute in ("calledElement", "cancelActivity", "attachedToRef"):
        if node.element.get(attribute) is not None:
            facts[attribute] = node.element.get(attribute)
    if node.default:
        facts["default flow"] = node.default
    if node.event_definitions:
        facts["events"] = ", ".join(node.event_definitions)
    for definition in node.element:
        if local(definition) == "messageEventDefinition" and definition.get("messageRef"):
            facts["message"] = definition.get("messageRef")
    loop = node.element.find(bpmn("multiInstanceLoopCharacteristics"))
    if loop is not None:
        collection = loop.find(bpmn("loopDataInputRef"))
        facts["multi-instance over"] = (collection.text or "").strip() if collection is not None else ""
    documentation = node.element.find(bpmn("documentation"))
    if documentation is not None:
        facts["documentation"] = (documentation.text or "").strip()
    return facts


def _changes(before: dict, after: dict, skip=()) -> list[dict[str, Any]]:
    return [{"attribute": key, "before": before.get(key), "after": after.get(key)}
            for key in sorted(set(before) | set(after), key=str)
            if key not in skip and before.get(key) != after.get(key)]


def _bpmn_diff(files_a, files_b) -> dict[str, Any]:
    def collect(files):
        elements, flows = {}, {}
        for diagram in _diagrams(files):
            for node in diagram.nodes.values():
                elements[(node.process, node.id)] = {"process": node.process, "id": node.id, "name": node.name,
                                                     "type": node.kind, "file": diagram.file,
                                                     "_facts": _element_facts(diagram, node)}
            for flow in diagram.flows.values():
                flows[(flow.process, flow.id)] = {"process": flow.process, "id": flow.id, "name": flow.name,
                                                  "file": diagram.file, "source": flow.source,
                                                  "target": flow.target, "condition": flow.condition}
        return elements, flows

    elements_a, flows_a = collect(files_a)
    elements_b, flows_b = collect(files_b)

    def public(item):
        return {k: v for k, v in item.items() if not k.startswith("_")}

    changed_elements = []
    for key in sorted(elements_a.keys() & elements_b.keys()):
        changes = _changes(elements_a[key]["_facts"], elements_b[key]["_facts"])
        if changes:
            changed_elements.append({**public(elements_b[key]), "changes": changes})
    changed_flows = []
    for key in sorted(flows_a.keys() & flows_b.keys()):
        changes = _changes(flows_a[key], flows_b[key], skip=("process", "id", "file"))
        if changes:
            changed_flows.append({**flows_b[key], "changes": changes})
    return {
        "elements": {"added": [public(elements_b[k]) for k in sorted(elements_b.keys() - elements_a.keys())],
                     "removed": [public(elements_a[k]) for k in sorted(elements_a.keys() - elements_b.keys())],
                     "changed": changed_elements},
        "flows": {"added": [flows_b[k] for k in sorted(flows_b.keys() - flows_a.keys())],
                  "removed": [flows_a[k] for k in sorted(flows_a.keys() - flows_b.keys())],
                  "changed": changed_flows},
    }


# ----- DMN --------------------------------------------------------------------------------
def _text_of(element) -> str:
    found = next((c for c in element if local(c) == "text"), None)
    return (found.text or "").strip() if found is not None else ""


def _decision_tables(files: dict[str, str]) -> dict[str, dict]:
    tables = {}
    for name, text in sorted(files.items()):
        if not name.endswith(".dmn"):
            continue
        try:
            root = parse_xml(text, name)
        except UnsafeXML:
            continue
        for decision in (e for e in root.iter() if isinstance(e.tag, str) and local(e) == "decision"):
            table = next((c for c in decision if local(c) == "decisionTable"), None)
            inputs, outputs, rules = {}, {}, {}
            if table is not None:
                input_ids = [c.get("id") for c in table if local(c) == "input"]
                output_names = [c.get("name") or c.get("id") for c in table if local(c) == "output"]
                for item in table:
                    kind = local(item)
                    if kind == "input":
                        expression = next((c for c in item if local(c) == "inputExpression"), None)
                        inputs[item.get("id")] = {"label": item.get("label"),
                                                  "expression": _text_of(expression) if expression is not None else ""}
                    elif kind == "output":
                        outputs[item.get("id")] = {"name": item.get("name"), "label": item.get("label")}
                    elif kind == "rule":
                        entries = [c for c in item if local(c) == "inputEntry"]
                        results = [c for c in item if local(c) == "outputEntry"]
                        description = next((c for c in item if local(c) == "description"), None)
                        cells = {f"when {i}": _text_of(e) for i, e in zip(input_ids, entries)}
                        cells.update({f"then {o}": _text_of(e) for o, e in zip(output_names, results)})
                        if description is not None:
                            cells["description"] = (description.text or "").strip()
                        rules[item.get("id")] = cells
                hit_policy = table.get("hitPolicy", "UNIQUE")
            else:
                hit_policy = None
            tables[decision.get("id")] = {"decision": decision.get("id"), "name": decision.get("name"), "file": name,
                                          "hit policy": hit_policy, "inputs": inputs, "outputs": outputs,
                                          "rules": rules}
    return tables


def _keyed_diff(before: dict, after: dict, *, key_name: str) -> dict[str, list]:
    return {
        "added": [{key_name: k, **after[k]} for k in sorted(after.keys() - before.keys())],
        "removed": [{key_name: k, **before[k]} for k in sorted(before.keys() - after.keys())],
        "changed": [{key_name: k, "changes": _changes(before[k], after[k])}
                    for k in sorted(before.keys() & after.keys()) if before[k] != after[k]],
    }


def _decisions_diff(files_a, files_b) -> dict[str, list]:
    a, b = _decision_tables(files_a), _decision_tables(files_b)
    changed = []
    for key in sorted(a.keys() & b.keys()):
        if a[key] == b[key]:
            continue
        changed.append({
            "decision": key, "name": b[key]["name"], "file": b[key]["file"],
            "changes": _changes({k: v for k, v in a[key].items() if k in ("name", "hit policy", "file")},
                                {k: v for k, v in b[key].items() if k in ("name", "hit policy", "file")}),
            "inputs": _keyed_diff(a[key]["inputs"], b[key]["inputs"], key_name="id"),
            "outputs": _keyed_diff(a[key]["outputs"], b[key]["outputs"], key_name="id"),
            "rules": _keyed_diff(a[key]["rules"], b[key]["rules"], key_name="id"),
        })
    summary = ("decision", "name", "file")
    return {"added": [{k: b[d][k] for k in summary} for d in sorted(b.keys() - a.keys())],
            "removed": [{k: a[d][k] for k in summary} for d in sorted(a.keys() - b.keys())],
            "changed": changed}


# ----- forms ------------------------------------------------------------------------------
def form_fields(schema: Any, prefix: str = "") -> dict[str, dict]:
    """Every field of a form by path: its title, type, whether required, options and limits."""
    fields: dict[str, dict] = {}
    if not isinstance(schema, dict):
        return fields
    required = set(schema.get("required") or [])
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        path = f"{prefix}{name}"
        facts = {key: prop[key] for key in FIELD_ATTRIBUTES if key in prop}
        facts["required"] = name in required
        items = prop.get("items") if isinstance(prop.get("items"), dict) else None
        if items is not None and "enum" in items:
            facts["enum"] = items["enum"]
        fields[path] = facts
        if prop.get("type") == "object" or "properties" in prop:
            fields.update(form_fields(prop, f"{path}/"))
        if items is not None and (items.get("type") == "object" or "properties" in items):
            fields.update(form_fields(items, f"{path}[]/"))
    return fields


def _forms_diff(files_a, files_b) -> dict[str, list]:
    def forms(files):
        found = {}
        for name, text in files.items():
            if name.startswith("forms/") and name.endswith(".json"):
                try:
                    found[name] = json.loads(text)
                except ValueError:
                    found[name] = None
        return found

    a, b = forms(files_a), forms(files_b)
    changed = []
    for name in sorted(a.keys() & b.keys()):
        if a[name] == b[name]:
            continue
        fields = _keyed_diff(form_fields(a[name]), form_fields(b[name]), key_name="field")
        top = ("title", "description")
        changes = _changes({k: (a[name] or {}).get(k) for k in top}, {k: (b[name] or {}).get(k) for k in top})
        if a[name] is not None and b[name] is not None and not any(fields.values()) and not changes:
            changes = [{"attribute": "schema (conditions, hints or texts)", "before": None, "after": None}]
        changed.append({"form": name, "title": (b[name] or {}).get("title"), "changes": changes, "fields": fields})
    return {"added": sorted(b.keys() - a.keys()), "removed": sorted(a.keys() - b.keys()), "changed": changed}


# ----- letters ----------------------------------------------------------------------------
def _letters_diff(files_a, files_b) -> dict[str, list]:
    def letters(files):
        return {n: t for n, t in files.items() if n.startswith("processes/letters/")}

    a, b = letters(files_a), letters(files_b)
    changed = [{"letter": name, "diff": list(difflib.unified_diff(a[name].splitlines(), b[name].splitlines(),
                                                                  fromfile=f"{name} (before)",
                                                                  tofile=f"{name} (after)", lineterm=""))}
               for name in sorted(a.keys() & b.keys()) if a[name] != b[name]]
    return {"added": sorted(b.keys() - a.keys()), "removed": sorted(a.keys() - b.keys()), "changed": changed}


# ----- as text ----------------------------------------------------------------------------
def diff_lines(diff: dict[str, Any]) -> list[str]:
    lines: list[str] = []

    def element(item):
        label = f" “{item['name']}”" if item.get("name") else ""
        return f"{item.get('type', 'flow')} {item['id']}{label} in {item['process']}"

    def changes(items):
        return "; ".join(f"{c['attribute']}: {c['before']!r} → {c['after']!r}" for c in items)

    for kind in ("added", "removed", "changed"):
        for name in diff["files"][kind]:
            lines.append(f"file {kind}: {name}")
    for kind in ("added", "removed"):
        for item in diff["elements"][kind]:
            lines.append(f"{kind}: {element(item)}")
        for item in diff["flows"][kind]:
            lines.append(f"flow {kind}: {item['id']} {item['source']} → {item['target']} in {item['process']}")
    for item in diff["elements"]["changed"]:
        lines.append(f"changed: {element(item)}: {changes(item['changes'])}")
    for item in diff["flows"]["changed"]:
        lines.append(f"flow changed: {item['id']} in {item['process']}: {changes(item['changes'])}")
    for kind in ("added", "removed"):
        for item in diff["decisions"][kind]:
            lines.append(f"decision {kind}: {item['decision']}")
    for item in diff["decisions"]["changed"]:
        for part in ("inputs", "outputs", "rules"):
            for kind in ("added", "removed"):
                for entry in item[part][kind]:
                    lines.append(f"decision {item['decision']}: {part[:-1]} {kind}: {entry['id']}")
            for entry in item[part]["changed"]:
                lines.append(f"decision {item['decision']}: {part[:-1]} changed: {entry['id']}: "
                             f"{changes(entry['changes'])}")
    for kind in ("added", "removed"):
        for name in diff["forms"][kind]:
            lines.append(f"form {kind}: {name}")
    for item in diff["forms"]["changed"]:
        for kind in ("added", "removed"):
            for entry in item["fields"][kind]:
                lines.append(f"form {item['form']}: field {kind}: {entry['field']}")
        for entry in item["fields"]["changed"]:
            lines.append(f"form {item['form']}: field changed: {entry['field']}: {changes(entry['changes'])}")
        if item["changes"]:
            lines.append(f"form {item['form']}: {changes(item['changes'])}")
    for kind in ("added", "removed"):
        for name in diff["letters"][kind]:
            lines.append(f"letter {kind}: {name}")
    for item in diff["letters"]["changed"]:
        lines.extend(item["diff"])
    return lines


__all__ = ["diff_lines", "diff_versions", "form_fields"]
