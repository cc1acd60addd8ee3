"""Typed input records: the files a stage reads, by role, crossing the rule -> script boundary.

A rule's ``input:`` is flat (Snakemake named inputs, each a file or a list of files); a stage
function wants files by role and by model or edge. `LineageFiles` is both sides of that boundary:
the plan builds one, the rule declares ``input: **files.as_input()`` and ``params: layout=files.layout()``,
and the script gets the same record back with `featureflow.stage.lineage_files(snakemake)`::

    files = LineageFiles(models=("a", "b"), sample="s.npz", stats={"a": "a.npz", "b": "b.npz"})
    files.as_input()  # {"sample": "s.npz", "stats": ["a.npz", "b.npz"]}
    files.layout()    # {"models": ["a", "b"], "edges": []}

so no script decodes roles from input names, and a swapped pair of files cannot type-check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from featureflow.criteria import CRITERIA

PER_MODEL = ("stats", "acts", "tables", "interp", "weights", "sae_weights")
PER_EDGE = ("corr", "null")
SINGLE = ("sample", "tokenizer", "edges", "counts", "estimate")


def folder_of(path: str) -> str:
    """The folder holding `path` (a model, SAE or tokenizer folder is given by one of its files,
    since Snakemake tracks files, not folders)."""
    return str(Path(path).parent)


@dataclass(frozen=True)
class LineageFiles:
    """Files of the feature-level stages (analysis, interp), by role.

    Per model (model -> file): `stats` (features.npz), `acts` (activations), `tables` (features.csv),
    `interp` (explanations; empty when autointerp is off), `weights` and `sae_weights` (the weights
    file of the model's and of its SAE's folder: `folder_of` gives the folder).
    Per edge (edge name -> file): `corr`, and where the controls run, `null` (the shuffle null); per
    other matching criterion, `criteria` (criterion -> edge -> file; featureflow.criteria), whose named
    inputs are the criteria's names. Shared: the common `sample`, the `tokenizer` meta file
    (its folder is the tokenizer), `edges` and `counts` (classes at the threshold), the interp `estimate`.
    """

    models: tuple[str, ...] = ()
    edge_names: tuple[str, ...] = ()
    stats: Mapping[str, str] = field(default_factory=dict)
    acts: Mapping[str, str] = field(default_factory=dict)
    tables: Mapping[str, str] = field(default_factory=dict)
    interp: Mapping[str, str] = field(default_factory=dict)
    weights: Mapping[str, str] = field(default_factory=dict)
    sae_weights: Mapping[str, str] = field(default_factory=dict)
    corr: Mapping[str, str] = field(default_factory=dict)
    null: Mapping[str, str] = field(default_factory=dict)
    criteria: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    sample: str | None = None
    tokenizer: str | None = None
    edges: str | None = None
    counts: str | None = None
    estimate: str | None = None

    def __post_init__(self) -> None:
        for role in PER_MODEL:
            extra = set(getattr(self, role)) - set(self.models)
            if extra:
                raise ValueError(f"LineageFiles.{role}: {sorted(extra)} are not among the models {list(self.models)}")
        unknown = sorted(set(self.criteria) - set(CRITERIA))
        if unknown:
            raise ValueError(f"LineageFiles.criteria: {unknown} are not matching criteria (known: {', '.join(CRITERIA)})")
        for role, files in self._per_edge():
            extra = set(files) - set(self.edge_names)
            if extra:
                raise ValueError(f"LineageFiles.{role}: {sorted(extra)} are not among the edges")

    def _per_edge(self) -> list[tuple[str, Mapping[str, str]]]:
        """(role, edge -> file) of every per-edge role, the criteria's under their names."""
        return [(r, getattr(self, r)) for r in PER_EDGE] + list(self.criteria.items())

    @property
    def tokenizer_dir(self) -> str:
        """The tokenizer's folder (the one holding the `tokenizer` meta file)."""
        if self.tokenizer is None:
            raise ValueError("LineageFiles: no tokenizer among the inputs")
        return folder_of(self.tokenizer)

    def as_input(self) -> dict[str, str | list[str]]:
        """Snakemake named inputs: one name per role, per-model and per-edge roles as lists in order."""
        out: dict[str, str | list[str]] = {}
        for role in SINGLE:
            if getattr(self, role) is not None:
                out[role] = getattr(self, role)
        roles = [(r, getattr(self, r), self.models) for r in PER_MODEL] + [(r, f, self.edge_names) for r, f in self._per_edge()]
        for role, files, keys in roles:
            if files:
                missing = [k for k in keys if k not in files]
                if missing:  # a role is given for every model (edge) or for none: lists must zip
                    raise ValueError(f"LineageFiles.{role}: no file for {missing}")
                out[role] = [files[k] for k in keys]
        return out

    def layout(self) -> dict[str, list[str]]:
        """What `from_input` needs besides the inputs: the models' and edges' order (a rule param)."""
        return {"models": list(self.models), "edges": list(self.edge_names)}

    @classmethod
    def from_input(cls, named: Mapping[str, Any], layout: Mapping[str, list[str]]) -> LineageFiles:
        """The record back from a job's named inputs (`as_input`) and its `layout`."""
        models, edges = tuple(layout["models"]), tuple(layout["edges"])
        known = {f.name for f in fields(cls)} - {"criteria"} | set(CRITERIA)
        unknown = sorted(set(named) - known)
        if unknown:
            raise ValueError(f"LineageFiles: unknown input roles {unknown}")
        kw: dict[str, Any] = {r: str(named[r]) for r in SINGLE if r in named}
        by_key = {}
        for role, keys in [(r, models) for r in PER_MODEL] + [(r, edges) for r in (*PER_EDGE, *CRITERIA)]:
            if role in named:
                files = [str(f) for f in named[role]]
                if len(files) != len(keys):
                    raise ValueError(f"LineageFiles.{role}: {len(files)} files for {len(keys)} entries {list(keys)}")
                by_key[role] = dict(zip(keys, files, strict=True))
        criteria = {c: by_key.pop(c) for c in CRITERIA if c in by_key}
        return cls(models=models, edge_names=edges, **kw, **by_key, criteria=criteria)
