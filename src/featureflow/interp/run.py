"""Autointerp of selected features (explain, simulate, score) and its cost estimate.

Which features: per model, the features on a persisting chain from the root to a leaf of the
lineage (every link a top-1 partner above the threshold: the paper's BabyPython -> Lua ->
LuaStories features) and a seeded random sample of the model's other active features as the
comparison group, at most `features.max_per_model` in all.

Records per feature (contexts of the common sample): its top-activating blocks and random blocks,
split into those shown for the explanation and held-out ones the model simulates. The score is
the Pearson correlation of simulated and true activations over the held-out records.
"""

from __future__ import annotations

import json
import math
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featureflow.analysis import block_activations, top_blocks
from featureflow.interp.client import BudgetExceeded, ChatClient, RequestFailed, estimate_tokens, price_of
from featureflow.interp.prompts import clean_explanation, explain_messages, parse_simulation, quantise, score, simulate_messages
from featureflow.settings import InterpCost, InterpFeatures, InterpRecords, InterpSettings


def chain_features(edges: pd.DataFrame, spec: dict[str, Any]) -> dict[str, set[int]]:
    """Per model, the features on a root-to-leaf chain of persisting top-1 links."""
    links: dict[tuple[str, str], dict[int, int]] = {}
    children: dict[str, list[str]] = {m: [] for m in spec["inputs"]}
    for e in spec["edges"]:
        children[e["source"]].append(e["target"])
        rows = edges[(edges["source"] == e["source"]) & (edges["target"] == e["target"]) & (edges["side"] == "source")
                     & (edges["class"] == "persisting")]
        links[(e["source"], e["target"])] = dict(zip(rows["feature"].astype(int), rows["partner"].astype(int), strict=True))
    order = list(spec["inputs"])  # lineage order
    good: dict[str, set[int]] = {}
    for m in reversed(order):  # features from which a persisting path reaches a leaf
        if not children[m]:
            good[m] = set(edges.loc[(edges["model"] == m) & edges["active"].astype(bool), "feature"].astype(int))
            continue
        good[m] = {f for c in children[m] for f, p in links[(m, c)].items() if p in good[c]}
    reach: dict[str, set[int]] = {m: set() for m in order}
    for root in spec["roots"]:
        reach[root] = set(good[root])
    for m in order:  # and that are reached from the root along such links
        for c in children[m]:
            reach[c] |= {p for f, p in links[(m, c)].items() if f in reach[m] and p in good[c]}
    return {m: reach[m] & good[m] for m in order}


def select_features(model: str, chain: set[int], active: np.ndarray, sel: InterpFeatures, seed: int) -> list[tuple[int, str]]:
    """(feature, group) pairs: chain features ("persisting") and a random sample of the others ("other")."""
    rng = np.random.default_rng([seed, zlib.crc32(model.encode())])
    others = np.array(sorted(set(np.flatnonzero(active)) - chain), dtype=np.int64)
    n_chain = min(len(chain), sel.max_per_model) if sel.persisting_chain else 0
    n_other = min(sel.random_others, len(others), sel.max_per_model - n_chain)
    picked_chain = sorted(rng.choice(sorted(chain), n_chain, replace=False).tolist()) if n_chain else []
    picked_other = sorted(rng.choice(others, n_other, replace=False).tolist()) if n_other else []
    return [(int(f), "persisting") for f in picked_chain] + [(int(f), "other") for f in picked_other]


class Records:
    """Contexts of one model's features on the common sample, with the feature's activations."""

    def __init__(self, acts_csc: Any, stats: dict[str, np.ndarray], blocks: np.ndarray, token_texts: list[str]):
        self.acts, self.stats, self.blocks, self.texts = acts_csc, stats, blocks, token_texts
        self.context = blocks.shape[1]

    def for_feature(self, feature: int, rec: InterpRecords, seed: int) -> dict[str, list[int]]:
        """Block ids: {"explain": top + random, "simulate": held-out top + random}."""
        top = top_blocks(self.stats, feature, self.context)
        rng = np.random.default_rng([seed, feature])
        rand, wanted, taken = [], rec.explain_random + rec.simulate_random, set(top)
        for b in rng.permutation(len(self.blocks)).tolist():  # the first `wanted` blocks of the permutation not in top
            if len(rand) == wanted:
                break
            if b not in taken:
                rand.append(b)
        return {"explain": top[:rec.explain_top] + rand[:rec.explain_random],
                "simulate": top[rec.explain_top:rec.explain_top + rec.simulate_top] + rand[rec.explain_random:]}

    def record(self, feature: int, block: int) -> tuple[list[str], np.ndarray]:
        """(token texts, the feature's activations) of one sample block."""
        start = block * self.context
        return [self.texts[t] for t in self.blocks[block]], block_activations(self.acts, feature, start, start + self.context)

    def explain_records(self, feature: int, blocks: list[int]) -> list[tuple[list[str], list[int]]]:
        """The records shown for an explanation: token texts with activations quantised against the feature's max."""
        a_max = float(self.stats["max"][feature])
        return [(tokens, quantise(acts, a_max)) for tokens, acts in (self.record(feature, b) for b in blocks)]


def _result(model: str, feature: int, group: str) -> dict[str, Any]:
    return {"model": model, "feature": feature, "group": group, "explanation": None, "score": None, "simulated_records": 0,
            "requests": 0, "cached_requests": 0, "cost_usd": 0.0, "failures": []}


def interpret_feature(client: ChatClient, records: Records, model: str, picked: tuple[int, str], seed: int) -> dict[str, Any]:
    """Explain, simulate and score one (feature, group); every failure is recorded in the result, never raised."""
    feature, group, s = picked[0], picked[1], client.s
    out = _result(model, feature, group)
    blocks = records.for_feature(feature, s.records, seed)

    def ask(stage: str, messages: list[dict[str, str]], max_tokens: int, json_mode: bool) -> str | None:
        try:
            reply = client.complete(messages, max_tokens, json_mode)
        except BudgetExceeded as err:
            out["failures"].append({"stage": stage, "error": f"budget: {err}"})
            return None
        except RequestFailed as err:
            out["failures"].append({"stage": stage, "error": str(err)})
            return None
        out["requests"] += 1
        out["cached_requests"] += int(reply["cached"])
        out["cost_usd"] = round(out["cost_usd"] + reply["cost_usd"], 6)
        return reply["text"]

    text = ask("explain", explain_messages(records.explain_records(feature, blocks["explain"])), s.max_tokens_explain, False)
    if text is None:
        return out
    out["explanation"] = clean_explanation(text)
    if not out["explanation"]:
        out["failures"].append({"stage": "explain", "error": "empty explanation", "raw": text})
        return out
    simulated, true = [], []
    for b in blocks["simulate"]:
        tokens, acts = records.record(feature, b)
        reply = ask("simulate", simulate_messages(out["explanation"], tokens), s.max_tokens_simulate, True)
        if reply is None:
            continue
        try:
            simulated.append(parse_simulation(reply, len(tokens)))
            true.append(acts)
        except ValueError as err:
            out["failures"].append({"stage": "simulate", "error": str(err), "raw": reply})
    out["simulated_records"] = len(simulated)
    if simulated:
        value = score(simulated, true)
        out["score"] = None if math.isnan(value) else round(value, 4)
    return out


def interpret_model(model: str, features: list[tuple[int, str]], records: Records, client: ChatClient, seed: int,
                    out_jsonl: str | Path) -> dict[str, Any]:
    """The `interp` rule for one model: every selected feature through `client` (its settings, cache
    and budget), `concurrency` at a time, into a jsonl."""
    ledger = client.ledger
    with ThreadPoolExecutor(max_workers=client.s.concurrency) as pool:
        results = list(pool.map(lambda fg: interpret_feature(client, records, model, fg, seed), features))
    with open(out_jsonl, "w") as fh:
        for r in results:
            fh.write(json.dumps(r) + "\n")
    return {"model": model, "features": len(results), "requests_sent": ledger.requests_sent, "cache_hits": ledger.cache_hits,
            "spent_usd": round(ledger.spent_usd, 6), "failures": sum(len(r["failures"]) for r in results)}


def estimate_model(features: list[tuple[int, str]], records: Records, s: InterpCost | InterpSettings, seed: int) -> dict[str, Any]:
    """Requests, tokens and worst-case USD of interpreting `features` (the prompts are built; nothing is sent)."""
    cpt = s.chars_per_token
    placeholder = "x" * int(s.max_tokens_explain * cpt)
    prompt = completion = requests = 0
    for feature, _ in features:
        blocks = records.for_feature(feature, s.records, seed)
        prompt += sum(estimate_tokens(m["content"], cpt) for m in explain_messages(records.explain_records(feature, blocks["explain"])))
        completion += s.max_tokens_explain
        for b in blocks["simulate"]:
            prompt += sum(estimate_tokens(m["content"], cpt) for m in simulate_messages(placeholder, records.record(feature, b)[0]))
            completion += s.max_tokens_simulate
        requests += 1 + len(blocks["simulate"])
    return {"features": len(features), "requests": requests, "prompt_tokens": prompt, "completion_tokens_max": completion,
            "usd_max": round(price_of(s.prices, s.model, prompt, completion), 4)}
