"""Hand-off reasons as codes: migration 0009 reads the free text written before the codes as the policy now
codes it, and its data step fills the new `handoff_code` fields of existing rows, leaving the text as detail."""
from importlib import import_module

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from chatbot.models import HandoffReason
from inference.policy import Labels, decide
from tests.factories import TenantFactory

MIGRATION = import_module("chatbot.migrations.0009_handoff_code")
BEFORE, AFTER = [("chatbot", "0008_learning_loop")], [("chatbot", "0009_handoff_code")]


@pytest.mark.parametrize(("text", "sender", "code"), [
    ("visitor asked for a person", "system", "asked_for_person"),
    ("asked for a person", "", "asked_for_person"),
    ("negative sentiment for 3 turns", "", "negative_sentiment"),
    ("out-of-scope request", "system", "out_of_scope"),
    ("low intent confidence (0.31)", "", "low_confidence"),
    ("low confidence", "", "low_confidence"),
    ("low responder score (0.12)", "", "low_responder_score"),
    ("2 fallbacks in a row", "system", "repeated_fallback"),
    ("1 fallback in a row", "", "repeated_fallback"),
    ("language: es", "", "language"),
    ("Language: pt", "system", "language"),
    ("bot unavailable", "system", "bot_unavailable"),
    ("the bot failed", "", "bot_unavailable"),
    ("no knowledge entry close enough", "bot", "fallback"),
    ("anything at all", "bot", "fallback"),  # only fallback replies stored a reason on a bot reply
    ("the manager said so", "", "other"),
    ("", "", ""),
    ("  ", "system", ""),
])
def test_the_migration_reads_each_old_text_as_its_code(text, sender, code):
    assert MIGRATION.handoff_code_of(text, sender) == code


def test_the_migrations_codes_are_the_models():
    """It writes codes the model knows (codes added later, e.g. untranslated, no old text could mean)."""
    assert set(value for value, _ in MIGRATION.CHOICES) <= set(HandoffReason.values)


@pytest.mark.django_db
@pytest.mark.parametrize("call", [
    dict(language="es"), dict(text="I want a real person"), dict(labels=Labels("x", 0.9, "negative", 0.9),
                                                                  earlier=["negative"]),
    dict(labels=Labels("out_of_scope", 0.9)), dict(labels=Labels("x", 0.1)), dict(responder_score=0.05),
    dict(retrieval=0.0, fallbacks_before=4), dict(retrieval=0.0),
])
def test_every_text_the_policy_writes_is_read_as_the_code_it_gives(call):
    """The policy's words and codes agree with the migration's reading, so old rows and new ones count alike."""
    tenant = TenantFactory(languages=["en"], min_intent_confidence=0.5, fallbacks_to_handoff=2)
    d = decide(tenant, call.get("text", "x"), call.get("labels", Labels("x", 0.9)), call.get("retrieval", 0.9),
               call.get("earlier", []), responder_score=call.get("responder_score"),
               fallbacks_before=call.get("fallbacks_before", 0), language=call.get("language", "en"))
    assert d.code and MIGRATION.handoff_code_of(d.reason, "bot" if d.action == "fallback" else "system") == d.code


@pytest.mark.django_db(transaction=True)
def test_the_data_step_codes_existing_rows_and_keeps_their_text():
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        old = executor.loader.project_state(BEFORE).apps
        tenant = old.get_model("chatbot", "Tenant").objects.create(name="Old", slug="old", public_key="pk_old")
        visitor = old.get_model("chatbot", "Visitor").objects.create(tenant=tenant, token="v_old")
        Conversation, Message = old.get_model("chatbot", "Conversation"), old.get_model("chatbot", "Message")
        handed = Conversation.objects.create(tenant=tenant, visitor=visitor, status="waiting",
                                             handoff_reason="low intent confidence (0.31)")
        odd = Conversation.objects.create(tenant=tenant, visitor=visitor, status="resolved",
                                          handoff_reason="the manager said so")
        calm = Conversation.objects.create(tenant=tenant, visitor=visitor, status="resolved")
        asked = Message.objects.create(conversation=handed, seq=1, sender="visitor", text="refund??")
        notice = Message.objects.create(conversation=handed, seq=2, sender="system", text="Handing over.",
                                        reply_to=asked, handoff_reason="low intent confidence (0.31)")
        fallback = Message.objects.create(conversation=calm, seq=1, sender="bot", text="Sorry?",
                                          handoff_reason="no knowledge entry close enough")
        answer = Message.objects.create(conversation=calm, seq=2, sender="bot", text="Here.")

        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps
        Conversation, Message = new.get_model("chatbot", "Conversation"), new.get_model("chatbot", "Message")
        codes = dict(Conversation.objects.values_list("pk", "handoff_code"))
        assert codes == {handed.pk: "low_confidence", odd.pk: "other", calm.pk: ""}
        assert Conversation.objects.get(pk=handed.pk).handoff_reason == "low intent confidence (0.31)"
        rows = dict(Message.objects.values_list("pk", "handoff_code"))
        assert rows == {asked.pk: "", notice.pk: "low_confidence", fallback.pk: "fallback", answer.pk: ""}
        assert Message.objects.get(pk=fallback.pk).handoff_reason == "no knowledge entry close enough"
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())
