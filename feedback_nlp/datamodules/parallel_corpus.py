"""Translation augmentation with a parallel corpus (001 §3.1 "Addressing Multilinguality").

Why: annotated claims are ~90% German, yet the model must serve 18 languages. The paper adds
every annotated comment in the other languages with the same label, so the model learns the
task language-independently. Translations come from a `Translator`:

- `ParallelCorpusTranslator`: translations that already exist as records with `source_id`
  (a vendor's parallel corpus, or the `-tr-<lang>` records of the demo data);
- `HFTranslator`: a Hugging Face seq2seq model by name (NLLB, M2M100, mBART-50, MarianMT).

Shared infrastructure: works for any dataclass record with `id`, `text`, `language` and
`source_id` fields. A translation copies every other field (label, date, split-relevant
fields) from its source, so it lands in its source's split and carries its source's label.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

log = logging.getLogger(__name__)

# ISO 639-1 -> NLLB-200 codes for the 18 Zalando languages (001 §2.1); override by config.
NLLB_CODES = {
    "de": "deu_Latn",
    "pl": "pol_Latn",
    "fr": "fra_Latn",
    "nl": "nld_Latn",
    "en": "eng_Latn",
    "it": "ita_Latn",
    "es": "spa_Latn",
    "sv": "swe_Latn",
    "da": "dan_Latn",
    "no": "nob_Latn",
    "fi": "fin_Latn",
    "cs": "ces_Latn",
    "sk": "slk_Latn",
    "et": "est_Latn",
    "lv": "lvs_Latn",
    "lt": "lit_Latn",
    "sl": "slv_Latn",
    "hr": "hrv_Latn",
}


class Translator(Protocol):
    def translate(self, records: Sequence[Any], languages: Sequence[str] | None) -> list[Any]:
        """Translations of `records` into `languages` (never into a record's own language)."""


def make_translation(source: Any, text: str, language: str, new_id: str | None = None, **marks: Any) -> Any:
    """A copy of `source` in another language: same label/date/fields, `source_id` = source.id."""
    names = {f.name for f in dataclasses.fields(source)}
    missing = {"id", "text", "language", "source_id"} - names
    if missing:
        raise TypeError(f"{type(source).__name__} cannot hold a translation: no field(s) {sorted(missing)}")
    extra = {**getattr(source, "extra", {}), "translation": True, **marks} if "extra" in names else None
    changes = {"id": new_id or f"{source.id}#{language}", "text": text, "language": language, "source_id": source.id}
    if extra is not None:
        changes["extra"] = extra
    return dataclasses.replace(source, **changes)


def augment(records: Sequence[Any], translator: Translator, languages: Sequence[str] | None) -> list[Any]:
    """001 §3.1: `records` plus their translations (each translation right after its source)."""
    by_source: dict[str, list[Any]] = defaultdict(list)
    for tr in translator.translate(records, languages):
        by_source[tr.source_id].append(tr)
    return [x for r in records for x in (r, *by_source.get(r.id, ()))]


class ParallelCorpusTranslator:
    """Looks translations up in records that carry `source_id` (001 §3.1: the parallel corpus).

    Only the translated text, language and id are taken from the corpus record; everything
    else comes from the source, so a translation can never carry a different label or date.
    """

    def __init__(self, corpus: Iterable[Any]):
        self.by_source: dict[str, dict[str, Any]] = defaultdict(dict)
        for rec in corpus:
            if getattr(rec, "source_id", None):
                self.by_source[rec.source_id].setdefault(rec.language, rec)
        self.missing = 0

    @classmethod
    def from_path(
        cls, path: str | Path, kind: str, field_map: Mapping[str, str] | None = None
    ) -> ParallelCorpusTranslator:
        from feedback_nlp.core.records import load_records

        return cls(load_records(path, kind, field_map))

    def languages(self) -> list[str]:
        return sorted({lang for versions in self.by_source.values() for lang in versions})

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_source.values())

    def translate(self, records: Sequence[Any], languages: Sequence[str] | None = None) -> list[Any]:
        out = []
        for rec in records:
            versions = self.by_source.get(rec.id, {})
            wanted = versions.keys() if languages is None else languages
            for lang in wanted:
                if lang == rec.language:
                    continue
                tr = versions.get(lang)
                if tr is None:
                    self.missing += 1
                    continue
                out.append(make_translation(rec, tr.text, lang, tr.id))
        return out


def job_device() -> str:
    """This process's accelerator: `cuda:<LOCAL_RANK>` under torchrun/SLURM/Lightning DDP, else cpu."""
    import torch

    if torch.cuda.is_available():
        local = os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_LOCALID") or "0"
        return f"cuda:{int(local) % torch.cuda.device_count()}"
    return "cpu"


class HFTranslator:
    """Machine translation with a Hugging Face seq2seq model loaded through the model factory.

    style (auto-detected from the model type when "auto"):
      - "forced_bos": NLLB / M2M100 / mBART-50 — `tokenizer.src_lang` and a forced target token;
      - "prefix": one multilingual MarianMT model — ">>code<< " before the source text;
      - "pair": one MarianMT model per language pair — `model_name` holds "{src}" and "{tgt}".
    `lang_codes` maps ISO codes to the model's codes (NLLB defaults built in; M2M100: "__de__").
    Translations are cached on disk (JSONL per model) keyed by (src, tgt, sha256(text)).
    `device`: where the model generates, in batches of `batch_size`; None is the job's device
    (this process's GPU, `cuda:$LOCAL_RANK`, when there is one): translating a corpus on CPU
    next to an idle GPU costs hours on the paper's data.

    Args:
        model_name: Hugging Face seq2seq translation model (style pair: a name holding {src} and {tgt}).
        lang_codes: ISO code -> the model's language code (NLLB codes built in).
        style: How the target language is chosen: auto, forced_bos, prefix or pair.
        batch_size: Texts per generate call.
        max_length: Tokens per source text and per translation.
        num_beams: Beam width of generation (1: greedy).
        cache_dir: Folder of the on-disk translation cache (null: no cache).
        generate_kwargs: Extra keyword arguments for `generate`.
        device: Where the model generates (null: this process's GPU if any, else CPU).
    """

    def __init__(
        self,
        model_name: str,
        lang_codes: Mapping[str, str] | None = None,
        style: str = "auto",
        batch_size: int = 16,
        max_length: int = 256,
        num_beams: int = 1,
        cache_dir: str | None = None,
        generate_kwargs: Mapping[str, Any] | None = None,
        device: str | None = None,
    ):
        self.model_name, self.style, self.batch_size = model_name, style, batch_size
        self.device = device or job_device()
        self.max_length, self.num_beams = max_length, num_beams
        self.generate_kwargs = dict(generate_kwargs or {})
        self.lang_codes = dict(lang_codes or {})
        self._models: dict[str, tuple[Any, Any]] = {}
        self.cache_path = None
        if cache_dir:
            tag = hashlib.sha256(model_name.encode()).hexdigest()[:16]
            self.cache_path = Path(cache_dir) / f"{tag}.jsonl"
        self._cache = self._read_cache()

    # --- cache -----------------------------------------------------------------------------
    def _read_cache(self) -> dict[str, str]:
        if not self.cache_path or not self.cache_path.is_file():
            return {}
        table = {}
        for line in self.cache_path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                table[row["k"]] = row["t"]
            except (json.JSONDecodeError, KeyError):
                continue  # a torn last line from an interrupted run: recomputed
        return table

    def _append_cache(self, rows: dict[str, str]) -> None:
        if not self.cache_path or not rows:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        with self.cache_path.open("a", encoding="utf-8") as f:
            f.write("".join(json.dumps({"k": k, "t": t}, ensure_ascii=False) + "\n" for k, t in rows.items()))

    # --- model -----------------------------------------------------------------------------
    def _load(self, src: str, tgt: str) -> tuple[Any, Any, str]:
        from feedback_nlp.core.model_factory import load_model, load_tokenizer

        name = self.model_name.format(src=src, tgt=tgt) if "{" in self.model_name else self.model_name
        if name not in self._models:
            model = load_model("AutoModelForSeq2SeqLM", name).eval().to(self.device)
            self._models[name] = (model, load_tokenizer(name))
        model, tok = self._models[name]
        style = self.style
        if style == "auto":
            mtype = getattr(model.config, "model_type", "")
            style = "pair" if "{" in self.model_name else "prefix" if mtype == "marian" else "forced_bos"
        return model, tok, style

    def code(self, lang: str, style: str) -> str:
        if lang in self.lang_codes:
            return self.lang_codes[lang]
        if style == "forced_bos" and "nllb" in self.model_name.lower():
            return NLLB_CODES.get(lang, lang)
        if style == "forced_bos" and "m2m100" in self.model_name.lower():
            return f"__{lang}__"
        return lang

    def translate_texts(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        import torch

        keys = [f"{src}>{tgt}:{hashlib.sha256(t.encode('utf-8')).hexdigest()}" for t in texts]
        todo = list(dict.fromkeys(i for i, k in enumerate(keys) if k not in self._cache))
        if todo:
            model, tok, style = self._load(src, tgt)
            new: dict[str, str] = {}
            for b in range(0, len(todo), self.batch_size):
                idx = todo[b : b + self.batch_size]
                batch = [texts[i] for i in idx]
                kwargs = dict(self.generate_kwargs)
                if style == "prefix":
                    batch = [f">>{self.code(tgt, style)}<< {t}" for t in batch]
                elif style == "forced_bos":
                    if hasattr(tok, "src_lang"):
                        tok.src_lang = self.code(src, style)
                    kwargs.setdefault("forced_bos_token_id", tok.convert_tokens_to_ids(self.code(tgt, style)))
                enc = tok(batch, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
                enc.pop("token_type_ids", None)
                enc = {k: v.to(model.device) for k, v in enc.items()}
                gen = {
                    "num_beams": self.num_beams,
                    **({} if "max_new_tokens" in kwargs else {"max_length": self.max_length}),
                    **kwargs,
                }
                with torch.no_grad():
                    out = model.generate(**enc, **gen)
                for i, text in zip(idx, tok.batch_decode(out, skip_special_tokens=True)):
                    new[keys[i]] = text.strip()
            self._cache.update(new)
            self._append_cache(new)
        return [self._cache[k] for k in keys]

    def translate(self, records: Sequence[Any], languages: Sequence[str] | None) -> list[Any]:
        if not languages:
            raise ValueError("HFTranslator needs target languages (data.pc_languages)")
        groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for rec in records:
            for lang in languages:
                if lang != rec.language:
                    groups[(rec.language, lang)].append(rec)
        out, empty = [], 0
        for (src, tgt), recs in groups.items():
            for rec, text in zip(recs, self.translate_texts([r.text for r in recs], src, tgt)):
                if text:
                    out.append(make_translation(rec, text, tgt, translated_by=self.model_name))
                else:
                    empty += 1
        if empty:
            log.warning("HFTranslator(%s): %d empty translations skipped", self.model_name, empty)
        return out


class ParallelCorpus:
    """001 §3.1 translation augmentation as one config section (`data.parallel_corpus`).

    `translator` null: the translations are records that carry `source_id` (in the input, or in
    `path`); else a translator object built from its own nested section (e.g. HFTranslator).
    `languages` null means every language the corpus has. Evaluation translations (the fairness
    KPI) come from the corpus unless `translate_test` sends the test set through the translator.

    Args:
        languages: Target languages (null: every language in the corpus).
        path: Extra JSONL of translated records (each with `source_id`).
        translator: A machine translator built from its own section (e.g. class_path HFTranslator; null: the corpus).
        translate_test: Translate the test set with `translator` too (fairness KPI) instead of using the corpus.
    """

    def __init__(
        self,
        languages: list[str] | None = None,
        path: str | None = None,
        translator: Translator | None = None,
        translate_test: bool = False,
    ):
        if translator is not None and not languages:
            raise ValueError("data.parallel_corpus.translator needs data.parallel_corpus.languages")
        self.languages, self.path, self.translator, self.translate_test = languages, path, translator, translate_test

    def for_training(self, corpus: Iterable[Any]) -> Translator:
        return self.translator if self.translator is not None else ParallelCorpusTranslator(corpus)

    def for_evaluation(self, corpus: Iterable[Any]) -> Translator:
        if self.translator is not None and self.translate_test:
            return self.translator
        return ParallelCorpusTranslator(corpus)
