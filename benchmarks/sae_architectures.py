"""Training throughput of every SAE architecture side by side (tokens/s of one full step: loss, AuxK where
the architecture has it, backward, Adam, decoder renormalised, after_step), on the same cached random
activations, interleaved round by round so that a busy machine slows every architecture alike.

Demo size by default (d_in 512, x4 = 2048 latents, 576-token batches as config.yaml trains); TopK's k 30
(the paper's L0), the standard SAE's encoder bias set so that L0 starts near 30 too, AuxK with a tenth
of the latents counted dead. Writes benchmarks/results/sae_architectures.json.

    .venv/bin/python benchmarks/sae_architectures.py [--steps 30 --rounds 3 --d-in 512 --factor 4 --batch 576]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from featureflow.sae.architectures import ARCHITECTURES  # noqa: E402
from featureflow.sae.model import SparseAutoencoder  # noqa: E402
from featureflow.settings import SAESettings  # noqa: E402
from helpers import settings  # noqa: E402


def setup(arch, d_in: int, d_sae: int):
    own = {"k": 30} if "k" in arch.config_class.__dataclass_fields__ else {}
    config = arch.config(settings(SAESettings, architecture=arch.name, **own))
    sae = SparseAutoencoder(d_in, d_sae, seed=0)
    arch.init_state(sae, config)
    if arch.name == "standard":
        with torch.no_grad():
            sae.b_enc.fill_(-2.2)  # L0 ~30 of 2048 on unit-variance inputs
    return sae, config, torch.optim.Adam(sae.parameters(), lr=1e-4)


def run_steps(arch, sae, config, opt, data: torch.Tensor, dead: torch.Tensor) -> float:
    start = time.perf_counter()
    for x in data:
        coefficients = arch.coefficient_values(10, 100, config)
        terms = arch.loss_terms(sae, x, coefficients, config)
        if arch.uses_aux_loss:
            terms["loss"] = terms["loss"] + arch.aux_loss(sae, x, terms, dead, config)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        sae.remove_parallel_grad()
        opt.step()
        sae.normalise_decoder()
        with torch.no_grad():
            arch.after_step(sae, terms, config)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--d-in", type=int, default=512)
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--batch", type=int, default=576)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d_sae = args.d_in * args.factor
    data = torch.randn(args.steps, args.batch, args.d_in, generator=torch.Generator().manual_seed(0))
    dead = torch.zeros(d_sae, dtype=torch.bool)
    dead[: d_sae // 10] = True
    state = {name: setup(arch, args.d_in, d_sae) for name, arch in ARCHITECTURES.items()}
    times: dict[str, list[float]] = {name: [] for name in ARCHITECTURES}
    for name, arch in ARCHITECTURES.items():  # warm-up round, not timed
        run_steps(arch, *state[name], data[:3], dead)
    for _ in range(args.rounds):
        for name, arch in ARCHITECTURES.items():
            times[name].append(run_steps(arch, *state[name], data, dead))
    tokens = args.steps * args.batch
    rates = {n: round(tokens / min(t), 1) for n, t in times.items()}
    result = {"d_in": args.d_in, "d_sae": d_sae, "batch_tokens": args.batch, "steps_per_round": args.steps,
              "rounds": args.rounds, "threads": args.threads, "torch": torch.__version__,
              "tokens_per_s_best_round": rates,
              "relative_to_standard": {n: round(r / rates["standard"], 3) for n, r in rates.items()},
              "seconds_per_round": {n: [round(x, 3) for x in t] for n, t in times.items()}}
    out = REPO / "benchmarks/results/sae_architectures.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
