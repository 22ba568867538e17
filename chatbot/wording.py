"""The platform's own words (not a store's): the six languages it writes its texts in, which one a visitor
gets, and the month and weekday names its dates use. The tables of words live with what says them
(chatbot.actions.texts, chatbot.mail.texts, chatbot.conversations.hours); this is what they share."""
from chatbot.models import language_code

LANGUAGES = ("en", "es", "de", "fr", "it", "pt")

MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"],
    "it": ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
           "ottobre", "novembre", "dicembre"],
    "pt": ["janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
           "novembro", "dezembro"],
}
WEEKDAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
    "de": ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"],
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "it": ["lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"],
    "pt": ["segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo"],
}


def written_in(*candidates: str) -> str:
    """The first of `candidates` (language tags, e.g. the message's, the conversation's, the store's main one)
    the platform writes in, else English."""
    for candidate in candidates:
        code = language_code(candidate)
        if code in LANGUAGES:
            return code
    return "en"


def words(tables: dict, language: str) -> dict:
    """`tables[language]`, or the English table for a language the platform does not write."""
    return tables.get(language_code(language), tables["en"])
