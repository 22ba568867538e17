"""The demo store: its tenant, knowledge, training examples and agent, from chatbot/demo/*.json."""
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from nlu import OUT_OF_SCOPE

from chatbot.actions import services as actions
from chatbot.actions.demo_orders import DEMO_ACTIONS, DEMO_ORDER_PATTERN, demo_orders_seed, demo_orders_url
from chatbot.errors import ServiceError
from chatbot.models import AgentMembership, KnowledgeEntry, SentimentExample, Tenant, TrainingExample
from chatbot.conversations.services import agent_add

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_SLUG = "demo"
DEMO_NAME = "Northwind Outfitters"
DEMO_AGENT = "demo-agent"
DEMO_LANGUAGES = ("en", "es", "de", "fr")


@dataclass
class DemoSeed:
    tenant: Tenant
    agent_username: str
    agent_password: str
    knowledge: int
    examples: int
    sentiment: int
    orders: int
    orders_connected: str  # "" when connected, else why not


def load_json(name: str):
    return json.loads((DEMO_DIR / name).read_text(encoding="utf-8"))


def load_jsonl(name: str) -> list[dict]:
    lines = (DEMO_DIR / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _intent_examples(tenant: Tenant, intent: str, written: dict, language: str = "") -> list[TrainingExample]:
    """An intent's examples and (message, reply) pairs in one language ("": the main one) as training rows."""
    return [TrainingExample(tenant=tenant, text=t, intent=intent, language=language)
            for t in written.get("examples", [])] + [
        TrainingExample(tenant=tenant, text=p["message"], intent=intent, response=p["reply"], language=language)
        for p in written.get("pairs", [])]


@transaction.atomic
def demo_seed(origins: list[str], agent_password: str | None = None) -> DemoSeed:
    """Create or refresh the demo store; safe to run again (seeded rows are replaced, others kept)."""
    tenant, _ = Tenant.objects.get_or_create(slug=DEMO_SLUG, defaults={"name": DEMO_NAME})
    tenant.name = DEMO_NAME
    tenant.allowed_origins = origins
    tenant.greeting = "Hi! I'm the Northwind assistant. Ask me about orders, shipping, returns or our gear."
    tenant.translations = load_json("texts.json")  # the bot's own texts in es, de, fr, it, pt
    # The languages its bot answers, English first (its main one): its knowledge and replies are written in
    # each; a message in any other (Italian, Japanese) goes straight to a person.
    tenant.languages = list(DEMO_LANGUAGES)
    tenant.save()

    tenant.knowledge.all().delete()
    KnowledgeEntry.objects.bulk_create(
        KnowledgeEntry(tenant=tenant, question=e["question"], answer=e["answer"], category=e.get("category", ""),
                       translations=e.get("translations", {}))
        for e in load_json("knowledge_base.json")
    )
    tenant.training_examples.filter(source=TrainingExample.Source.SEED).delete()
    examples = []
    translated = load_json("intents_translations.json")  # {intent: {language: {examples, pairs}}}
    for intent in load_json("intents.json"):
        examples += _intent_examples(tenant, intent["intent"], intent)
        for language, written in sorted(translated.get(intent["intent"], {}).items()):
            examples += _intent_examples(tenant, intent["intent"], written, language)
    # Questions a shop does not answer: the intent model's out-of-scope threshold is chosen so that
    # validation shows it catches at least NLU_OOS_MIN_RECALL of them (else the 5% quantile rule).
    examples += [TrainingExample(tenant=tenant, text=t, intent=OUT_OF_SCOPE) for t in load_json("out_of_scope.json")]
    TrainingExample.objects.bulk_create(examples)
    SentimentExample.objects.filter(source="seed").delete()
    sentiment = SentimentExample.objects.bulk_create(
        SentimentExample(text=row["text"], label=row["label"], source="seed") for row in load_jsonl("sentiment.jsonl")
    )

    orders = demo_orders_seed(load_json("orders.json"))
    orders_connected = demo_orders_connect(tenant)

    password = agent_password or secrets.token_urlsafe(9)
    membership, _ = agent_add(tenant, DEMO_AGENT, password=password, role=AgentMembership.Role.MANAGER,
                              name="Demo Agent", email="agent@northwind.example")
    # An agent works in the console, not the admin (an earlier demo made it a superuser).
    get_user_model().objects.filter(pk=membership.user_id).update(is_staff=False, is_superuser=False)
    return DemoSeed(tenant, DEMO_AGENT, password, tenant.knowledge.count(), len(examples), len(sentiment), orders,
                    orders_connected)


def demo_orders_connect(tenant: Tenant) -> str:
    """Connect the demo store to its own order system at PUBLIC_URL (keeping the secret it had); returns ""
    when connected, else why not (a local PUBLIC_URL needs ACTIONS_ALLOW_PRIVATE_HOSTS, as `make run` sets)."""
    try:  # the secret it had is kept (same address)
        actions.store_connect(tenant, "webhook", demo_orders_url(), intent_actions=DEMO_ACTIONS,
                              order_pattern=DEMO_ORDER_PATTERN)
    except ServiceError as exc:
        actions.store_disconnect(tenant)
        return str(exc)
    return ""
