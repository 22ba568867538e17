"""The console's knowledge page: a store's entries with their versions in each language the store lists, side by
side; managers write them through chatbot.console.knowledge, agents get 403, another store's entry is 404."""
import re

import pytest

from chatbot.console import knowledge
from chatbot.conversations import services
from chatbot.errors import NotFound, PermissionDenied, ServiceError
from chatbot.models import CONTENT_MAX_LENGTH, KnowledgeEntry
from tests.factories import KnowledgeEntryFactory, TenantFactory, agent_of

pytestmark = pytest.mark.django_db

SPANISH = {"question": "¿Cuánto tarda el envío?", "answer": "El envío tarda de 3 a 5 días hábiles."}


@pytest.fixture
def store():
    return TenantFactory(name="Alpha Outfitters", slug="alpha", languages=["en", "es", "de"])


@pytest.fixture
def other_store():
    return TenantFactory(name="Bravo Bikes", slug="bravo", languages=["en", "es"])


@pytest.fixture
def manager(store):
    return agent_of(store, role="manager", username="mia")


@pytest.fixture
def agent(store):
    return agent_of(store, username="ada")


@pytest.fixture
def entry(store):
    return KnowledgeEntryFactory(tenant=store, question="How long does shipping take?",
                                 answer="Shipping takes 3 to 5 business days.", category="shipping")


def form(question="How long does shipping take?", answer="Shipping takes 3 to 5 business days.", **extra) -> dict:
    return {"tenant": "alpha", "category": "shipping", "question": question, "answer": answer,
            "question_es": "", "answer_es": "", "question_de": "", "answer_de": "", **extra}


def field_errors(html: str, field: str) -> list[str]:
    """The errors the page shows under a field (by the field's id)."""
    block = re.search(rf'id="id_{field}".*?(?=<div class="field|</section>)', html, re.S)
    assert block, f"no field {field} on the page"
    return re.findall(r'<p class="field-error" role="alert">(.*?)</p>', block.group(0))


# --- the service -------------------------------------------------------------------------------------------


def test_manager_saves_an_entry_with_its_spanish_version(store, manager):
    saved = knowledge.knowledge_entry_save(manager, store, "  How long does shipping take? ", "3 to 5 days.",
                                           translations={"es": SPANISH, "de": {"question": "", "answer": ""}},
                                           category=" shipping ")
    saved.refresh_from_db()
    assert (saved.question, saved.answer, saved.category) == ("How long does shipping take?", "3 to 5 days.",
                                                              "shipping")
    assert saved.translations == {"es": SPANISH}


def test_an_edit_keeps_the_versions_it_does_not_mention_and_an_empty_pair_removes_one(store, manager, entry):
    german = {"question": "Wie lange dauert der Versand?", "answer": "3 bis 5 Werktage."}
    entry.translations = {"es": SPANISH, "de": german}
    entry.save()
    knowledge.knowledge_entry_save(manager, store, entry.question, entry.answer, entry_id=entry.id,
                                   translations={"es": {"question": " ", "answer": ""}})
    entry.refresh_from_db()
    assert entry.translations == {"de": german}
    knowledge.knowledge_entry_save(manager, store, entry.question, entry.answer, entry_id=entry.id)
    entry.refresh_from_db()
    assert entry.translations == {"de": german}


@pytest.mark.parametrize("translations, code, field", [
    ({"es": {"question": "¿Cuánto tarda?", "answer": ""}}, "version_incomplete", "answer_es"),
    ({"es": {"question": "", "answer": "Tres días."}}, "version_incomplete", "question_es"),
    ({"es": {"question": "¿Cuánto?", "answer": "x" * (CONTENT_MAX_LENGTH + 1)}}, "answer_too_long", "answer_es"),
    ({"fr": {"question": "Combien de temps ?", "answer": "Trois jours."}}, "language_not_listed", "translations"),
    ({"xx1": {"question": "?", "answer": "!"}}, "language_not_listed", "translations"),
    ({"en": {"question": "How long?", "answer": "Three days."}}, "language_not_listed", "translations"),
    ({"es": "¿Cuánto tarda?"}, "invalid_translations", "translations"),
    (["es"], "invalid_translations", "translations"),
])
def test_invalid_versions_are_refused_on_their_field_and_store_nothing(store, manager, entry, translations, code,
                                                                       field):
    with pytest.raises(knowledge.KnowledgeEntryInvalid) as refused:
        knowledge.knowledge_entry_save(manager, store, "Changed?", "Changed.", entry_id=entry.id,
                                       translations=translations)
    assert (refused.value.code, refused.value.field) == (code, field)
    entry.refresh_from_db()
    assert (entry.question, entry.translations) == ("How long does shipping take?", {})


@pytest.mark.parametrize("question, answer, category, code, field", [
    ("", "An answer.", "", "question_required", "question"),
    ("A question?", "  ", "", "answer_required", "answer"),
    ("x" * (CONTENT_MAX_LENGTH + 1), "An answer.", "", "question_too_long", "question"),
    ("A question?", "An\x00answer.", "", "invalid_text", "answer"),
    ("A question?", "An answer.", "c" * 51, "category_too_long", "category"),
])
def test_invalid_main_texts_are_refused(store, manager, question, answer, category, code, field):
    with pytest.raises(knowledge.KnowledgeEntryInvalid) as refused:
        knowledge.knowledge_entry_save(manager, store, question, answer, category=category)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert not KnowledgeEntry.objects.exists()


def test_agents_and_other_stores_cannot_write(store, other_store, manager, agent, entry):
    theirs = KnowledgeEntryFactory(tenant=other_store)
    with pytest.raises(PermissionDenied):
        knowledge.knowledge_entry_save(agent, store, "Q?", "A.")
    with pytest.raises(PermissionDenied):
        knowledge.knowledge_entry_activate(agent, entry.id, False)
    with pytest.raises(NotFound):
        knowledge.knowledge_entry_save(manager, "bravo", "Q?", "A.")
    with pytest.raises(NotFound):
        knowledge.knowledge_entry_save(manager, store, "Q?", "A.", entry_id=theirs.id)
    with pytest.raises(NotFound):
        knowledge.knowledge_entry_delete(manager, theirs.id)
    theirs.refresh_from_db()
    assert theirs.tenant_id == other_store.id and KnowledgeEntry.objects.filter(tenant=store).count() == 1


def test_the_list_finds_entries_by_any_version_and_by_a_missing_language(store, manager, entry):
    german = {"question": "Gibt es Geschenkgutscheine?", "answer": "Ja, ab 10 Euro."}
    both = KnowledgeEntryFactory(tenant=store, question="Do you sell gift cards?", answer="Yes, from 10 euros.",
                                 translations={"es": {"question": "¿Venden tarjetas regalo?", "answer": "Sí."},
                                               "de": german})
    assert [e.id for e in knowledge.knowledge_entries(store, "geschenk")] == [both.id]
    assert [e.id for e in knowledge.knowledge_entries(store, "SHIPPING")] == [entry.id]
    assert [e.id for e in knowledge.knowledge_entries(store, missing="any")] == [entry.id]
    assert [e.id for e in knowledge.knowledge_entries(store, missing="de")] == [entry.id]
    assert knowledge.missing_count(store) == 1
    assert list(knowledge.knowledge_entries(store, "\x00")) != []  # a NUL never reaches PostgreSQL
    with pytest.raises(ServiceError) as refused:
        knowledge.knowledge_entries(store, missing="fr")
    assert refused.value.code == "invalid_filter"


# --- the pages -----------------------------------------------------------------------------------------------


def test_manager_sees_the_entries_with_their_languages(client, store, manager, entry):
    KnowledgeEntryFactory(tenant=store, question="Do you ship abroad?", translations={"es": SPANISH},
                          is_active=False)
    client.force_login(manager)
    response = client.get("/console/knowledge/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '>Knowledge</a>' in html and "How long does shipping take?" in html and "Do you ship abroad?" in html
    row = re.search(rf'data-id="{entry.id}".*?</tr>', html, re.S).group(0)
    assert re.findall(r'data-lang="(\w+)" data-written="(\w+)"', row) == [("en", "true"), ("es", "false"),
                                                                         ("de", "false")]
    assert "2 missing a language" in html
    filtered = client.get("/console/knowledge/?missing=de&q=shipping").content.decode()
    assert "How long does shipping take?" in filtered and "1 of 2 entries" in filtered
    assert client.get("/console/knowledge/?missing=fr").status_code == 400


def test_manager_edits_the_versions_side_by_side(client, store, manager, entry):
    client.force_login(manager)
    page = client.get(f"/console/knowledge/{entry.id}/").content.decode()
    columns = re.findall(r'<section class="version[^"]*" data-lang="(\w+)"', page)
    assert columns == ["en", "es", "de"]  # the main language first
    assert 'name="question_es"' in page and 'lang="es"' in page

    response = client.post(f"/console/knowledge/{entry.id}/?q=ship",
                           form(question_es=SPANISH["question"], answer_es=SPANISH["answer"]))
    assert response.status_code == 302 and response.url == "/console/knowledge/?tenant=alpha&q=ship"
    entry.refresh_from_db()
    assert entry.translations == {"es": SPANISH}
    assert "Saved “How long does shipping take?”." in client.get(response.url).content.decode()

    response = client.post(f"/console/knowledge/{entry.id}/", form())  # both Spanish texts emptied
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.translations == {}


@pytest.mark.parametrize("fields, field, error", [
    ({"question_es": "¿Cuánto tarda?"}, "answer_es",
     "Write the Español answer too, or clear the Español question to remove this version."),
    ({"question_de": "Wie lange?", "answer_de": "x" * (CONTENT_MAX_LENGTH + 1)}, "answer_de",
     f"The Deutsch answer has at most {CONTENT_MAX_LENGTH} characters"),
    ({"question": ""}, "question", "Write the question."),
])
def test_an_invalid_edit_shows_the_error_on_its_field_and_stores_nothing(client, store, manager, entry, fields,
                                                                         field, error):
    client.force_login(manager)
    response = client.post(f"/console/knowledge/{entry.id}/", form(**fields))
    assert response.status_code == 400
    html = response.content.decode()
    assert any(e.startswith(error) for e in field_errors(html, field)), field_errors(html, field)
    if fields.get("question_es"):
        assert "¿Cuánto tarda?" in html  # the form keeps what was typed
    entry.refresh_from_db()
    assert (entry.question, entry.translations) == ("How long does shipping take?", {})


def test_a_version_in_a_language_the_store_does_not_list_is_refused(client, store, manager, entry):
    client.force_login(manager)
    response = client.post(f"/console/knowledge/{entry.id}/", form(question_fr="Combien ?", answer_fr="Trois."))
    assert response.status_code == 302  # not a field of the form: nothing of it is read
    entry.refresh_from_db()
    assert entry.translations == {}
    store.languages = ["en", "es"]  # German no longer listed: its column goes, its version is kept
    store.save()
    entry.translations = {"de": {"question": "Wie lange?", "answer": "Drei Tage."}}
    entry.save()
    page = client.get(f"/console/knowledge/{entry.id}/").content.decode()
    assert 'name="question_de"' not in page and "Also written in Deutsch" in page
    client.post(f"/console/knowledge/{entry.id}/", form(question_es="¿Cuánto?", answer_es="Tres días."))
    entry.refresh_from_db()
    assert set(entry.translations) == {"de", "es"}


def test_manager_adds_deactivates_activates_and_deletes_an_entry(client, store, manager):
    client.force_login(manager)
    assert 'name="question_de"' in client.get("/console/knowledge/new/").content.decode()
    response = client.post("/console/knowledge/new/", form(question="Do you sell gift cards?", answer="Yes.",
                                                           question_es="¿Venden tarjetas regalo?", answer_es="Sí."))
    assert response.status_code == 302
    entry = KnowledgeEntry.objects.get(tenant=store)
    assert entry.translations == {"es": {"question": "¿Venden tarjetas regalo?", "answer": "Sí."}}

    response = client.post(f"/console/knowledge/{entry.id}/active/", {"active": "0", "q": "gift"})
    assert response.status_code == 302 and response.url == "/console/knowledge/?tenant=alpha&q=gift"
    entry.refresh_from_db()
    assert not entry.is_active
    client.post(f"/console/knowledge/{entry.id}/active/", {"active": "1"})
    entry.refresh_from_db()
    assert entry.is_active
    assert client.get(f"/console/knowledge/{entry.id}/delete/").status_code == 405
    assert client.post(f"/console/knowledge/{entry.id}/delete/").status_code == 302
    assert not KnowledgeEntry.objects.filter(pk=entry.id).exists()


def test_agents_get_403_and_another_stores_entry_is_404(client, store, other_store, manager, agent, entry):
    theirs = KnowledgeEntryFactory(tenant=other_store)
    client.force_login(agent)
    html = client.get("/console/").content.decode()
    assert ">Knowledge</a>" not in html
    for url in ("/console/knowledge/", "/console/knowledge/new/", f"/console/knowledge/{entry.id}/",
                "/console/knowledge/?tenant=alpha"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/console/knowledge/{entry.id}/", form(question="Hacked?")).status_code == 403
    assert client.post(f"/console/knowledge/{entry.id}/active/", {"active": "0"}).status_code == 403
    assert client.post(f"/console/knowledge/{entry.id}/delete/").status_code == 403

    client.force_login(manager)
    assert client.get(f"/console/knowledge/{theirs.id}/").status_code == 404
    assert client.get("/console/knowledge/999999/").status_code == 404  # the same as a missing one
    assert client.get("/console/knowledge/?tenant=bravo").status_code == 404
    assert client.post(f"/console/knowledge/{theirs.id}/", form(question="Mine?")).status_code == 404
    assert client.post(f"/console/knowledge/{theirs.id}/active/", {"active": "0"}).status_code == 404
    assert client.post(f"/console/knowledge/{theirs.id}/delete/").status_code == 404
    assert client.post("/console/knowledge/new/", {**form(), "tenant": "bravo"}).status_code == 404
    theirs.refresh_from_db()
    entry.refresh_from_db()
    assert theirs.is_active and theirs.question != "Mine?" and entry.question != "Hacked?"


def test_a_manager_of_several_stores_picks_one(client, store, other_store, manager):
    services.agent_add(other_store, "mia", role="manager")
    KnowledgeEntryFactory(tenant=other_store, question="Do you repair bikes?")
    client.force_login(manager)
    html = client.get("/console/knowledge/?tenant=bravo").content.decode()
    assert '<select name="tenant">' in html and "Do you repair bikes?" in html


def test_the_pages_have_no_inline_scripts_or_styles(client, store, manager, entry):
    client.force_login(manager)
    for url in ("/console/knowledge/", f"/console/knowledge/{entry.id}/", "/console/knowledge/new/",
                "/console/texts/"):
        html = client.get(url).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, tag
        assert not re.search(r"\son[a-z]+\s*=", html) and "style=" not in html, url
