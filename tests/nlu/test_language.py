"""Language detection of short chat messages (nlu.language): the usual languages of a store's visitors,
one clear word of a language included, and no foreign label on text too short or ambiguous to have one."""
import pytest

from nlu import language
from nlu.language import detect_language

MESSAGES = [
    ("¿Hacen envíos a México?", "es"), ("Quiero devolver mis zapatos", "es"), ("necesito hablar con una persona", "es"),
    ("gracias", "es"), ("where is my order", "en"), ("Can I pay with PayPal?", "en"),
    ("how long does shipping take", "en"), ("I want a refund for order NW-12345", "en"),
    ("Wo ist meine Bestellung?", "de"), ("Ich möchte mit einem Menschen sprechen", "de"),
    ("merci beaucoup", "fr"), ("Bonjour, où est ma commande ?", "fr"), ("Onde está o meu pedido?", "pt"),
    ("Dov'è il mio ordine?", "it"), ("Waar is mijn bestelling?", "nl"), ("Где мой заказ?", "ru"),
    ("我的订单在哪里", "zh"), ("注文はどこですか", "ja"), ("thank you so much!", "en"), ("Thank you so much!!", "en"),
    # one word fastText cannot tell, its words can
    ("Oui", "fr"), ("Annuler", "fr"), ("Abbrechen", "de"), ("Hazlo", "es"), ("hola", "es"), ("Obrigado", "pt"),
    # a script of its own: one Han character is enough
    ("取消", "zh"), ("好", "zh"), ("Γεια σας", "el"),
]
AMBIGUOUS = ["ok", "hi", "hello", "NW-123456", "12345", "order 4432", "?", "👍", "jo@example.com",
             "https://shop.example/p/12", "ja", "lol", "thx", "PayPal", "iPhone 15", "XL", "no", "super", "@anna #sale", ""]


@pytest.mark.parametrize("text, expected", MESSAGES)
def test_a_chat_message_gets_its_language(text, expected):
    found = detect_language(text)
    assert found.language == expected, found
    assert found.source != "model" or found.confidence >= language.MIN_CONFIDENCE


@pytest.mark.parametrize("text", AMBIGUOUS)
def test_short_or_ambiguous_text_gets_no_language_rather_than_a_guess(text):
    assert detect_language(text).language == ""
    assert detect_language(text, prefer=["es"]).language == ""  # not "en" for a Spanish store either
    assert detect_language(text, prefer=["en"]).language == ""  # nor "es" for an English one


def test_order_numbers_addresses_and_links_do_not_count():
    assert language.language_text("Where is NW-482913? mail jo@example.com or see https://x.example/a") == \
        "Where is mail or see"
    assert language.language_text("¡Gracias! It's great, isn't it?") == "¡Gracias It's great isn't it"
    assert language.language_text("@anna loves #sale 选择2号") == "loves 选择 号"
    assert detect_language("¿Dónde está mi pedido NW-482913?").language == "es"


def test_a_stores_own_language_wins_a_close_call(monkeypatch):
    # words no list holds: fastText alone decides
    monkeypatch.setattr(language, "candidates", lambda text, k=3: [("de", 0.55), ("en", 0.40), ("nl", 0.02)])
    assert detect_language("blorf zibbet").language == "de"
    found = detect_language("blorf zibbet", prefer=["en"])
    assert (found.language, found.guess) == ("en", "de")
    monkeypatch.setattr(language, "candidates", lambda text, k=3: [("de", 0.9), ("en", 0.05)])
    assert detect_language("blorf zibbet", prefer=["en"]).language == "de"  # not close: German it is


def test_one_word_needs_more_confidence_than_a_sentence(monkeypatch):
    monkeypatch.setattr(language, "candidates", lambda text, k=3: [("fr", 0.7)])
    assert detect_language("blorf").language == ""
    assert detect_language("blorf zibbet").language == "fr"


def test_clear_words_outweigh_fasttext():
    # fastText finds these English; every word is German (French)
    found = detect_language("Was war das wieder", prefer=["en"])
    assert (found.language, found.guess, found.source) == ("de", "en", "words")
    assert detect_language("salut, petite question", prefer=["en"]).language == "fr"
    # fastText finds "Ja gut" Finnish; for a store that speaks German its words are German
    assert detect_language("Ja gut", prefer=["en", "de"]).language == "de"


def test_english_words_alone_and_common_words_are_not_foreign():
    # "thanks" is English, but written in every language's chats: a Spanish store keeps the visitor
    assert detect_language("thanks").language in ("", "en")
    assert detect_language("thanks", prefer=["es"]).language == ""
    # "vale" is a little more Portuguese than Spanish, and common in Spanish
    assert detect_language("vale", prefer=["es"]).language in ("", "es")


def test_a_script_of_its_own_tells_what_fasttext_cannot():
    assert detect_language("选择2号").language in ("zh", "ja")
    assert detect_language("选择2号", prefer=["en", "zh"]).language == "zh"  # Han alone: the store's of the two
    assert detect_language("注文はどこですか", prefer=["zh"]).language == "ja"  # kana: Japanese
    assert detect_language("Где мой заказ?", prefer=["uk"]).language == "ru"  # fastText tells these apart


def test_the_detector_is_loaded_once_and_never_downloads(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("language detection tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(language, "_detector", None)
    assert language.get() is language.get()
    assert detect_language("¿Hacen envíos a México?").language == "es"
