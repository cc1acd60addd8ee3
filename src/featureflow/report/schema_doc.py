"""The docs site's configuration reference (docs/configuration.md), generated from the config schema.

    python -m featureflow.report.schema_doc docs/configuration.md           # rewrite the reference in place
    python -m featureflow.report.schema_doc docs/configuration.md --check   # exit 1 when it differs (tests)

The reference sits between two marker lines in the page; everything else is left alone. Each
top-level block of the schema becomes a table of its keys (dotted path, type, default, meaning).
Sibling objects with the same keys (the job classes under ``resources``) share one row per key,
with each sibling's default.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from featureflow.config import SCHEMA_PATH, load_schema

START = "<!-- config-reference:start: generated from workflow/schemas/config.schema.yaml by " \
        "`python -m featureflow.report.schema_doc docs/configuration.md`; edit the schema, not this table -->"
END = "<!-- config-reference:end -->"


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _value(v: Any) -> str:
    if isinstance(v, str):
        return f"`{v!r}`" if not v.isprintable() or v == "" else f"`{v}`"
    return f"`{json.dumps(v, separators=(', ', ': '))}`"


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " | ".join(_value(e) for e in node["enum"])
    if "anyOf" in node:
        return " or ".join(_type(n) for n in node["anyOf"])
    types = node.get("type", "any")
    text = " or ".join(types) if isinstance(types, list) else types
    lo = node.get("minimum", node.get("exclusiveMinimum"))
    hi = node.get("maximum", node.get("exclusiveMaximum"))
    if lo is not None and hi is not None:
        text += f" in {'(' if 'exclusiveMinimum' in node else '['}{lo:g}, {hi:g}{')' if 'exclusiveMaximum' in node else ']'}"
    elif lo is not None:
        text += f" {'>' if 'exclusiveMinimum' in node else '≥'} {lo:g}"
    return text


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _leaf_rows(path: str, node: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) rows of `node` and everything below it."""
    node = _resolve(node, schema)
    props = node.get("properties")
    if props:
        children = {k: _resolve(v, schema) for k, v in props.items()}
        shapes = {tuple(c.get("properties", {})) for c in children.values()}
        if len(children) > 2 and len(shapes) == 1 and next(iter(shapes)):  # sibling objects with the same keys
            return _sibling_rows(path, children, schema)
        rows = []
        for k, v in children.items():
            rows += _leaf_rows(f"{path}.{k}" if path else k, v, schema)
        return rows
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("properties") and "default" not in node:
        return _leaf_rows(f"{path}.<name>", extra, schema)
    default = _value(node["default"]) if "default" in node else "–"
    return [(f"`{path}`", _type(node), default, node.get("description", ""))]


def _sibling_rows(path: str, children: dict[str, dict[str, Any]], schema: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = [(f"`{path}.{name}`", "object", "", child.get("description", "")) for name, child in children.items()]
    for key in next(iter(children.values()))["properties"]:
        leaves = {name: _resolve(c["properties"][key], schema) for name, c in children.items()}
        defaults = {name: _value(x.get("default")) for name, x in leaves.items()}
        default = next(iter(defaults.values())) if len(set(defaults.values())) == 1 else \
            ", ".join(f"{name} {d}" for name, d in defaults.items())
        meaning = Counter(x.get("description", "") for x in leaves.values()).most_common(1)[0][0]
        rows.append((f"`{path}.<class>.{key}`", _type(next(iter(leaves.values()))), default, meaning))
    return rows


def config_reference(schema_path: str | Path = SCHEMA_PATH) -> str:
    """The reference as Markdown: a table per top-level block (a section of the page each), between the markers."""
    schema = load_schema(schema_path)
    out, top = [START, ""], []
    for key, node in schema["properties"].items():
        node = _resolve(node, schema)
        if node.get("type") == "object":
            out += [f"## `{key}`", "", _cell(node.get("description", "")), "", "| key | type | default | meaning |",
                    "|---|---|---|---|"]
            out += [f"| {k} | {_cell(t)} | {_cell(d)} | {_cell(m)} |" for k, t, d, m in _leaf_rows(key, node, schema)]
            out.append("")
        else:
            top += _leaf_rows(key, node, schema)
    head = ["## Top level", "", "| key | type | default | meaning |", "|---|---|---|---|"]
    head += [f"| {k} | {_cell(t)} | {_cell(d)} | {_cell(m)} |" for k, t, d, m in top]
    return "\n".join([out[0], "", *head, "", *out[2:], END])


def replace_between(text: str, start: str, end: str, new: str) -> str:
    """`text` with everything from the line starting `start` to the `end` marker replaced by `new`."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < 0:
        raise ValueError(f"the page has no {start} ... {end} markers")
    return text[:i] + new + text[j + len(end):]


def replace_reference(page: str, reference: str) -> str:
    """`page` with the text between the config-reference markers replaced by `reference`."""
    return replace_between(page, "<!-- config-reference:start", END, reference)


def main(argv: list[str]) -> int:
    page = Path(argv[0])
    text = page.read_text()
    new = replace_reference(text, config_reference())
    if "--check" in argv:
        if new != text:
            print(f"{page}: the config reference is out of date; run python -m featureflow.report.schema_doc {page}")
            return 1
        return 0
    page.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
