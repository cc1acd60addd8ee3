"""Check that SAELens loads featureflow's saved SAEs and encodes them as featureflow does.

SAELens 6 needs TransformerLens 3 and featureflow's stack has 4, so this runs in a venv of its own
(docs: Development, "SAELens' layout")::

    python3.11 -m venv /tmp/slenv && /tmp/slenv/bin/pip install torch==2.13.0 sae-lens==6.54.12
    /tmp/slenv/bin/python scripts/check_saelens_layout.py results/sae/lua results/flow/architectures/*/sae/lua

It imports featureflow from this checkout's src/ (only torch and safetensors are needed to read an SAE)
and prints, per folder, SAELens' class and the largest difference of features and reconstructions on
random activations; it exits non-zero when any exceeds 1e-5.
"""

import sys
from pathlib import Path

import torch
from sae_lens import SAE, __version__

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from featureflow.sae.saved import load_sae  # noqa: E402

worst = 0.0
print(f"sae-lens {__version__}, torch {torch.__version__}")
for folder in sys.argv[1:]:
    theirs, ours = SAE.load_from_disk(folder, device="cpu"), load_sae(folder)
    x = torch.randn(512, theirs.cfg.d_in, generator=torch.Generator().manual_seed(0)) * 0.3
    f_theirs, f_ours = theirs.encode(x), ours.encode(x)
    df = (f_theirs - f_ours).abs().max().item()
    dx = (theirs.decode(f_theirs) - ours.decode(f_ours)).abs().max().item()
    worst = max(worst, df, dx)
    print(f"{folder}: {type(theirs).__name__} (cfg {ours.cfg.get('architecture')}), max |f diff| {df:.3g}, max |x_hat diff| {dx:.3g}, "
          f"L0 {(f_theirs > 0).float().sum(dim=1).mean().item():.2f}")
sys.exit(0 if worst <= 1e-5 else 1)
