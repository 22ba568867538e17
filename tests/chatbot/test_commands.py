"""create_tenant, seed_demo and add_agent, as a store owner runs them."""
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from chatbot.models import AgentMembership, KnowledgeEntry, SentimentExample, Tenant, TrainingExample
from tests.factories import TenantFactory

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


# --- add_agent -------------------------------------------------------------------------------


def test_add_agent_creates_a_console_user_who_can_log_in(client):
    TenantFactory(slug="acme")
    lines = run("add_agent", "acme", "ada", "--password", "s3cret-pass", "--name", "Ada Lovelace",
                "--email", "ada@acme.example")
    assert lines == ["Created 'ada': agent of 'acme'."]
    membership = AgentMembership.objects.select_related("user").get(user__username="ada")
    user = membership.user
    assert (membership.tenant.slug, membership.role) == ("acme", "agent")
    assert (user.first_name, user.last_name, user.email) == ("Ada", "Lovelace", "ada@acme.example")
    assert not user.is_staff and not user.is_superuser  # the console is her workplace, not the admin
    assert client.login(username="ada", password="s3cret-pass")


def test_add_agent_again_updates_the_role_and_keeps_one_seat():
    TenantFactory(slug="acme")
    run("add_agent", "acme", "ada", "--password", "s3cret-pass")
    lines = run("add_agent", "acme", "ada", "--role", "manager")
    assert lines == ["Updated 'ada': manager of 'acme'."]
    assert list(AgentMembership.objects.values_list("user__username", "role")) == [("ada", "manager")]
    assert authenticate(username="ada", password="s3cret-pass") is not None  # no --password: password kept


def test_add_agent_to_a_second_store_gives_a_second_seat():
    TenantFactory(slug="acme")
    TenantFactory(slug="bolt")
    run("add_agent", "acme", "ada", "--password", "s3cret-pass")
    run("add_agent", "bolt", "ada")
    assert sorted(AgentMembership.objects.values_list("tenant__slug", flat=True)) == ["acme", "bolt"]


def test_add_agent_without_password_says_how_to_set_one():
    TenantFactory(slug="acme")
    lines = run("add_agent", "acme", "ada")
    assert lines[-1] == "No password was given: set one with --password before logging in."
    assert not get_user_model().objects.get(username="ada").has_usable_password()


def test_add_agent_to_an_unknown_store_names_the_known_ones():
    TenantFactory(slug="acme")
    with pytest.raises(CommandError, match="unknown tenant 'nope'.*acme"):
        run("add_agent", "nope", "ada")


def test_add_agent_refuses_an_unknown_role():
    TenantFactory(slug="acme")
    with pytest.raises(CommandError, match="invalid choice"):
        run("add_agent", "acme", "ada", "--role", "owner")
    assert not AgentMembership.objects.exists()


def test_add_agent_refuses_a_username_too_long():
    TenantFactory(slug="acme")
    with pytest.raises(CommandError, match="1 to 150 characters"):
        run("add_agent", "acme", "x" * 151)
    assert not AgentMembership.objects.exists()
