"""factory_boy factories for the platform's models."""
import factory

from chatbot.models import Conversation, KnowledgeEntry, Message, Tenant, Visitor


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Store {n}")
    slug = factory.Sequence(lambda n: f"store-{n}")
    allowed_origins = factory.LazyFunction(lambda: ["https://shop.example"])


class VisitorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Visitor

    tenant = factory.SubFactory(TenantFactory)


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    visitor = factory.SubFactory(VisitorFactory)
    tenant = factory.SelfAttribute("visitor.tenant")


class KnowledgeEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KnowledgeEntry

    tenant = factory.SubFactory(TenantFactory)
    question = factory.Sequence(lambda n: f"Question {n}?")
    answer = factory.Sequence(lambda n: f"Answer {n}.")


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    seq = factory.Sequence(lambda n: n + 1)
    sender = Message.Sender.BOT
    text = factory.Sequence(lambda n: f"Reply {n}")
