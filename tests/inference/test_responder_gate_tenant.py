"""The gate's hook `responder_compare(tenant, frozen, replies)` on a real tenant: the baseline is what the
bot answers without a responder (knowledge entry, else the intent's closest reply, else the fallback),
a frozen example never answered by its own reply, and the verdict follows the replies."""
import json

import pytest

from chatbot.models import EvalExample, ModelVersion, TrainingExample
from inference.responder_gate import ASSIST, VISITORS, tenant_baseline_replies, responder_compare
from tests.factories import KnowledgeEntryFactory, TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

SHIPPING = "Standard shipping takes 3-5 business days; express ships in 1-2 days."
THANKS = [
    ("thanks a lot", "You're welcome! Is there anything else I can help you with today?"),
    ("thank you so much", "Happy to help! Have a wonderful day and come back anytime."),
    ("thanks for the help", "My pleasure, glad I could help. Anything else on your mind?"),
    ("cheers, that helped", "Great to hear it helped! Reach out whenever you need us."),
]


@pytest.fixture
def tenant():
    tenant = TenantFactory()
    KnowledgeEntryFactory(tenant=tenant, question="How long does shipping take?", answer=SHIPPING)
    TrainingExample.objects.bulk_create(TrainingExample(tenant=tenant, text=t, intent="thanks", response=r)
                                        for t, r in THANKS)
    return tenant


def _frozen(tenant, rows) -> list[EvalExample]:
    return [EvalExample.objects.create(tenant=tenant, kind=ModelVersion.Kind.RESPONDER, split="frozen", text=t,
                                       label=label, reply=r) for t, label, r in rows]


def test_the_baseline_answers_as_the_bot_does_and_never_with_the_examples_own_reply(tenant):
    texts = ["how long does shipping take to arrive?", "thanks a lot", "what is the meaning of life"]
    answers, knowledge, by_knowledge = tenant_baseline_replies(tenant, texts, ["shipping", "thanks", ""])
    assert answers[0] == SHIPPING and SHIPPING in knowledge[0] and by_knowledge == [True, False, False]
    assert answers[1] in {r for _, r in THANKS[1:]}  # its own example left out
    assert answers[2] == tenant.fallback_text


def test_replies_closer_to_the_references_serve_visitors_and_the_baseline_itself_feeds_assist(tenant):
    rows = [(f"thanks a lot for order {n}", "thanks", f"You're welcome! Your order {n} is on its way, anything else?")
            for n in range(10)]
    rows += [(f"how long will shipping take for parcel {n}?", "shipping",
              f"Shipping for parcel {n} takes 3-5 business days.") for n in range(12)]
    frozen = _frozen(tenant, rows)
    frozen.append(EvalExample.objects.create(tenant=tenant, kind=ModelVersion.Kind.RESPONDER, split="frozen",
                                             text="no reference here", label="thanks"))  # not scored
    good = [r for _, _, r in rows] + ["whatever"]
    result = responder_compare(tenant, frozen, good)
    assert result["n"] == 22 and result["serving"] == VISITORS, result["reason"]
    assert result["responder"]["invented"] == 0  # order and parcel numbers are the messages' own
    assert json.loads(json.dumps(result)) == result  # stored as it is in ModelVersion.evaluations

    baseline = tenant_baseline_replies(tenant, [t for t, _, _ in rows], [label for _, label, _ in rows]).answers
    same = responder_compare(tenant, frozen, baseline + ["x"])
    assert same["serving"] == ASSIST and same["gain"]["rouge_l"] == 0.0

    # Where the knowledge entry answers, the responder is not asked: its replies there do not count.
    invented_where_knowledge_answers = [r.replace("3-5", "7-9") for r in good]
    assert responder_compare(tenant, frozen, invented_where_knowledge_answers)["serving"] == VISITORS
    invented = [r.replace("on its way", "on its way in 7-9 days") for r in good]
    assert responder_compare(tenant, frozen, invented)["serving"] == ASSIST
    with pytest.raises(ValueError):
        responder_compare(tenant, frozen, good[:3])
