"""Deep models stopped at the hook: time and peak memory of the jobs that only need the hook's activations,
with the forward pass stopped at the hook (featureflow.sae.hooks.hook_activations, what every job does)
against the whole stack and the unembedding run (what a capture without stop_at_layer costs).

The checkpoint is SmolLM-135M's shape with random weights (Llama family: 30 layers, d_model 576, d_mlp
1536, 9 query / 3 key-value heads, tied embeddings, 49,152-token vocabulary, 8192 positions), saved as a
float32 Hugging Face folder; the hook is `blocks.15.mlp.hook_post`, the middle layer. Each job runs in a
fresh process (peak RSS is the process's own), once per mode, modes alternating, `--repeats` times:

    sae           featureflow.sae.activations.activation_chunks: one chunk of SAE training activations
                  (`--blocks` blocks of the paper's 24 tokens, 256 blocks per forward pass as on a CPU)
    feature_acts  featureflow.flow.feature_acts.feature_activations: a 16x SAE's features on the same
                  number of 24-token blocks (the common sample), 3072 tokens per batch

Writes benchmarks/results/stop_at_hook.json (and prints a Markdown table).

    .venv/bin/python benchmarks/stop_at_hook.py [--blocks 512] [--repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

HOOK = "blocks.15.mlp.hook_post"
SHAPE = {"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
         "num_attention_heads": 9, "num_key_value_heads": 3, "max_position_embeddings": 8192, "tie_word_embeddings": True,
         "rope_theta": 100000.0, "bos_token_id": 0, "eos_token_id": 0}
CONTEXT, EXPANSION, JOBS = 24, 16, ("sae", "feature_acts")


def build(folder: Path) -> None:
    """The random-weight deep checkpoint, a token file to sample from, and a 16x SAE at the hook."""
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**SHAPE)).save_pretrained(folder / "model")
    np.save(folder / "tokens.npy", np.random.default_rng(0).integers(0, SHAPE["vocab_size"], 2_000_000).astype(np.uint16))
    d_in, d_sae = SHAPE["intermediate_size"], EXPANSION * SHAPE["intermediate_size"]
    w_dec = torch.randn(d_sae, d_in)
    w_dec /= w_dec.norm(dim=1, keepdim=True)
    (folder / "sae").mkdir()
    save_file({"W_enc": w_dec.T.contiguous(), "W_dec": w_dec, "b_enc": torch.full((d_sae,), -0.5), "b_dec": torch.zeros(d_in)},
              folder / "sae" / "sae_weights.safetensors")


def full_forward_activations(model: Any, input_ids: Any, hook_name: str) -> Any:
    """The activations at `hook_name` with the forward pass run to the logits (no stop at the hook)."""
    import torch

    from featureflow.sae import hooks

    hook, module = hooks._site(model, hook_name)
    captured = {}
    handle = module.register_forward_pre_hook(lambda m, args: captured.setdefault("acts", args[0]))
    try:
        with torch.no_grad():
            model(input_ids=input_ids)
    finally:
        handle.remove()
    return captured["acts"].float()


def run_job(job: str, mode: str, folder: Path, blocks: int, threads: int) -> dict[str, Any]:
    """One job in this process (called in a fresh subprocess): seconds of its forward work and peak RSS."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from featureflow.sae import hooks

    if mode == "full":  # before the callers bind the name: they import it at their own import
        hooks.hook_activations = full_forward_activations
    from featureflow.flow.feature_acts import feature_activations
    from featureflow.lm import load_for_inference
    from featureflow.sae.activations import activation_chunks
    from featureflow.sae.blocks import BlockSource

    source = BlockSource([folder / "tokens.npy"], CONTEXT, seed=0, name="deep")
    start = time.perf_counter()
    if job == "sae":
        model = load_for_inference(folder / "model")
        loaded = time.perf_counter()
        chunk = next(activation_chunks(model, source, HOOK, blocks_per_chunk=blocks, forward_batch=256))
        rows = int(chunk.shape[0])
    else:
        loaded = time.perf_counter()  # feature_activations loads the model itself
        acts = feature_activations(folder / "model", folder / "sae", source.blocks(blocks, 0), HOOK, "cpu", batch_tokens=3072)
        rows = int(acts.shape[0])
        assert acts.nnz > 0 and np.isfinite(acts.data).all()
    done = time.perf_counter()
    return {"job": job, "mode": mode, "tokens": rows, "seconds_after_load": round(done - loaded, 3),
            "seconds_with_load": round(done - start, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=512, help="24-token blocks per job")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs=3, metavar=("JOB", "MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job, mode, folder = args.child
        print(json.dumps(run_job(job, mode, Path(folder), args.blocks, args.threads)))
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        for repeat in range(args.repeats):
            for job in JOBS:
                for mode in (("stop", "full") if repeat % 2 == 0 else ("full", "stop")):
                    out = subprocess.run([sys.executable, __file__, "--blocks", str(args.blocks), "--threads", str(args.threads),
                                          "--child", job, mode, tmp], capture_output=True, text=True, check=True)
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                    print(runs[-1], file=sys.stderr)
    table = []
    for job in JOBS:
        row: dict[str, Any] = {"job": job, "tokens": args.blocks * CONTEXT}
        for mode in ("stop", "full"):
            mine = [r for r in runs if r["job"] == job and r["mode"] == mode]
            row[f"{mode}_s"] = statistics.median(r["seconds_with_load"] for r in mine)  # the job: load + forward work
            row[f"{mode}_peak_mb"] = max(r["peak_rss_mb"] for r in mine)
        row["time_ratio"] = round(row["stop_s"] / row["full_s"], 3)
        table.append(row)
    result = {"checkpoint": {"family": "llama", **SHAPE}, "hook": HOOK, "context": CONTEXT, "threads": args.threads,
              "repeats": args.repeats, "table": table, "runs": runs}
    out_path = REPO / "benchmarks" / "results" / "stop_at_hook.json"
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print("| job | tokens | stopped at the hook | whole stack + unembedding | time ratio |")
    print("|---|---:|---:|---:|---:|")
    for r in table:
        print(f"| {r['job']} | {r['tokens']:,} | {r['stop_s']:.2f} s, {r['stop_peak_mb']:,.0f} MB | "
              f"{r['full_s']:.2f} s, {r['full_peak_mb']:,.0f} MB | {r['time_ratio']:.2f} |")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
