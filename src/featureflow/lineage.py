"""The model lineage declared in config: nodes, derived edges, and the checks that guard them.

A model is one of four kinds:
- ``scratch``: ``train_on`` without ``parent`` (the paper's BabyPython),
- ``finetune``: ``train_on`` with a ``parent`` (Lua, TinyStories),
- ``merge``: ``merge: [a, b]`` of two other models (LuaStories),
- ``pretrained``: ``pretrained: <hub id or folder>``, used as it is; ``parent`` (one model, or two
  for a published merge) places it in the lineage without training it, ``data`` names the corpora
  it saw (its SAE's data).

Edges are derived here and nowhere else: parent -> child for every fine-tune (and pretrained
model with one parent) and input -> merged model for both inputs of every merge (and pretrained
model with two parents). A trained model with ``control_of`` is a
model seed control: trained like the model it names but from its own ``seed``, it is left out of
the lineage's edges and gets one control edge, original -> control.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from featureflow.config import ConfigError

ModelKind = Literal["scratch", "finetune", "merge", "pretrained"]
EDGE_SEP = "__"
# Model and corpus names become folder names and Snakemake wildcard values; an edge name joins two
# model names with "__", so a name may not hold "__" or end in "_" (either would make it ambiguous).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
PRETRAINED_KEYS = ("pretrained", "revision", "data")


@dataclass(frozen=True)
class Pretrained:
    """Where a pretrained model or SAE comes from: a hub repository (at `revision`) or a local folder,
    and for an SAE the subfolder `path` inside it and its file `format` (featureflow.sae.formats;
    "auto": detected from the files)."""

    source: str
    revision: str | None = None
    path: str | None = None
    format: str | None = None  # None or "auto": detected from the files

    def local_folder(self, workdir: str | Path) -> Path | None:
        """The local folder `source` names (a path starting with '.', '/' or '~', an existing folder under
        `workdir`, or anything that is not owner/name), with `path` below it; None for a hub id."""
        path = Path(self.source).expanduser()
        if self.source.startswith((".", "/", "~")) or (Path(workdir) / path).is_dir() or not HUB_ID_PATTERN.match(self.source):
            return Path(workdir) / path / (self.path or "")
        return None


def check_name(key: str, name: str) -> None:
    """Refuse a model or corpus name that cannot be a folder, a wildcard value and half an edge name."""
    if not NAME_PATTERN.match(name) or EDGE_SEP in name or name.endswith("_"):
        raise ConfigError(f"config key '{key}': name {name!r} is not allowed; use letters, digits, '-' and single '_' "
                          f"(not at the end): '{EDGE_SEP}' joins the two models of an edge name")


def edge_name(source: str, target: str) -> str:
    """The name of the edge source -> target in file names: `source__target`."""
    return f"{source}{EDGE_SEP}{target}"


def parse_edge_name(name: str) -> tuple[str, str]:
    """(source, target) of an edge name made by `edge_name`."""
    source, sep, target = name.partition(EDGE_SEP)
    if not sep or not source or not target or EDGE_SEP in target:
        raise ValueError(f"{name!r} is not an edge name (source{EDGE_SEP}target)")
    return source, target


@dataclass(frozen=True)
class Model:
    name: str
    kind: ModelKind
    train_on: tuple[str, ...] = ()
    parent: str | None = None
    merge: tuple[str, ...] = ()
    mix: str | None = None  # trained models: `even` or `concat` (the schema default); merged: None
    method: str | None = None
    t: float | str | None = None
    seed: int | None = None  # trained models: their own training seed (None: the global seed)
    control_of: str | None = None  # a model seed control: the model it repeats with another seed
    pretrained: Pretrained | None = None  # pretrained models: where the checkpoint comes from
    parents: tuple[str, ...] = ()  # pretrained models: the models it is placed after (no training)
    data: tuple[str, ...] = ()  # pretrained models: corpora it saw (its SAE's data)
    sae: Pretrained | None = None  # an SAE imported instead of trained (any kind of model)

    @property
    def corpora(self) -> tuple[str, ...]:
        """Corpora this model itself saw: what it trains on, or a pretrained model's `data`."""
        return self.train_on or self.data


@dataclass(frozen=True)
class Edge:
    source: str  # parent or merge input (or the original of a seed control)
    target: str  # child or merged model (or the seed control)
    kind: Literal["finetune", "merge", "control"]

    @property
    def name(self) -> str:
        return edge_name(self.source, self.target)


@dataclass
class Lineage:
    models: dict[str, Model]
    order: list[str] = field(default_factory=list)  # topological: inputs before the models built from them

    def inputs_of(self, name: str) -> tuple[str, ...]:
        """Models that `name` is built from (its parent, or both merge inputs)."""
        m = self.models[name]
        if m.kind == "pretrained":
            return m.parents
        return m.merge if m.kind == "merge" else ((m.parent,) if m.parent else ())

    @property
    def edges(self) -> list[Edge]:
        """The lineage's edges (seed controls left out), inputs before outputs."""
        out = []
        for name in self.order:
            m = self.models[name]
            if m.control_of:
                continue
            kind = "merge" if m.kind == "merge" or len(m.parents) == 2 else "finetune"
            out.extend(Edge(src, name, kind) for src in self.inputs_of(name))
        return out

    @property
    def control_edges(self) -> list[Edge]:
        """original -> control of every model seed control."""
        return [Edge(self.models[n].control_of, n, "control") for n in self.order if self.models[n].control_of]

    @property
    def roots(self) -> list[str]:
        """Models built from no other model: trained from scratch, or pretrained without a parent
        (seed controls left out)."""
        return [n for n in self.order if not self.inputs_of(n) and not self.models[n].control_of]

    @property
    def trained(self) -> list[str]:
        """Models this workflow trains (from scratch or fine-tuned)."""
        return [n for n in self.order if self.models[n].kind in ("scratch", "finetune")]

    @property
    def pretrained(self) -> list[str]:
        """Models used as they are, from the hub or a local folder."""
        return [n for n in self.order if self.models[n].kind == "pretrained"]

    @property
    def imported_saes(self) -> list[str]:
        """Models whose SAE is imported (`sae: {pretrained: ...}`) rather than trained."""
        return [n for n in self.order if self.models[n].sae is not None]

    @property
    def merged(self) -> list[str]:
        return [n for n in self.order if self.models[n].kind == "merge"]

    def ancestors(self, name: str) -> list[str]:
        """All models upstream of `name`, nearest first, without repeats."""
        seen: list[str] = []
        frontier = list(self.inputs_of(name))
        while frontier:
            cur = frontier.pop(0)
            if cur not in seen:
                seen.append(cur)
                frontier.extend(self.inputs_of(cur))
        return seen

    def lineage_corpora(self, name: str) -> list[str]:
        """Corpora a model has seen through its own training and its ancestors' (SAE data, paper fn. 5)."""
        corpora: list[str] = []
        for n in [name, *self.ancestors(name)]:
            corpora.extend(c for c in self.models[n].corpora if c not in corpora)
        return corpora

    def common_ancestor(self, a: str, b: str) -> str | None:
        """Nearest model upstream of both `a` and `b` (TIES needs it as the base)."""
        up_b = set([b, *self.ancestors(b)])
        return next((n for n in [a, *self.ancestors(a)] if n in up_b), None)


def _pretrained_from(spec: dict[str, Any] | None) -> Pretrained | None:
    if spec is None:
        return None
    return Pretrained(str(spec["pretrained"]), spec.get("revision"), spec.get("path"), spec.get("format"))


def _check_known(where: str, corpora_list: list[str], corpora: set[str]) -> None:
    for corpus in corpora_list:
        if corpus not in corpora:
            raise ConfigError(f"config key '{where}': '{corpus}' is not a corpus (known: {', '.join(sorted(corpora))})")


def _pretrained_model(name: str, spec: dict[str, Any], corpora: set[str]) -> Model:
    where = f"models.{name}"
    for key in ("train_on", "merge", "method", "t", "seed", "control_of"):
        if key in spec:
            raise ConfigError(f"config key '{where}.{key}': a pretrained model is used as it is (no training, no merge); "
                              f"drop '{key}', or drop 'pretrained' to train it")
    if spec.get("mix", "even") != "even":
        raise ConfigError(f"config key '{where}.mix' is not allowed on a pretrained model")
    parent = spec.get("parent")
    parents = tuple(parent) if isinstance(parent, list) else ((parent,) if parent else ())
    if len(parents) > 2 or len(set(parents)) != len(parents):
        raise ConfigError(f"config key '{where}.parent': {parent!r}; give one model (a fine-tune) or two different "
                          "models (a merge)")
    _check_known(f"{where}.data", spec.get("data", []), corpora)
    source = _pretrained_from(spec)
    assert source is not None
    return Model(name, "pretrained", pretrained=source, parents=parents, data=tuple(spec.get("data", [])),
                 sae=_pretrained_from(spec.get("sae")))


def _model_from_spec(name: str, spec: dict[str, Any], corpora: set[str]) -> Model:
    where = f"models.{name}"
    if "pretrained" in spec:
        return _pretrained_model(name, spec, corpora)
    for key in PRETRAINED_KEYS:
        if key in spec:
            raise ConfigError(f"config key '{where}.{key}' only applies to pretrained models (models with 'pretrained')")
    if isinstance(spec.get("parent"), list):
        raise ConfigError(f"config key '{where}.parent': a fine-tune has one parent (two parents: a 'merge', "
                          "or a pretrained model)")
    has_train, has_merge = "train_on" in spec, "merge" in spec
    if has_train == has_merge:
        raise ConfigError(f"config key '{where}' needs exactly one of 'train_on', 'merge' or 'pretrained'")
    sae = _pretrained_from(spec.get("sae"))
    if has_merge:
        for key in ("seed", "control_of"):
            if key in spec:
                raise ConfigError(f"config key '{where}.{key}' only applies to trained models (models with 'train_on')")
        for key in ("parent", "mix"):
            if key in spec and not (key == "mix" and spec[key] == "even"):
                raise ConfigError(f"config key '{where}.{key}' is not allowed on a merged model")
        inputs = tuple(spec["merge"])
        if inputs[0] == inputs[1]:
            raise ConfigError(f"config key '{where}.merge' lists '{inputs[0]}' twice; a merge needs two different models")
        return Model(name, "merge", merge=inputs, method=spec["method"], t=spec["t"], sae=sae)  # defaults: the schema's

    for key in ("method", "t"):
        if key in spec:
            raise ConfigError(f"config key '{where}.{key}' only applies to merged models (models with 'merge')")
    _check_known(f"{where}.train_on", spec["train_on"], corpora)
    kind: ModelKind = "finetune" if "parent" in spec else "scratch"
    return Model(name, kind, train_on=tuple(spec["train_on"]), parent=spec.get("parent"), mix=spec["mix"],
                 seed=spec.get("seed"), control_of=spec.get("control_of"), sae=sae)


def _topological_order(models: dict[str, Model], lineage: Lineage) -> list[str]:
    order: list[str] = []
    state: dict[str, str] = {}  # name -> "visiting" | "done"

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name):] + [name]
            raise ConfigError(f"config key 'models' has a cycle in the lineage: {' -> '.join(cycle)}")
        state[name] = "visiting"
        for dep in lineage.inputs_of(name):
            visit(dep, path + [name])
        state[name] = "done"
        order.append(name)

    for name in models:  # config order decides ties, so the order is stable
        visit(name, [])
    return order


def _check_seed_controls(models: dict[str, Model], seed: int) -> None:
    """A seed control repeats an existing trained model (same corpora, parent and mix) from another
    seed, and nothing is built from it."""
    for m in models.values():
        if m.control_of is None:
            continue
        where = f"models.{m.name}"
        original = models.get(m.control_of)
        if original is None or original.kind in ("merge", "pretrained") or original.control_of:
            raise ConfigError(f"config key '{where}.control_of': '{m.control_of}' is not a trained model of the lineage "
                              f"(known: {', '.join(n for n, o in models.items() if o.kind in ('scratch', 'finetune') and not o.control_of)})")
        for key in ("train_on", "parent", "mix"):
            if getattr(m, key) != getattr(original, key):
                raise ConfigError(f"config key '{where}.{key}': a seed control of '{original.name}' must have its {key} "
                                  f"({getattr(original, key)!r}, not {getattr(m, key)!r})")
        own, theirs = m.seed if m.seed is not None else seed, original.seed if original.seed is not None else seed
        if own == theirs:
            raise ConfigError(f"config key '{where}.seed': {own} is the seed of '{original.name}'; a seed control needs another seed")
        users = [n.name for n in models.values() if m.name in (n.parent, *n.merge)]
        if users:
            raise ConfigError(f"config key '{where}.control_of': a seed control cannot be built on ('{users[0]}' uses '{m.name}')")


def build_lineage(config: dict[str, Any]) -> Lineage:
    """Check the `models` block of a validated config and return the lineage graph."""
    corpora = set(config["corpora"])
    for corpus in config["corpora"]:
        check_name(f"corpora.{corpus}", corpus)
    for name in config["models"]:
        check_name(f"models.{name}", name)
    models = {name: _model_from_spec(name, spec, corpora) for name, spec in config["models"].items()}
    for m in models.values():
        refs = [("parent", m.parent)] + [("merge", r) for r in m.merge] + [("parent", r) for r in m.parents]
        for key, ref in refs:
            if ref is None:
                continue
            if ref == m.name:
                raise ConfigError(f"config key 'models.{m.name}.{key}' refers to the model itself")
            if ref not in models:
                raise ConfigError(f"config key 'models.{m.name}.{key}': '{ref}' is not a model (known: {', '.join(models)})")
    _check_seed_controls(models, int(config["seed"]))
    lineage = Lineage(models)
    lineage.order = _topological_order(models, lineage)
    if not lineage.roots:
        raise ConfigError("config key 'models' has no root: a model trained from scratch (one with 'train_on' and no 'parent') "
                          "or a pretrained model without 'parent'")
    for name in lineage.order:
        if not lineage.lineage_corpora(name):
            raise ConfigError(f"config key 'models.{name}': no corpus in its lineage for its SAE to read; give the pretrained "
                              f"model it derives from 'data: [<corpora it saw>]'")
    for name in lineage.merged:
        m = models[name]
        if m.method == "ties" and lineage.common_ancestor(*m.merge) is None:
            raise ConfigError(f"config key 'models.{name}.method': ties needs a common ancestor of {m.merge[0]} and {m.merge[1]}; they share none")
    return lineage
