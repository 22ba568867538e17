"""Which version of the store's content a visitor reads: a knowledge answer, an intent's reply or a canned
reply is written in the store's main language and, where the store wrote them, in others. Pure functions,
no queries: the answer path (inference.answer), the console and the models share them."""

# The line before an answer sent in the store's main language to a visitor who wrote in another one
# (Tenant.Untranslated.MAIN_LANGUAGE). {language} is the name of the main language in the visitor's own.
UNTRANSLATED_NOTES = {
    "en": "We don't have this answer in your language yet, so here it is in {language}:",
    "es": "Todavía no tenemos esta respuesta en tu idioma; aquí la tienes en {language}:",
    "de": "Diese Antwort gibt es noch nicht in Ihrer Sprache, hier ist sie auf {language}:",
    "fr": "Nous n'avons pas encore cette réponse dans votre langue ; la voici en {language} :",
    "it": "Non abbiamo ancora questa risposta nella tua lingua; eccola in {language}:",
    "pt": "Ainda não temos esta resposta no seu idioma; aqui está em {language}:",
}
# Language names, in each language the notes are written in.
LANGUAGE_NAMES = {
    "en": {"en": "English", "es": "Spanish", "de": "German", "fr": "French", "it": "Italian", "pt": "Portuguese"},
    "es": {"en": "inglés", "es": "español", "de": "alemán", "fr": "francés", "it": "italiano", "pt": "portugués"},
    "de": {"en": "Englisch", "es": "Spanisch", "de": "Deutsch", "fr": "Französisch", "it": "Italienisch",
           "pt": "Portugiesisch"},
    "fr": {"en": "anglais", "es": "espagnol", "de": "allemand", "fr": "français", "it": "italien", "pt": "portugais"},
    "it": {"en": "inglese", "es": "spagnolo", "de": "tedesco", "fr": "francese", "it": "italiano", "pt": "portoghese"},
    "pt": {"en": "inglês", "es": "espanhol", "de": "alemão", "fr": "francês", "it": "italiano", "pt": "português"},
}


def untranslated_note(language: str, main_language: str) -> str:
    """The platform's line (in `language`, English when it has none) before an answer in `main_language`."""
    note_language = language if language in UNTRANSLATED_NOTES else "en"
    name = LANGUAGE_NAMES[note_language].get(main_language, main_language)
    return UNTRANSLATED_NOTES[note_language].format(language=name)


def content_language(language: str, main_language: str, listed: list[str] | None, continued: str = "") -> str:
    """The language the bot's content should be in for a message in `language`: the message's; when that is
    unclear ("ok", "vale"), the conversation's (`continued`: its latest clear message's) if the store lists
    it, else "", and then the version the message matched answers. A store that lists no languages writes
    one version of its content and answers every message with it, as it always did: its main language."""
    if not listed:
        return main_language
    return language or (continued if continued in listed else "")


def version_in(language: str, main_language: str, main: str, translations: dict | None,
               key: str | None = None) -> str | None:
    """The text of content in `language`: `main` in the main language, else the store's translation
    (`translations[language]`, or `translations[language][key]` for a knowledge entry); None when the
    store wrote none in that language."""
    if language == main_language:
        return main
    version = (translations or {}).get(language)
    if key is not None:
        version = version.get(key) if isinstance(version, dict) else None
    return version if isinstance(version, str) and version.strip() else None
