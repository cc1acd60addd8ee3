"""Explain and simulate prompts after Bills et al. (2023), and a robust reader of the replies.

A record is one context: its tokens and the feature's activation on each. Activations are shown
to the model quantised to integers 0-10: min(10, floor(10 * a / a_max)) with a_max the feature's
largest activation on the common sample (as the paper's code and neuron-explainer do).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

EXPLAIN_SYSTEM = ("We are studying features of a language model. Each feature looks for some particular thing in a short "
                  "document. Look at the tokens the feature activates on (activations from 0 to 10; most are 0) and "
                  "summarise in one short phrase what the feature is looking for. Answer with the phrase only.")
SIMULATE_SYSTEM = ("We are studying a feature of a language model. Its explanation: {explanation}\n"
                   "For each token of the document below, predict the feature's activation as an integer from 0 (none) to "
                   "10 (strongest); most tokens are 0. Answer with JSON only: {{\"activations\": [one integer per token]}} "
                   "with exactly {n} integers, in order.")


def quantise(acts: np.ndarray, a_max: float) -> list[int]:
    if a_max <= 0:
        return [0] * len(acts)
    return [int(min(10, np.floor(10 * max(0.0, float(a)) / a_max))) for a in acts]


def format_record(tokens: list[str], levels: list[int]) -> str:
    """One record as lines 'token<TAB>level' between <start> and <end> (tokens JSON-quoted: whitespace stays visible)."""
    return "<start>\n" + "\n".join(f"{json.dumps(t)}\t{v}" for t, v in zip(tokens, levels, strict=True)) + "\n<end>"


def explain_messages(records: list[tuple[list[str], list[int]]]) -> list[dict[str, str]]:
    body = "\n\n".join(format_record(t, v) for t, v in records)
    return [{"role": "system", "content": EXPLAIN_SYSTEM}, {"role": "user", "content": body}]


def simulate_messages(explanation: str, tokens: list[str]) -> list[dict[str, str]]:
    system = SIMULATE_SYSTEM.format(explanation=explanation, n=len(tokens))
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(json.dumps(t) for t in tokens)}]


def clean_explanation(text: str) -> str:
    """The first non-empty line, without an "Explanation:" label or quotes around the whole of it."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "").removeprefix("Explanation:").strip()
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'":
        line = line[1:-1].strip()
    return line[:300]


def parse_simulation(text: str, n: int) -> list[int]:
    """The n integers of a simulation reply; raises ValueError (with the reason) when there are not exactly n.

    Accepts {"activations": [...]}, a bare list, JSON inside a code fence or prose, and numbers as
    strings; values are clipped to 0-10.
    """
    candidates: list[Any] = []
    for chunk in (text, *re.findall(r"\{.*\}", text, flags=re.S), *re.findall(r"\[.*?\]", text, flags=re.S)):
        try:
            candidates.append(json.loads(chunk))
        except (json.JSONDecodeError, TypeError):
            continue
    for c in candidates:
        values = c.get("activations") if isinstance(c, dict) else c
        if isinstance(values, list) and len(values) == n:
            try:
                return [int(min(10, max(0, round(float(v))))) for v in values]
            except (TypeError, ValueError):
                continue
    lengths = sorted({len(c.get("activations", []) if isinstance(c, dict) else c) for c in candidates
                      if isinstance(c, (list, dict))})
    raise ValueError(f"no list of {n} integers in the reply" + (f" (lists of {lengths})" if lengths else " (no JSON found)"))


def score(simulated: list[list[int]], true: list[np.ndarray]) -> float:
    """Pearson correlation of simulated levels and true activations over all records (NaN if either is constant)."""
    s = np.concatenate([np.asarray(x, dtype=np.float64) for x in simulated])
    t = np.concatenate([np.asarray(x, dtype=np.float64) for x in true])
    if s.std() == 0 or t.std() == 0:
        return float("nan")
    return float(np.corrcoef(s, t)[0, 1])
