"""SAE architectures, one module each, registered here under SAELens' name for them.

Adding one: a module beside `standard.py`, one line in ARCHITECTURES, its value in the schema's
`sae.architecture` enum, and its tests (docs: development page).
"""

from featureflow.sae.architectures.base import BASE_TENSORS, Architecture, log_fields
from featureflow.sae.architectures.batchtopk import BATCHTOPK, MATRYOSHKA_BATCHTOPK
from featureflow.sae.architectures.jumprelu import JUMPRELU
from featureflow.sae.architectures.standard import STANDARD
from featureflow.sae.architectures.topk import TOPK

ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (STANDARD, TOPK, BATCHTOPK, JUMPRELU, MATRYOSHKA_BATCHTOPK)}


def get_architecture(name: str) -> Architecture:
    """The registered architecture `name` (ValueError naming the known ones otherwise)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"SAE architecture '{name}' is not one featureflow has (known: {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[name]


__all__ = ["ARCHITECTURES", "BASE_TENSORS", "Architecture", "get_architecture", "log_fields"]
