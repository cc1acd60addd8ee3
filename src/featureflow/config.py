"""Validate a workflow config against the JSON schema, fill defaults, report errors in one line.

Example::

    cfg = validate_config(yaml.safe_load(open("config.yaml")), "workflow/schemas/config.schema.yaml")
"""

from __future__ import annotations

import copy
import glob
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# The schema of this checkout (the package is used from the repository: `pip install -e .`).
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config problem, worded as one line that names the key, file or value at fault."""


class CorpusError(ValueError):
    """Bad corpus content (encoding, emptiness), worded as one line naming the file."""


# A schema key's `x-architectures`: the values of its block's `architecture` it belongs to. Such a key
# gets its default only under those, and set under another it is an error.
ARCHITECTURE_KEYWORD = "x-architectures"


def _chosen_architecture(properties: dict[str, Any], instance: dict[str, Any]) -> Any:
    """The block's `architecture` (its default when not set; None in blocks without one)."""
    spec = properties.get("architecture")
    if not isinstance(spec, dict):
        return None
    return instance.get("architecture", spec.get("default"))


def _with_defaults(validator_class: type) -> type:
    """Extend a jsonschema validator so that validating also fills in `default` values."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # noqa: ANN001 - jsonschema hook
        if isinstance(instance, dict):
            chosen = _chosen_architecture(properties, instance)
            for key, subschema in properties.items():
                owners = subschema.get(ARCHITECTURE_KEYWORD)
                if owners is not None and chosen not in owners:
                    if key in instance:  # a key of another architecture: refused, never silently ignored
                        yield jsonschema.ValidationError(f"applies to architecture {' / '.join(owners)} only, not to "
                                                         f"'{chosen}' (the block's architecture)", path=[key])
                    continue
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultingValidator = _with_defaults(jsonschema.Draft7Validator)


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _branch_error(error: jsonschema.ValidationError) -> jsonschema.ValidationError | None:
    """Of an anyOf/oneOf failure, the error inside the one branch of the instance's type (e.g. the object
    form of a list entry), so that the line names the key at fault; None when no single branch is it."""
    kind = {dict: "object", str: "string", list: "array"}.get(type(error.instance))
    branches = {i for i, b in enumerate(error.validator_value) if isinstance(b, dict) and b.get("type") == kind}
    inner = [e for e in error.context if e.relative_schema_path and e.relative_schema_path[0] in branches]
    return min(inner, key=lambda e: len(e.relative_schema_path)) if len(branches) == 1 and inner else None


def _one_line(error: jsonschema.ValidationError) -> str:
    """Word a schema violation as a single line naming the key and the offending value."""
    key = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = f"{key}." if error.absolute_path else ""
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown config key '{where}{extra[0]}'{hint}"
    if error.validator == "required":
        return f"config key '{key}' is missing {error.message.split(' is a required')[0]}"
    if error.validator in ("anyOf", "oneOf") and (inner := _branch_error(error)) is not None:
        return _one_line(inner)
    if error.validator in ("anyOf", "oneOf"):
        return f"config key '{key}': {error.instance!r} is not valid; expected {error.schema.get('description', 'one of the allowed forms')}"
    return f"config key '{key}': {error.message}"


def load_schema(schema_path: str | Path) -> dict[str, Any]:
    """The config schema as a mapping. Every Snakemake process loads it (two per job on SLURM), so the
    C parser is used where PyYAML has one: a tenth of the pure-Python parser's 0.2 s."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(schema_path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)  # noqa: S506 (a safe loader)


def architecture_defaults(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The `sae` keys of SAE architecture `name` with their schema defaults (featureflow.sae.architectures)."""
    keys = schema["properties"]["sae"]["properties"]
    return {k: copy.deepcopy(v["default"]) for k, v in keys.items() if name in v.get(ARCHITECTURE_KEYWORD, ()) and "default" in v}


def validate_config(config: dict[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """Return a validated deep copy of `config` with schema defaults filled in.

    Raises ConfigError with a one-line message for the first problem found.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"config must be a mapping, got {type(config).__name__}")
    resolved = copy.deepcopy(config)
    validator = _DefaultingValidator(load_schema(schema_path))
    errors = sorted(validator.iter_errors(resolved), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise ConfigError(_one_line(jsonschema.exceptions.best_match(errors) if len(errors) > 1 else errors[0]))
    return resolved


def resolve_local_files(name: str, patterns: list[str] | tuple[str, ...], workdir: str | Path = ".") -> list[Path]:
    """Expand the `files` patterns of local corpus `name`; every pattern must match non-empty files."""
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(Path(workdir) / pattern), recursive=True))
        if not matches:
            raise ConfigError(f"corpus '{name}': file '{pattern}' does not exist (config key 'corpora.{name}.files')")
        for m in matches:
            p = Path(m)
            if p.is_dir():
                raise ConfigError(f"corpus '{name}': '{m}' is a directory, not a text file")
            if p.stat().st_size == 0:
                raise ConfigError(f"corpus '{name}': file '{m}' is empty")
            paths.append(p)
    return paths


# `datasets` builders that read files (local or remote); any other `path` is a hub dataset id.
FILE_BUILDERS = frozenset({"json", "parquet", "text", "csv", "arrow"})


def is_hub_dataset(dspec: dict[str, Any] | None) -> bool:
    """Whether a `dataset` spec reads from the Hugging Face hub (a dataset id, or files under hf://)."""
    if not dspec:
        return False
    if dspec["path"] not in FILE_BUILDERS:
        return True
    files = dspec.get("data_files") or []
    return any(str(f).startswith("hf://") for f in ([files] if isinstance(files, str) else files))
