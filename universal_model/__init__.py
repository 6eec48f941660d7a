"""002 §3: the question repository and the universal model (BM25 k-NN label prediction).

- `bm25.BM25Index`: exact rank-bm25 BM25Okapi scoring, MaxScore top-K, incremental add.
- `question_repository`: question JSONL, SeaCat extraction from transcripts (§3.1).
- `predict.UniversalModel`: top-K neighbours -> mode / distribution / median (§3.2).
- `dense`: sentence-transformers and hybrid retrieval; `retrievers.build_retriever` picks one.
- `metrics`: Top-N and within-k units (Table 1); `baselines`: Random Forests on TF-IDF.
- `evaluation`: the config-driven build + evaluate used by scripts/universal_model.py.
"""
from feedback_nlp.universal_model.bm25 import BM25Index, same_top_k, tokenize
from feedback_nlp.universal_model.predict import UniversalModel, median, ranked_labels, vote

__all__ = ["BM25Index", "UniversalModel", "median", "ranked_labels", "same_top_k", "tokenize", "vote"]
