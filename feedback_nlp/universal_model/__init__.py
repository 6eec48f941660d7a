"""002 §3: the question repository and the universal model (k-NN label prediction, no training).

- `repository`: the exported, updatable repository folder (manifest, generations, add/delete).
- `tantivy_index` (default BM25), `reference_index` (BM25Okapi ranking via bm25s, static),
  `opensearch_index` (scale-out), `vector_index` (faiss exact / IVF): the retrieval backends.
- `retrieval`: BM25, dense and reciprocal-rank-fusion hybrid over those backends.
- `predict`: top-K neighbours -> mode / distribution / median (§3.2).
- `repository_predictor.load_predictor`: what serve / predict.py call (no Lightning).
- `question_repository`: question JSONL, SeaCat extraction from transcripts (§3.1).
- `metrics`: Top-N and within-k units (Table 1); `baselines`: Random Forests on TF-IDF.
- `evaluation`: the config-driven build + evaluate used by feedback_nlp/cli/repo.py.
"""

from feedback_nlp.universal_model.predict import median, ranked_labels, vote
from feedback_nlp.universal_model.text import same_top_k, tokenize

__all__ = ["median", "ranked_labels", "same_top_k", "tokenize", "vote"]
