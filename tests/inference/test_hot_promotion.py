"""Hot promotion: the active version is known without a query per message, a promotion or rollback reaches a
worker already running through the broadcast (no restart), a replaced model is closed only once its work
ends, and the loaded models are bounded by memory (least recently used go first)."""
import re
import threading
import time

import pytest
import torch
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chatbot.conversations import services
from chatbot.models import Message, ModelVersion, TrainingExample
from chatbot.learning.registry import model_version_promote, model_version_register, model_version_rollback
from inference import model_watch, registry
from inference.labelling import classifier_active
from tests.conftest import needs_services
from tests.factories import ConversationFactory, KnowledgeEntryFactory, MessageFactory, TenantFactory
from tests.live_processes import Worker, wait_until
from tests.nlu.conftest import tiny_config, tiny_data, tiny_encoder  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)

INTENT = ModelVersion.Kind.INTENT


class FakeModel:
    """A model of a known size that records whether it was closed."""

    def __init__(self, version, mb: float = 0.0):
        self.version = version.version
        self.weights = torch.zeros(int(mb * 2**20 / 4))
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def fresh_registry():
    registry.reload()
    yield
    registry.reload()


def _register(tenant, name: str, activate: bool = True) -> ModelVersion:
    return model_version_register(INTENT, tenant, name, f"/models/{name}", {}, activate=activate)


def test_the_active_version_costs_no_query_per_message(tenant):
    _register(tenant, "v1")
    with registry.lease(INTENT, tenant.id, FakeModel) as (model, version):
        assert model.version == "v1"
    reads = registry._reads
    with CaptureQueriesContext(connection) as queries:
        for _ in range(100):
            with registry.lease(INTENT, tenant.id, FakeModel) as (model, version):
                assert version.version == "v1"
    assert len(queries) == 0 and registry._reads == reads


def test_a_promotion_and_a_rollback_here_switch_the_next_lookup(tenant):
    _register(tenant, "v1")
    load = FakeModel
    assert registry.active_model(INTENT, tenant.id, load)[1].version == "v1"
    v2 = _register(tenant, "v2", activate=False)
    assert registry.active_model(INTENT, tenant.id, load)[1].version == "v1"  # a candidate serves nobody
    model_version_promote(v2.pk)
    assert registry.active_model(INTENT, tenant.id, load)[1].version == "v2"
    model_version_rollback(INTENT, tenant)
    assert registry.active_model(INTENT, tenant.id, load)[1].version == "v1"


def test_the_slow_poll_catches_a_change_no_broadcast_announced(tenant, settings):
    settings.MODEL_POLL_SECONDS = 0.3
    v1 = _register(tenant, "v1")
    assert registry.active_version(INTENT, tenant.id).pk == v1.pk
    ModelVersion.objects.filter(pk=v1.pk).update(status=ModelVersion.Status.RETIRED)  # no event
    assert registry.active_version(INTENT, tenant.id).pk == v1.pk
    time.sleep(0.35)
    assert registry.active_version(INTENT, tenant.id) is None


def test_a_model_in_use_during_a_swap_is_closed_only_when_released(tenant):
    _register(tenant, "v1")
    v2 = _register(tenant, "v2", activate=False)
    with registry.lease(INTENT, tenant.id, FakeModel) as (old, _):
        model_version_promote(v2.pk)  # another thread's message would now load v2
        with registry.lease(INTENT, tenant.id, FakeModel) as (new, version):
            assert version.pk == v2.pk and new is not old
        assert not old.closed  # still answering a message
    assert old.closed and not new.closed


def test_a_model_used_by_another_thread_survives_a_swap_until_that_thread_is_done(tenant):
    _register(tenant, "v1")
    v2 = _register(tenant, "v2", activate=False)
    holding, release, seen = threading.Event(), threading.Event(), {}

    def answer_slowly():
        with registry.lease(INTENT, tenant.id, FakeModel) as (model, _):
            seen["model"] = model
            holding.set()
            release.wait(10)
            seen["closed_while_used"] = model.closed
        connection.close()

    worker = threading.Thread(target=answer_slowly)
    worker.start()
    assert holding.wait(10)
    model_version_promote(v2.pk)
    assert registry.active_model(INTENT, tenant.id, FakeModel)[1].pk == v2.pk
    release.set()
    worker.join(10)
    assert seen["closed_while_used"] is False and seen["model"].closed


def test_least_recently_used_models_go_when_the_cache_is_over_its_size(settings):
    settings.MODEL_CACHE_MB = 1
    tenants = [TenantFactory() for _ in range(3)]
    for tenant in tenants:
        _register(tenant, f"v-{tenant.pk}")

    def load(version):
        return FakeModel(version, mb=0.4)

    first = registry.active_model(INTENT, tenants[0].id, load)[0]
    second = registry.active_model(INTENT, tenants[1].id, load)[0]
    assert registry.model_nbytes(first) == int(0.4 * 2**20 / 4) * 4
    registry.active_model(INTENT, tenants[0].id, load)  # used again: tenant 1 is now the oldest
    third = registry.active_model(INTENT, tenants[2].id, load)[0]
    loaded = registry.loaded_models()
    assert list(loaded) == [("active", INTENT, tenants[0].id), ("active", INTENT, tenants[2].id)]
    assert second.closed and not first.closed and not third.closed
    assert sum(entry.nbytes for entry in loaded.values()) <= 2**20
    assert registry.active_model(INTENT, tenants[1].id, load)[0] is not second  # loads again when asked


def test_classifier_lookups_ask_the_database_once(tenant, tiny_data, tiny_config, settings):
    from inference.nlu_services import intent_model_train

    settings.NLU_QUANTIZE = False
    texts, labels = tiny_data
    TrainingExample.objects.bulk_create(TrainingExample(tenant=tenant, text=t, intent=i) for t, i in zip(texts, labels))
    version = intent_model_train(tenant, tiny_config, progress=False)
    classifier, active = classifier_active(INTENT, tenant.id)
    assert active.pk == version.pk
    with CaptureQueriesContext(connection) as queries:
        for _ in range(50):
            again, _ = classifier_active(INTENT, tenant.id)
            assert again is classifier
    assert len(queries) == 0
    assert registry.loaded_models()[("active", INTENT, tenant.id)].nbytes > 10_000


# --- a worker already running switches: a real Celery prefork worker, another process -------------------


GIFT_CARDS = "Yes: gift cards from 10 to 200 euros, at the till or online."


def _bot_reply_to(tenant, text: str) -> Message:
    """A bot reply to `text` in a conversation of its own, written here (no worker involved)."""
    conversation = ConversationFactory(tenant=tenant, visitor__tenant=tenant)
    visitor = MessageFactory(conversation=conversation, seq=1, sender=Message.Sender.VISITOR, text=text)
    return MessageFactory(conversation=conversation, seq=2, sender=Message.Sender.BOT, text="Sorry?",
                          reply_to=visitor)


def _agent(tenant):
    from django.contrib.auth import get_user_model

    from chatbot.models import AgentMembership

    agent = get_user_model().objects.create_user(f"agent-{tenant.pk}", password="pw-secret-123")
    AgentMembership.objects.create(user=agent, tenant=tenant)
    return agent


def _labelled(tenant, text: str, timeout: float = 60) -> Message:
    """A visitor message of a new conversation, once the worker has labelled it."""
    conversation = ConversationFactory(tenant=tenant, visitor__tenant=tenant)
    message, _ = services.message_receive(conversation.id, text, f"c-{time.monotonic_ns()}")
    return wait_until(lambda: Message.objects.filter(pk=message.pk).exclude(label_versions={}).first(), timeout,
                      f"the worker to label {text!r}")


@pytest.mark.live
@needs_services
def test_a_running_prefork_worker_switches_on_promotion_and_rollback_without_restart(
        tiny_data, tiny_config, process_env, tmp_path, settings):
    from inference.nlu_services import intent_model_train

    tenant = TenantFactory(min_intent_confidence=0.0, fallbacks_to_handoff=0)
    KnowledgeEntryFactory(tenant=tenant, question="Where is my order?", answer="Orders ship within a day.")
    texts, labels = tiny_data
    TrainingExample.objects.bulk_create(TrainingExample(tenant=tenant, text=t, intent=i) for t, i in zip(texts, labels))
    v1 = intent_model_train(tenant, tiny_config, progress=False)
    v2 = intent_model_train(tenant, tiny_config, progress=False, activate=False)

    # Only the broadcast can explain a switch: the worker's poll is an hour.
    env = process_env | {"MODEL_POLL_SECONDS": "3600", "LOG_LEVEL": "INFO", "TORCH_THREADS": "1"}
    worker = Worker(env, tmp_path, pool="prefork").start(timeout=180)
    try:
        listening = wait_until(lambda: re.findall(r"listening for model promotions on \S+ \(pid (\d+)\)",
                                                  worker.text()), 120, "the child's listener")
        child = worker.children()
        assert [int(listening[0])] == child  # the process that holds the models listens, not the parent
        assert _labelled(tenant, "where is my order").label_versions["intent"] == v1.version

        model_version_promote(v2.pk)  # in this process: the event is broadcast on commit
        wait_until(lambda: worker.text().count("heard model_promoted") >= 1, 20, "the worker to hear the promotion")
        assert _labelled(tenant, "has my order shipped").label_versions["intent"] == v2.version

        model_version_rollback(INTENT, tenant)
        wait_until(lambda: worker.text().count("heard model_promoted") >= 2, 20, "the worker to hear the rollback")
        assert _labelled(tenant, "track my parcel please").label_versions["intent"] == v1.version

        # An agent's correction recorded here (the console's service) reaches the running worker too.
        bot_reply = _bot_reply_to(tenant, "do you sell gift cards")
        services.feedback_agent_record(_agent(tenant), bot_reply.id, correct_reply=GIFT_CARDS,
                                      correct_intent="gift_cards")
        wait_until(lambda: "heard feedback_recorded" in worker.text(), 20, "the worker to hear the correction")
        paraphrase = _labelled(tenant, "do you sell gift cards?")
        reply = wait_until(lambda: Message.objects.filter(reply_to=paraphrase, sender="bot").first(), 60,
                           "the worker's reply")
        assert reply.text == GIFT_CARDS and reply.model_version == "correction-memory"
        assert worker.children() == child and worker.alive()  # the same process all along: no restart
    finally:
        worker.stop()
    assert model_watch.channel().endswith(":model-events")
