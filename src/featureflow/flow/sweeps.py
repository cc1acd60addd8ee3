"""Tables of an experiment that gives every model of the lineage SAEs of several variants (widths,
architectures) and correlates every edge at each: per model and variant the SAE's metrics and seed
ceiling, per edge and variant the classes at the threshold (featureflow.flow.widths and
featureflow.flow.architectures read them).

Per edge and variant::

    persisting_share         of the source SAE's features, the share with a partner in the target SAE
                             correlating above the threshold (the counts' "source features persisting")
    persisting_share_active  the same among the source's features active on the common sample
    emerging_share           of the target SAE's features, the share active without such a partner
    share_of_ceiling         persisting_share_active / the source model's seed ceiling at that variant (the
                             share of its active features found again by an SAE of another seed,
                             controls.persisting_share), where controls.sae_seed covers the source
    source_* / target_*      L0 and explained loss of the two SAEs, whether they meet the paper's targets
                             (featureflow.sae.missed_targets) and why they are far off (off_target)

Classes come from the same comparison as classify's (classes.classify_edge on the best partners).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from featureflow.flow.classes import classify_edge
from featureflow.flow.controls import persisting_share
from featureflow.flow.matches import load_matches

log = logging.getLogger(__name__)
SAE_COLUMNS = ("d_sae", "l0", "mse", "explained_variance", "explained_loss", "dead_fraction")


@dataclass(frozen=True)
class Sweep:
    """One experiment's variants (the lineage's own, `own`, among them) under the column `key`, the models
    and the edges ({"source", "target", "kind"}, lineage order) it covers, and the threshold of persisting.
    Files are keyed by str(variant)."""

    key: str
    variants: list[Any]
    own: Any
    models: list[str]
    edges: list[dict[str, str]]
    threshold: float


def sweep_sae_rows(sweep: Sweep, metrics_files: dict[str, dict[str, str]], ceiling_files: dict[str, dict[str, str]] | None = None,
                   extra: Callable[[Any, str], dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per model and variant: the SAE's held-out metrics, the paper's targets it misses, why it is far
    off them, and its seed ceiling where it has one (`metrics_files`: variant -> model -> metrics.json;
    `ceiling_files`: variant -> model -> correlations with its second SAE; `extra(variant, model)`: more columns)."""
    from featureflow.sae import missed_targets, off_target

    rows = []
    for v in sweep.variants:
        ceilings = (ceiling_files or {}).get(str(v), {})
        for m in sweep.models:
            x = json.loads(Path(metrics_files[str(v)][m]).read_text())
            ceiling = float(persisting_share(load_matches(ceilings[m])[0], sweep.threshold)) if m in ceilings else float("nan")
            missed = missed_targets(x)
            rows.append({"model": m, sweep.key: v, f"own_{sweep.key}": v == sweep.own, **(extra(v, m) if extra else {}),
                         **{k: x.get(k) for k in SAE_COLUMNS}, "seed_ceiling": round(ceiling, 4), "meets_targets": not missed,
                         "missed": "; ".join(missed), "far_off": "; ".join(off_target(x))})
    return pd.DataFrame(rows)


def sweep_edge_rows(sweep: Sweep, corr_files: dict[str, dict[str, str]], saes: pd.DataFrame) -> pd.DataFrame:
    """One row per edge and variant: the classes of both SAEs' features at the threshold and the two SAEs'
    quality (`corr_files`: variant -> edge name -> correlations; `saes`: sweep_sae_rows)."""
    from featureflow.lineage import edge_name

    quality = saes.set_index(["model", sweep.key])
    rows = []
    for e in sweep.edges:
        name = edge_name(e["source"], e["target"])
        for v in sweep.variants:
            matches, _ = load_matches(corr_files[str(v)][name])
            classes = classify_edge(matches, e["source"], e["target"], e["kind"], sweep.threshold)
            src, tgt = (classes.loc[classes["side"] == side, "class"] for side in ("source", "target"))
            active = (src != "inactive").sum()
            row = {"edge": name, "kind": e["kind"], "source": e["source"], "target": e["target"], sweep.key: v,
                   "d_sae": len(src), "threshold": sweep.threshold, "persisting": int((src == "persisting").sum()),
                   "persisting_share": round(float((src == "persisting").mean()), 4),
                   "persisting_share_active": round(float((src == "persisting").sum() / active), 4) if active else float("nan"),
                   "emerging_share": round(float((tgt == "emerging").mean()), 4),
                   "inactive_source": int((src == "inactive").sum()), "inactive_target": int((tgt == "inactive").sum())}
            row["share_of_ceiling"] = round(row["persisting_share_active"] / quality.loc[(e["source"], v), "seed_ceiling"], 4)
            for side in ("source", "target"):
                q = quality.loc[(e[side], v)]
                row |= {f"{side}_l0": round(float(q["l0"]), 2), f"{side}_explained_loss": round(float(q["explained_loss"]), 4),
                        f"{side}_dead_fraction": q["dead_fraction"]}
            both = quality.loc[[(e["source"], v), (e["target"], v)]]
            row |= {"meets_targets": bool(both["meets_targets"].all()),
                    "far_off": "; ".join(f"{m}: {why}" for (m, _), why in both["far_off"].items() if why)}
            rows.append(row)
    return pd.DataFrame(rows)


def write_sweep(key: str, saes: pd.DataFrame, edges: pd.DataFrame, figure: Any, out: dict[str, str], height: int) -> pd.DataFrame:
    """Write a sweep's tables (out["csv"]: edge x variant, out["saes"]: model x variant) and its figure
    (out["html"], out["png"]), log the persisting shares and warn of SAEs far off the paper's targets."""
    from featureflow.plotting import save_figure

    saes.to_csv(out["saes"], index=False)
    edges.to_csv(out["csv"], index=False)
    save_figure(figure, out["html"], out["png"], width=1300, height=height)
    log.info("persisting share by %s\n%s", key, edges.pivot(index="edge", columns=key, values="persisting_share").to_string())
    for _, r in saes[saes["far_off"] != ""].iterrows():
        log.warning("SAE of %s (%s %s) is far off the paper's targets: %s", r["model"], key, r[key], r["far_off"])
    return edges
