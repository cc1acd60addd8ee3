"""Data stage (rules in workflow/rules/data.smk, results in results/data/): corpora, tokenizer, token arrays, mixtures."""

from featureflow.exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "DOC_SEP": "corpus",
    "load_documents": "corpus",
    "prepare_corpus": "corpus",
    "read_documents": "corpus",
    "iter_text_documents": "sources",
    "filter_code_documents": "code_filters",
    "build_tokenizer": "tokenizer",
    "load_tokenizer": "tokenizer",
    "tokenizer_from_models": "tokenizer",
    "blocks_from_files": "tokens",
    "build_mixture": "tokens",
    "eval_blocks": "tokens",
    "load_blocks": "tokens",
    "summarise_counts": "tokens",
    "tokenize_split": "tokens",
})
