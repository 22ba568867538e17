"""factory_boy factories for the platform's models."""
from importlib import import_module

import factory

from chatbot.models import AgentMembership, Conversation, KnowledgeEntry, Message, Tenant, Visitor


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


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "auth.User"
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Sequence(lambda n: f"Agent{n}")
    last_name = "Smith"
    password = factory.django.Password("pw-secret-123")


class AgentMembershipFactory(factory.django.DjangoModelFactory):
    """A user's seat in a tenant's team; `AgentMembershipFactory(role="manager")` for a manager."""

    class Meta:
        model = AgentMembership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = AgentMembership.Role.AGENT


def agent_of(tenant, role: str = AgentMembership.Role.AGENT, **user_fields):
    """A user who works in `tenant`'s team (an agent unless `role` says manager)."""
    return AgentMembershipFactory(tenant=tenant, role=role, user=UserFactory(**user_fields)).user


def handoff_code(reason: str, sender: str = "") -> str:
    """The code (chatbot.models.HandoffReason) of a hand-off text the policy writes, for hand-made rows: read
    as migration 0009 read the texts written before the codes."""
    return import_module("chatbot.migrations.0009_handoff_code").handoff_code_of(reason, sender)
