"""The console's texts page (a store's bot texts and its `untranslated` choice, each language side by side) and
canned replies' versions in the store's other languages, which the inbox's data carries for console.js."""
import json
import re

import pytest
from django.utils.html import escape

from chatbot.console import canned, texts
from chatbot.content import untranslated_note
from chatbot.conversations import services
from chatbot.errors import NotFound, PermissionDenied
from chatbot.models import CannedReply, Tenant
from tests.factories import TenantFactory, agent_of

pytestmark = pytest.mark.django_db

DATA_SCRIPT = re.compile(r'<script id="console-data" type="application/json">(.*?)</script>', re.S)


@pytest.fixture
def store():
    return TenantFactory(name="Alpha Outfitters", slug="alpha", languages=["en", "es", "de"],
                         translations={"de": {"greeting": "Hallo!"}})


@pytest.fixture
def other_store():
    return TenantFactory(name="Bravo Bikes", slug="bravo", languages=["es", "en"])


@pytest.fixture
def manager(store):
    return agent_of(store, role="manager", username="mia")


@pytest.fixture
def agent(store):
    return agent_of(store, username="ada")


def texts_form(store: Tenant, **extra) -> dict:
    """The texts page's fields as the store has them."""
    data = {"tenant": store.slug, "untranslated": store.untranslated}
    for name in texts.MAIN_TEXTS:
        data[name] = getattr(store, name)
    for language in ("es", "de"):
        for name in (*texts.MAIN_TEXTS, "untranslated_note"):
            data[f"{name}_{language}"] = (store.translations.get(language) or {}).get(name, "")
    return {**data, **extra}


def field_errors(html: str, field: str) -> list[str]:
    block = re.search(rf'id="id_{field}".*?(?=<div class="version-cell|</section>)', html, re.S)
    assert block, f"no field {field} on the page"
    return re.findall(r'<p class="field-error" role="alert">(.*?)</p>', block.group(0))


# --- the store's texts -------------------------------------------------------------------------------------


def test_manager_saves_texts_in_each_language_and_the_untranslated_choice(client, store, manager):
    client.force_login(manager)
    page = client.get("/console/texts/").content.decode()
    rows = re.findall(r'<div class="text-row" data-text="(\w+)">', page)
    assert rows == ["greeting", "fallback_text", "handoff_text", "no_agent_text", "complaint_text",
                    "untranslated_note"]
    greeting = re.search(r'data-text="greeting".*?</div>\s*</div>\s*</div>', page, re.S).group(0)
    assert re.findall(r'data-lang="(\w+)"', greeting) == ["en", "es", "de"]
    assert "Hallo!" in greeting
    # The note has no field in the main language: the platform's wording, read only.
    assert escape(untranslated_note("en", "en")) in page and 'name="untranslated_note"' not in page
    assert 'name="untranslated_note_es"' in page and 'value="hand_off" ' in page

    response = client.post("/console/texts/", texts_form(
        store, greeting="Hi there!", greeting_es="¡Hola!", greeting_de="", handoff_text_es="Te paso con una persona.",
        untranslated_note_es="No tenemos esta respuesta en español:", untranslated="main_language"))
    assert response.status_code == 302 and response.url == "/console/texts/?tenant=alpha"
    store.refresh_from_db()
    assert store.greeting == "Hi there!" and store.untranslated == Tenant.Untranslated.MAIN_LANGUAGE
    assert store.translations == {"es": {"greeting": "¡Hola!", "handoff_text": "Te paso con una persona.",
                                         "untranslated_note": "No tenemos esta respuesta en español:"}}
    assert store.text("greeting", "de") == "Hi there!"  # emptied: the main text is sent
    assert "Saved Alpha Outfitters&#x27;s texts." in client.get(response.url).content.decode()


@pytest.mark.parametrize("fields, field, error", [
    ({"greeting": "  "}, "greeting", "Write this text: the bot sends it."),
    ({"greeting": "x" * 501}, "greeting", "The greeting has at most 500 characters"),
    ({"fallback_text_es": "x" * 1001}, "fallback_text_es", "The Español fallback text has at most 1000 characters"),
])
def test_invalid_texts_are_refused_on_their_field_and_store_nothing(client, store, manager, fields, field, error):
    client.force_login(manager)
    response = client.post("/console/texts/", texts_form(store, handoff_text_es="Te paso con una persona.",
                                                         untranslated="main_language", **fields))
    assert response.status_code == 400
    assert any(e.startswith(error) for e in field_errors(response.content.decode(), field))
    fresh = Tenant.objects.get(pk=store.pk)
    assert (fresh.translations, fresh.untranslated) == ({"de": {"greeting": "Hallo!"}}, "hand_off")


def test_an_unknown_untranslated_choice_is_refused(client, store, manager):
    client.force_login(manager)
    response = client.post("/console/texts/", texts_form(store, untranslated="guess"))
    assert response.status_code == 400 and "Choose what the bot does." in response.content.decode()
    with pytest.raises(texts.StoreTextsInvalid) as refused:
        texts.store_texts_save(manager, store, untranslated="guess")
    assert (refused.value.code, refused.value.field) == ("invalid_untranslated", "untranslated")


@pytest.mark.parametrize("main, translations, code, field", [
    ({"untranslated_note": "Here:"}, None, "unknown_text", "translations"),
    (None, {"fr": {"greeting": "Bonjour !"}}, "language_not_listed", "greeting_fr"),
    (None, {"en": {"greeting": "Hello!"}}, "language_not_listed", "greeting_en"),
    (None, {"es": {"farewell": "¡Adiós!"}}, "unknown_text", "translations"),
    (None, {"es": {"greeting": 3}}, "invalid_text", "greeting_es"),
    (None, {"es": {"greeting": "¡Hola\x00!"}}, "invalid_text", "greeting_es"),
    (None, {"es": "¡Hola!"}, "invalid_translations", "translations"),
])
def test_the_service_refuses_what_the_store_cannot_send(store, manager, main, translations, code, field):
    with pytest.raises(texts.StoreTextsInvalid) as refused:
        texts.store_texts_save(manager, store, main, translations)
    assert (refused.value.code, refused.value.field) == (code, field)
    store.refresh_from_db()
    assert store.translations == {"de": {"greeting": "Hallo!"}}


def test_a_text_left_out_is_kept_and_an_empty_one_removed(store, manager):
    texts.store_texts_save(manager, store, translations={"es": {"greeting": "¡Hola!"}, "fr": {"greeting": ""}})
    texts.store_texts_save(manager, store, translations={"de": {"greeting": ""}})
    store.refresh_from_db()
    assert store.translations == {"es": {"greeting": "¡Hola!"}}


def test_agents_get_403_and_another_store_is_404(client, store, other_store, agent, manager):
    client.force_login(agent)
    assert client.get("/console/texts/").status_code == 403
    assert client.post("/console/texts/", texts_form(store, greeting="Hacked")).status_code == 403
    with pytest.raises(PermissionDenied):
        texts.store_texts_save(agent, store, {"greeting": "Hacked"})
    client.force_login(manager)
    assert client.get("/console/texts/?tenant=bravo").status_code == 404
    assert client.post("/console/texts/", {**texts_form(store), "tenant": "bravo"}).status_code == 404
    with pytest.raises(NotFound):
        texts.store_texts_save(manager, other_store, {"greeting": "Hacked"})
    assert Tenant.objects.filter(greeting="Hacked").count() == 0


# --- canned replies in each language ---------------------------------------------------------------------


def test_canned_reply_form_has_a_reply_per_language_and_saves_them(client, store, manager):
    client.force_login(manager)
    page = client.get("/console/canned/").content.decode()
    assert re.findall(r'<label class="field-label" for="id_(text\w*)">(.*?)</label>', page) == [
        ("text", "Reply (English)"), ("text_es", "Reply (Español)"), ("text_de", "Reply (Deutsch)")]
    response = client.post("/console/canned/", {"tenant": "alpha", "shortcut": "thanks", "text": "Thank you!",
                                                "text_es": " ¡Gracias! ", "text_de": ""})
    assert response.status_code == 302
    reply = CannedReply.objects.get(tenant=store)
    assert (reply.text, reply.translations) == ("Thank you!", {"es": "¡Gracias!"})

    edit = client.get(f"/console/canned/{reply.id}/").content.decode()
    assert "¡Gracias!" in edit and 'lang="es"' in edit
    client.post(f"/console/canned/{reply.id}/", {"shortcut": "thanks", "text": "Thank you!", "text_es": "",
                                                 "text_de": "Danke!"})
    reply.refresh_from_db()
    assert reply.translations == {"de": "Danke!"}
    listed = client.get("/console/canned/").content.decode()
    assert re.findall(r'class="badge (badge-lang\S*)" data-lang="(\w+)"', listed) == [
        ("badge-lang", "en"), ("badge-lang-missing", "es"), ("badge-lang", "de")]


def test_an_invalid_canned_version_is_refused_on_its_field(client, store, manager):
    client.force_login(manager)
    response = client.post("/console/canned/", {"tenant": "alpha", "shortcut": "thanks", "text": "Thank you!",
                                                "text_es": "x" * 2001})
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="id_text_es".*?A reply has at most 2000 characters \(this one has 2001\)\.', html, re.S)
    assert not CannedReply.objects.exists()
    with pytest.raises(canned.CannedReplyInvalid) as refused:
        canned.canned_reply_save(manager, store, "thanks", "Thank you!", translations={"fr": "Merci !"})
    assert (refused.value.code, refused.value.field) == ("language_not_listed", "text_fr")
    with pytest.raises(canned.CannedReplyInvalid) as refused:
        canned.canned_reply_save(manager, store, "thanks", "Thank you!", translations="¡Gracias!")
    assert refused.value.code == "invalid_translations"
    assert not CannedReply.objects.exists()


def test_a_manager_of_stores_in_different_languages_gets_a_version_for_each(client, store, other_store, manager):
    services.agent_add(other_store, "mia", role="manager")
    client.force_login(manager)
    page = client.get("/console/canned/").content.decode()
    labels = re.findall(r'<label class="field-label" for="id_(text\w*)">', page)
    assert labels == ["text", "text_es", "text_de", "text_en"]
    response = client.post("/console/canned/", {"tenant": "bravo", "shortcut": "hola", "text": "¡Hola!",
                                                "text_de": "Hallo!"})
    assert response.status_code == 400
    assert "Deutsch is not one of the languages Bravo Bikes lists (es, en)" in response.content.decode()
    response = client.post("/console/canned/", {"tenant": "bravo", "shortcut": "hola", "text": "¡Hola!",
                                                "text_en": "Hello!", "text_es": "", "text_de": ""})
    assert response.status_code == 302
    assert CannedReply.objects.get(tenant=other_store).translations == {"en": "Hello!"}


def test_the_inbox_data_carries_each_replys_versions_and_main_language(client, store, agent):
    CannedReply.objects.create(tenant=store, shortcut="thanks", text="Thank you!", translations={"es": "¡Gracias!"})
    client.force_login(agent)
    html = client.get("/console/").content.decode()
    data = json.loads(DATA_SCRIPT.search(html).group(1))
    assert data["canned"] == [{"tenant": "alpha", "shortcut": "thanks", "text": "Thank you!", "language": "en",
                               "translations": {"es": "¡Gracias!"}}]
