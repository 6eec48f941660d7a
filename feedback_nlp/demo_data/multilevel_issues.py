"""Synthetic customer feedback with L-Coarse and L-Granular issues (paper 000).

Why: the seq2seq issue extractor needs text whose issues are stated in varied words (so it
must paraphrase, not copy), mixed with neutral filler sentences (so it must ignore them), and
gold lists that align 1:1 with the stated issues in text order (so issue shuffling, 000 §4.2,
can move sentences and labels together). Product category and a one-line summary feed the
auxiliary classification and summarisation tasks.
"""

from __future__ import annotations

import random
from datetime import date

from feedback_nlp.demo_data.vocab import (
    CATEGORIES,
    COARSE_OF,
    GRANULAR_TRANSLATIONS,
    TAXONOMY,
    pick,
    spread_timestamps,
    weighted,
)

LANGUAGES = {"en": 0.9, "de": 0.04, "fr": 0.03, "es": 0.03}
N_ISSUES = {1: 0.45, 2: 0.38, 3: 0.17}

# Frames that wrap a lower-case clause; German frames keep the clause a main clause (V2 order).
FRAMES: dict[str, list[str]] = {
    "en": [
        "Unfortunately, {c}.",
        "{C}.",
        "I was disappointed that {c}.",
        "On top of that, {c}.",
        "To make things worse, {c}.",
        "I noticed that {c}.",
        "{C}, which is really annoying.",
        "Sadly, {c}.",
        "The main problem is that {c}.",
        "Also, {c}.",
        "{C} and I am not happy about it.",
    ],
    "de": [
        "{C}.",
        "{C}, sehr enttäuschend.",
        "Leider muss ich sagen: {c}.",
        "Das Problem: {c}.",
        "{C} und das ärgert mich.",
    ],
    "fr": ["Malheureusement, {c}.", "{C}.", "Je suis déçu : {c}.", "En plus, {c}.", "{C}, c'est vraiment dommage."],
    "es": ["Lamentablemente, {c}.", "{C}.", "Qué decepción: {c}.", "Además, {c}.", "{C} y no estoy contento."],
}

OPENERS: dict[str, list[str]] = {
    "en": [
        "I ordered this {product} for my son's birthday.",
        "I bought the {product} as a gift for my wife.",
        "This is my second {product} from this seller.",
        "I was really looking forward to this {product}.",
        "We ordered the {product} about two weeks ago.",
        "I needed a new {product} for the holidays.",
    ],
    "de": [
        "Ich habe das als Geschenk für meine Tochter bestellt.",
        "Ich hatte mich sehr auf diesen Artikel gefreut.",
        "Das ist schon meine zweite Bestellung bei diesem Händler.",
    ],
    "fr": [
        "Je l'ai commandé pour l'anniversaire de mon fils.",
        "J'attendais beaucoup de cet article.",
        "C'est ma deuxième commande chez ce vendeur.",
    ],
    "es": [
        "Lo pedí para el cumpleaños de mi hijo.",
        "Tenía muchas ganas de recibir este artículo.",
        "Es mi segundo pedido a este vendedor.",
    ],
}

# (text per language, coarse issues the sentence would contradict).
CLOSERS: list[tuple[dict[str, str], frozenset[str]]] = [
    (
        {
            "en": "Delivery was on time though.",
            "de": "Die Lieferung war aber pünktlich.",
            "fr": "La livraison était à l'heure quand même.",
            "es": "La entrega llegó a tiempo, eso sí.",
        },
        frozenset({"late delivery"}),
    ),
    (
        {
            "en": "The customer service was friendly at least.",
            "de": "Der Kundenservice war immerhin freundlich.",
            "fr": "Le service client était aimable au moins.",
            "es": "Al menos el servicio al cliente fue amable.",
        },
        frozenset(),
    ),
    (
        {
            "en": "I will probably send it back.",
            "de": "Ich werde es wohl zurückschicken.",
            "fr": "Je vais sûrement le renvoyer.",
            "es": "Probablemente lo devolveré.",
        },
        frozenset(),
    ),
    (
        {
            "en": "Not what I expected for the price.",
            "de": "Für den Preis hatte ich mehr erwartet.",
            "fr": "Je m'attendais à mieux pour ce prix.",
            "es": "Esperaba más por este precio.",
        },
        frozenset(),
    ),
    (
        {
            "en": "Otherwise it works as expected.",
            "de": "Ansonsten funktioniert es wie erwartet.",
            "fr": "Sinon, il fonctionne comme prévu.",
            "es": "Por lo demás funciona bien.",
        },
        frozenset({"damaged item", "quality issue", "battery issue", "connectivity issue", "wrong item"}),
    ),
    (
        {
            "en": "The packaging was nice and sturdy.",
            "de": "Die Verpackung war ordentlich.",
            "fr": "L'emballage était solide.",
            "es": "El embalaje era resistente.",
        },
        frozenset({"packaging issue", "damaged item"}),
    ),
]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def issue_sentence(rng: random.Random, granular: str, language: str, frame: str) -> str:
    """One sentence stating `granular` in `language`: a random paraphrase put in `frame`."""
    if language == "en":
        clause = pick(rng, TAXONOMY[COARSE_OF[granular]][granular])
    else:
        clause = GRANULAR_TRANSLATIONS[granular][("de", "fr", "es").index(language)]
    return frame.format(c=clause, C=_cap(clause))


def summarize(product: str, granular: list[str]) -> str:
    """A one-sentence English summary built from each issue's canonical clause."""
    clauses = [TAXONOMY[COARSE_OF[g]][g][0] for g in granular]
    clauses = [
        f"the {product} {c[3:]}" if c.startswith("it ") else f"they {c[2:]}" if c.startswith("I ") else c
        for c in clauses
    ]
    body = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]
    return f"The customer says {body}."


def generate_feedback(
    rng: random.Random, n: int, start: date = date(2026, 1, 1), months: int = 7, id_prefix: str = "fb"
) -> list[dict]:
    """`n` feedback records (1-3 issues each, 2-5 sentences) dated across `months` months."""
    stamps = spread_timestamps(rng, n, start, months)
    out: list[dict] = []
    for i in range(n):
        language = weighted(rng, LANGUAGES)
        label = pick(rng, sorted(CATEGORIES))
        products, allowed, excluded = CATEGORIES[label]
        product = pick(rng, products)
        pool = [
            g
            for c in allowed
            for g in TAXONOMY[c]
            if g not in excluded and (language == "en" or g in GRANULAR_TRANSLATIONS)
        ]
        granular = rng.sample(pool, weighted(rng, N_ISSUES))
        coarse = list(dict.fromkeys(COARSE_OF[g] for g in granular))
        n_fill = rng.choice([1, 2]) if len(granular) == 1 else weighted(rng, {0: 0.4, 1: 0.4, 2: 0.2})
        n_fill = min(n_fill, 5 - len(granular))
        n_open = 1 if n_fill and rng.random() < 0.55 else 0
        sentences = [pick(rng, OPENERS[language]).format(product=product)] if n_open else []
        frames = rng.sample(FRAMES[language], len(granular))  # no "Also, ... Also, ..." within one text
        sentences += [issue_sentence(rng, g, language, f) for g, f in zip(granular, frames)]
        closers = [t[language] for t, clash in CLOSERS if not clash & set(coarse)]
        sentences += rng.sample(closers, n_fill - n_open)
        out.append(
            {
                "id": f"{id_prefix}-{i + 1:06d}",
                "text": " ".join(sentences),
                "coarse": coarse,
                "granular": granular,
                "created_at": stamps[i],
                "language": language,
                "summary": summarize(product, granular),
                "label": label,
            }
        )
    return out
