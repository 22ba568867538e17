"""create_tenant and seed_demo, as a store owner runs them."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from chatbot.models import KnowledgeEntry, SentimentExample, Tenant, TrainingExample

pytestmark = pytest.mark.django_db


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_tenant_prints_tag_then_key_last():
    lines = run("create_tenant", "Acme Outdoor", "--origin", "https://acme.example")
    tenant = Tenant.objects.get(slug="acme-outdoor")
    assert lines[-1] == tenant.public_key
    tag = lines[-2]
    assert tag.startswith("<script src=") and "/static/chatbot/widget.js" in tag
    assert f'data-key="{tenant.public_key}"' in tag and tag.endswith("async></script>")
    assert tenant.allowed_origins == ["https://acme.example"]


def test_create_tenant_refuses_bad_origin():
    with pytest.raises(CommandError, match="must look like"):
        run("create_tenant", "Acme", "--origin", "acme.example")


def test_seed_demo_creates_store_and_can_run_again():
    lines = run("seed_demo", "--agent-password", "s3cret-pass")
    tenant = Tenant.objects.get(slug="demo")
    assert lines[-1] == tenant.public_key
    assert KnowledgeEntry.objects.filter(tenant=tenant).count() >= 40
    intents = set(TrainingExample.objects.filter(tenant=tenant).values_list("intent", flat=True))
    assert len(intents - {"out_of_scope"}) >= 25
    assert TrainingExample.objects.filter(tenant=tenant, intent="out_of_scope").count() >= 14  # for the recall rule
    assert SentimentExample.objects.count() >= 300
    assert any("demo-agent" in line and "s3cret-pass" in line for line in lines)
    counts = (KnowledgeEntry.objects.count(), TrainingExample.objects.count(), SentimentExample.objects.count())
    run("seed_demo")
    assert (KnowledgeEntry.objects.count(), TrainingExample.objects.count(), SentimentExample.objects.count()) == counts
    assert Tenant.objects.filter(slug="demo").count() == 1


def test_demo_page_embeds_the_widget_with_one_tag(client):
    run("seed_demo")
    tenant = Tenant.objects.get(slug="demo")
    page = client.get("/demo/").content.decode()
    assert page.count('<script src="http://testserver/static/chatbot/widget.js"') == 1
    assert f'data-key="{tenant.public_key}"' in page


def test_widget_js_is_served_with_debug_off(client, settings):
    settings.DEBUG = False
    response = client.get("/static/chatbot/widget.js")
    assert response.status_code == 200
    assert b"WebSocket" in b"".join(response.streaming_content)
