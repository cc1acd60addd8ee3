"""The numbers Horn & Elliott report, in one place: the targets of the reproduction table.

Every value names the place in the paper it comes from (section, footnote, figure or appendix).
Stages that print a paper value beside their own (the SAE table, the counts) read it from here,
and so does the reproduction table (``featureflow.report``).
"""

from __future__ import annotations

# Scale of the paper's runs (sections 3.1-3.4, footnotes 3 and 7, Appendix B).
SCALE = {
    "tokenizer_vocab": 32000,        # Mistral-7B-v0.1 tokenizer (paper code)
    "d_model": 512,                  # paper code's config; the text gives the MLP width only
    "d_mlp": 1024,                   # section 3.1: "1024D MLP"
    "n_layers": 1,                   # section 3.1
    "base_tokens": 335_600_000,      # footnote 3: the base model's training data
    "d_sae": 16384,                  # Appendix B: m = 16n, n = 1024
    "sae_tokens": 15_000_000,        # section 3.2
    "sample_tokens": 3_000_000,      # footnote 7: the common sample of the correlation
    "threshold": 0.8,                # section 3.4
}

# Appendix B: "mean L0 norm between 25-35 and mean MSE loss lower than 0.0067, explained loss of
# more than 88%"; footnote 4: dead features tracked, "no significant problems".
SAE_L0 = (25.0, 35.0)
SAE_MSE_BELOW = 0.0067
SAE_EXPLAINED_LOSS_ABOVE = 0.88
SAE_TARGETS = {"l0": f"{SAE_L0[0]:g}-{SAE_L0[1]:g}", "mse": f"< {SAE_MSE_BELOW}", "explained_loss": f"> {SAE_EXPLAINED_LOSS_ABOVE}"}

# Section 3.3 and Figure 5: the accuracy equilibrium of the Lua-TinyStories SLERP, and where the
# merged model lands: about 20% below each fine-tune on its own domain, about 20% above the base,
# and equally accurate on both domains.
MERGE_T = 0.58
MERGE_BELOW_INPUTS = 0.20
MERGE_ABOVE_BASE = 0.20

# Section 4.1, Figure 2: counts on 16384-feature SAEs, by the role they play in the lineage.
COUNTS = {"persist_into_any_child": 959, "traceable_to_inputs": 1210,
          "traceable_emerged_in_inputs": 729, "traceable_persisted_from_ancestors": 481}

# Section 4.1: shares of the features persisting BabyPython -> Lua -> LuaStories, grouped by
# their (verified) autointerp explanations.
CATEGORY_SHARES = {"punctuation": 0.20, "formatting": 0.05}

# Section 4.2.1: the persisting assignment feature (BabyPython #16336) and its partners.
ASSIGNMENT_LLR = {"babypython": 7.53, "lua": 6.58, "tinystories": 7.64, "luastories": 7.19}
ASSIGNMENT_MEAN_CORR = 0.851
# Section 4.2.2: the disappearing exception feature (BabyPython #5506) and Lua #14322.
EXCEPTION_LLR = 11.38
EXCEPTION_PARTNER_LLR = 8.59
EXCEPTION_PARTNER_OTHER_RATIO = 7.0
EXCEPTION_CORR = 0.4081

# Appendix C: autointerp with gpt-4-turbo; Figure 6 shows score histograms without numbers.
INTERP_USD_PER_FEATURE = 0.11
INTERP_USD_TOTAL = 185.68
