"""Knowledge-base retrieval with the sentence encoder: grounds every bot reply."""
import functools
from dataclasses import dataclass, field

import numpy as np

from chatbot.content import version_in
from chatbot.conversations import selectors
from nlu.classifier import encoder_shared
from nlu.encoder import sentence_vectors

from inference import bases, registry
from inference.device import inference_device
from inference.responder.placeholders import values_strip


def retrieval_text(text: str) -> str:
    """A message as retrieval reads it: order numbers, emails and the like must not steer the match."""
    return values_strip(text) or text


class SentenceEncoder:
    """Sentence embeddings from a local encoder folder, on the inference device.

    `scores` rescales cosines from the base's floor (inference.bases: e5 scores unrelated texts high), so a
    store's thresholds mean about the same on either base; every search scores through it."""

    def __init__(self, path: str, max_length: int = 128, prefix: str = "", score_floor: float = 0.0):
        # The process's one float copy of the base, which classifiers on it share too (nlu.classifier).
        self.tokenizer, model = encoder_shared(path)
        self.model = model.to(inference_device()).eval()
        self.max_length, self.prefix, self.score_floor = max_length, prefix, score_floor
        # The last few messages' vectors: the knowledge base and the intent replies search with the same one.
        self._query = functools.lru_cache(maxsize=32)(lambda text: self.encode([text])[0])

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return sentence_vectors(self.model, self.tokenizer, [self.prefix + t for t in texts], batch_size,
                                self.max_length)

    def scores(self, vectors: np.ndarray, text: str) -> np.ndarray:
        """How close each of `vectors` is to `text` (the search's query): 1 the same, about 0 unrelated."""
        cosines = vectors @ self.query(text)
        return (cosines - self.score_floor) / (1 - self.score_floor) if self.score_floor else cosines

    def query(self, text: str) -> np.ndarray:
        """The vector a search for `text` uses (`retrieval_text`), encoded once per message."""
        return self._query(retrieval_text(text))


@dataclass
class Hit:
    entry_id: int
    question: str  # in the store's main language
    answer: str
    score: float
    translations: dict = field(default_factory=dict)  # KnowledgeEntry.translations
    matched: str = ""  # the language of the version that matched ("" : the main one)

    def as_grounding(self) -> dict:
        grounding = {"entry": self.entry_id, "question": self.question, "score": round(self.score, 4)}
        return grounding | ({"matched": self.matched} if self.matched else {})

    def answer_in(self, language: str, main_language: str) -> str | None:
        """The entry's answer in `language`, or None when the store wrote none in it."""
        return version_in(language, main_language, self.answer, self.translations, "answer")


class KnowledgeIndex:
    """A tenant's active entries with their embeddings: one row per language version of an entry, so a
    message matches the version in its own language; a search returns each entry once, at its best."""

    def __init__(self, entries: list, encoder: SentenceEncoder):
        self.entries = [(e.id, e.question, e.answer, e.translations or {}) for e in entries]
        self.encoder = encoder
        self.rows = [(i, "", q, a) for i, (_, q, a, _) in enumerate(self.entries)]
        self.rows += [(i, language, version["question"], version["answer"])
                      for i, (*_, translations) in enumerate(self.entries)
                      for language, version in sorted(translations.items()) if isinstance(version, dict)]
        # Question and answer together: on the demo data this finds better answers than the
        # question alone (ROUGE-L 0.307 vs 0.295 at the same share of messages answered;
        # 0.313 with the message's order numbers and the like stripped).
        self.vectors = encoder.encode([f"{q} {a}" for *_, q, a in self.rows]) if self.rows else None

    def search(self, text: str, k: int = 3) -> list[Hit]:
        if not self.rows:
            return []
        scores = self.encoder.scores(self.vectors, text)
        hits: dict[int, Hit] = {}
        for row in np.argsort(-scores):
            entry, language = self.rows[row][:2]
            if entry not in hits:
                entry_id, question, answer, translations = self.entries[entry]
                hits[entry] = Hit(entry_id, question, answer, float(scores[row]), translations, language)
                if len(hits) == k:
                    break
        return list(hits.values())


def languages_of(tenant_id: int, languages: list[str] | None = None) -> list[str]:
    """The store's Tenant.languages: `languages` when the caller holds the store already (the answer path,
    once per message), else read."""
    return selectors.tenant_languages(tenant_id) if languages is None else languages


def sentence_encoder(tenant_id: int | None = None, languages: list[str] | None = None) -> SentenceEncoder:
    """The encoder of the store's base (inference.bases: multilingual when it lists another language than
    English); without a store, the retrieval model of the settings. Loaded once per process."""
    base = bases.retrieval_base(languages_of(tenant_id, languages) if tenant_id else [])
    return registry.get(("encoder", base.path),
                        lambda: SentenceEncoder(base.path, prefix=base.prefix, score_floor=base.score_floor))


def encoder_version(languages: list[str]) -> str:
    """Which base a store listing `languages` builds its indexes with: part of their cache keys, so listing
    a first language other than English rebuilds them on the multilingual base."""
    return "multilingual" if bases.multilingual(languages) else "english"


def knowledge_index(tenant_id: int, languages: list[str] | None = None) -> KnowledgeIndex:
    """The tenant's index, rebuilt when its knowledge or its base changed since it was built."""
    languages = languages_of(tenant_id, languages)
    return registry.get_versioned(
        "knowledge", tenant_id, (selectors.knowledge_version(tenant_id), encoder_version(languages)),
        lambda: KnowledgeIndex(selectors.knowledge_for_tenant(tenant_id), sentence_encoder(tenant_id, languages)))


def knowledge_search(tenant_id: int, text: str, k: int = 3, languages: list[str] | None = None) -> list[Hit]:
    """The `k` entries closest to `text`; `languages`: the store's, when the caller has them."""
    return knowledge_index(tenant_id, languages).search(text, k)
