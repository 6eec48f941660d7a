"""002 §3.3: Random Forest baselines on TF-IDF of the same repository questions.

Why: the paper's claim is that the training-free universal model beats a supervised model
trained on the same questions (Table 1). A RandomForestClassifier gives a ranked class list
(by predicted probability) for Top-N, a RandomForestRegressor a point estimate for within-k;
both see the very tokens BM25 sees.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from feedback_nlp.universal_model.text import tokenize


class RandomForestBaseline:
    """TF-IDF + one RF classifier per categorical label and one RF regressor per numeric label."""

    def __init__(
        self, n_estimators: int = 100, max_features: int | None = None, min_df: int = 1, seed: int = 0, n_jobs: int = 1
    ):
        self.n_estimators, self.max_features, self.min_df, self.seed, self.n_jobs = (
            n_estimators,
            max_features,
            min_df,
            seed,
            n_jobs,
        )
        self.vectorizer: Any = None
        self.classifiers: dict[str, Any] = {}
        self.regressors: dict[str, Any] = {}

    def fit(
        self,
        texts: Sequence[str],
        categorical: dict[str, Sequence[Hashable]],
        numeric: dict[str, Sequence[float | None]],
    ) -> RandomForestBaseline:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(
            tokenizer=tokenize, lowercase=False, token_pattern=None, min_df=self.min_df, max_features=self.max_features
        )
        x = self.vectorizer.fit_transform(texts)
        kw = {"n_estimators": self.n_estimators, "random_state": self.seed, "n_jobs": self.n_jobs}
        for name, labels in categorical.items():
            keep = [i for i, y in enumerate(labels) if y is not None]
            self.classifiers[name] = RandomForestClassifier(**kw).fit(x[keep], [labels[i] for i in keep])
        for name, values in numeric.items():
            keep = [i for i, y in enumerate(values) if y is not None]
            if keep:
                self.regressors[name] = RandomForestRegressor(**kw).fit(x[keep], [values[i] for i in keep])
        return self

    def predict(self, texts: Sequence[str]) -> dict[str, list[Any]]:
        """{categorical name: ranked class lists, numeric name: point predictions}."""
        x = self.vectorizer.transform(texts)
        out: dict[str, list[Any]] = {}
        for name, clf in self.classifiers.items():
            proba = clf.predict_proba(x)
            order = np.argsort(-proba, axis=1, kind="stable")
            classes = clf.classes_.tolist()
            out[name] = [[classes[j] for j in row] for row in order]
        for name, reg in self.regressors.items():
            out[name] = [float(v) for v in reg.predict(x)]
        return out
