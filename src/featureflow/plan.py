"""From a raw workflow config to a checked plan: validated settings, lineage, and target files.

Everything that decides *what* the workflow builds lives here, so the rules never read the
config to make lists of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featureflow.config import ConfigError, validate_config
from featureflow.corpus import SPLITS, resolve_local_files
from featureflow.lineage import Lineage, build_lineage


@dataclass
class Plan:
    config: dict[str, Any]
    lineage: Lineage
    files: dict[str, list[Path]]  # local corpus -> its resolved files

    @property
    def results(self) -> str:
        return self.config["results_dir"]

    def local_files(self, corpus: str) -> list[str]:
        return [str(p) for p in self.files.get(corpus, [])]

    def tokenizer_corpora(self) -> list[str]:
        """Corpora the BPE trains on: configured, else those of the models trained from scratch."""
        if self.config["tokenizer"]["kind"] != "bpe":
            return []
        chosen = self.config["tokenizer"].get("train_on")
        if chosen:
            return list(chosen)
        return list(dict.fromkeys(c for m in self.lineage.roots for c in self.lineage.models[m].train_on))

    def used_corpora(self) -> list[str]:
        """Corpora some model trains on, in config order."""
        used = {c for m in self.lineage.trained for c in self.lineage.models[m].train_on}
        return [c for c in self.config["corpora"] if c in used or c in self.tokenizer_corpora()]

    def token_count_files(self) -> list[str]:
        return [f"{self.results}/tokens/{c}/{s}.json" for c in self.used_corpora() for s in SPLITS]

    def validation_token_files(self) -> list[str]:
        return [f"{self.results}/tokens/{c}/validation.npy" for c in self.used_corpora()]

    def unigram_baselines(self) -> dict[str, dict[str, str]]:
        """Unigram reference rows of the eval table: label -> {corpus: token file it learns from}.

        One row per model trained from scratch (frequencies of its own training mixture, the fair
        reference for that model), and an in-domain row (each corpus' own training split).
        """
        r, corpora = self.results, self.used_corpora()
        rows = {f"unigram[{m} data]": {c: f"{r}/mixtures/{m}/train.npy" for c in corpora} for m in self.lineage.roots}
        rows["unigram[in-domain]"] = {c: f"{r}/tokens/{c}/train.npy" for c in corpora}
        return rows

    def baseline_token_files(self) -> list[str]:
        return sorted({f for files in self.unigram_baselines().values() for f in files.values()})

    def train_settings(self, model: str) -> dict[str, Any]:
        """Optimizer/budget settings of a trained model: `lm.scratch` or `lm.finetune`."""
        kind = self.lineage.models[model].kind
        return self.config["lm"]["scratch" if kind == "scratch" else "finetune"]

    def lm_run_options(self) -> dict[str, Any]:
        lm = self.config["lm"]
        return {k: lm[k] for k in ("device", "checkpoint_every", "log_every", "keep_checkpoints")}

    def evaluated_models(self) -> list[str]:
        """Models with an eval.json: every model of the lineage."""
        return self.lineage.order

    def eval_run_options(self) -> dict[str, Any]:
        return {"batch_size": self.config["lm"]["eval_batch_size"], "device": self.config["lm"]["device"]}

    def own_corpora(self, model: str) -> list[str]:
        """A model's own domain: its training corpora, or for a merged model its inputs' domains."""
        m = self.lineage.models[model]
        if m.kind != "merge":
            return list(m.train_on)
        return list(dict.fromkeys(c for src in m.merge for c in self.own_corpora(src)))

    def merge_base(self, model: str) -> str | None:
        """The inputs' nearest common ancestor: TIES' base and Figure 5's dashed baselines."""
        return self.lineage.common_ancestor(*self.lineage.models[model].merge)

    def merge_participants(self, model: str) -> list[str]:
        base = self.merge_base(model)
        return [*self.lineage.models[model].merge, *([base] if base else [])]

    def merge_spec(self, model: str) -> dict[str, Any]:
        """Everything the merge rules need about one merged model, as plain data (a rule param)."""
        m, r = self.lineage.models[model], self.results
        return {"first": m.merge[0], "second": m.merge[1], "base": self.merge_base(model), "method": m.method, "t": m.t,
                "dirs": {n: f"{r}/models/{n}" for n in self.merge_participants(model)},
                "own_validation": {n: [f"{r}/tokens/{c}/validation.npy" for c in self.own_corpora(n)] for n in m.merge}}

    def lineage_token_files(self, model: str, split: str) -> list[str]:
        """Token files of every corpus in a model's lineage (its SAE's data, paper footnote 5)."""
        return [f"{self.results}/tokens/{c}/{split}.npy" for c in self.lineage.lineage_corpora(model)]

    def sae_settings(self) -> dict[str, Any]:
        skip = {"hook", "eval_tokens", "checkpoint_every", "log_every"}
        return {k: v for k, v in self.config["sae"].items() if k not in skip}

    def sae_run_options(self) -> dict[str, Any]:
        sae = self.config["sae"]
        return {"device": self.config["lm"]["device"], "checkpoint_every": sae["checkpoint_every"],
                "log_every": sae["log_every"], "keep_checkpoints": self.config["lm"]["keep_checkpoints"]}

    def common_sample_files(self) -> dict[str, str]:
        """Train token files of every corpus any model learns from: the common distribution."""
        corpora = dict.fromkeys(c for m in self.lineage.order for c in self.lineage.lineage_corpora(m))
        return {c: f"{self.results}/tokens/{c}/train.npy" for c in corpora}

    def edge_names(self) -> list[str]:
        return [e.name for e in self.lineage.edges]

    def correlation_files(self) -> dict[str, str]:
        return {e.name: f"{self.results}/corr/{e.name}.npz" for e in self.lineage.edges}

    def flow_spec(self) -> dict[str, Any]:
        """The lineage as classify and the Sankey need it (plain data, a rule param)."""
        return {"edges": [{"source": e.source, "target": e.target, "kind": e.kind} for e in self.lineage.edges],
                "inputs": {m: list(self.lineage.inputs_of(m)) for m in self.lineage.order},
                "roots": self.lineage.roots}

    def targets(self) -> list[str]:
        """Every final output of the workflow for this config."""
        r = self.results
        out = [f"{r}/tokenizer/tokenizer_meta.json", f"{r}/tokens/summary.tsv"]
        out += [f"{r}/tokens/{c}/{s}.npy" for c in self.used_corpora() for s in SPLITS]
        out += [f"{r}/mixtures/{m}/{s}.npy" for m in self.lineage.trained for s in SPLITS]
        out += [f"{r}/models/{m}/eval.json" for m in self.evaluated_models()] + [f"{r}/models/eval.tsv"]
        out += [f"{r}/merge/{m}/{f}" for m in self.lineage.merged for f in ("choice.json", "fig5_merge_sweep.png")]
        out += [f"{r}/saes/{m}/metrics.json" for m in self.lineage.order] + [f"{r}/saes/metrics.tsv"]
        if self.lineage.edges:
            out += [f"{r}/flow/{f}" for f in ("edges.csv", "counts.csv", "fig2_sankey.html", "fig2_sankey.png")]
        return out


def load_plan(config: dict[str, Any], schema_path: str | Path, workdir: str | Path = ".") -> Plan:
    """Validate `config`, build the lineage and check local corpus files; raise ConfigError on any problem."""
    cfg = validate_config(config, schema_path)
    lineage = build_lineage(cfg)
    for corpus in cfg["tokenizer"].get("train_on") or []:
        if corpus not in cfg["corpora"]:
            raise ConfigError(f"config key 'tokenizer.train_on': '{corpus}' is not a corpus (known: {', '.join(cfg['corpora'])})")
    for name, spec in cfg["corpora"].items():
        if ("files" in spec) == ("dataset" in spec):
            raise ConfigError(f"config key 'corpora.{name}' needs exactly one of 'files' or 'dataset'")
    files = {n: resolve_local_files(n, s, workdir) for n, s in cfg["corpora"].items() if "files" in s}
    return Plan(cfg, lineage, files)
