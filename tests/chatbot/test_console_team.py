"""The console's Team page (/console/team/): managers set the assignment rule, business hours, holidays, the
first-response target and each member's capacity, languages and hand-off e-mails; agents get 403; refusals stand
under their field and store nothing."""
import re

import pytest

from chatbot.conversations import ownership, presence
from chatbot.models import AgentMembership, Conversation, Tenant
from tests.factories import ConversationFactory, TenantFactory, VisitorFactory, agent_of

pytestmark = pytest.mark.django_db
URL = "/console/team/"


@pytest.fixture
def store():
    return TenantFactory(name="Alpha Outfitters", slug="alpha")


@pytest.fixture
def manager(store):
    return agent_of(store, role="manager", username="mia", first_name="Mia", last_name="Manager")


@pytest.fixture
def agent(store):
    return agent_of(store, username="ada", first_name="Ada", last_name="Lovelace")


def form_data(store, members, **changes) -> dict:
    data = {"tenant": store.slug, "assignment": "round_robin", "timezone": "Europe/Berlin",
            "mon": "09:00-12:30, 13:30-17:30", "tue": "09:00-17:30", "wed": "", "thu": "", "fri": "09:00-16:00",
            "sat": "", "sun": "", "holidays": "2026-12-26\n2026-12-25", "first_response_minutes": "15"}
    for user in members:
        data[f"capacity_{user.pk}"] = "3"
        data[f"languages_{user.pk}"] = "en, es"
    data.update(changes)
    return data


def seat(user, store) -> AgentMembership:
    return AgentMembership.objects.get(user=user, tenant=store)


def test_a_manager_sees_the_team_settings_and_the_link(client, store, manager, agent):
    AgentMembership.objects.filter(user=agent).update(capacity=2, languages=["de"])
    client.force_login(manager)
    page = client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/console/team/" aria-current="page">Team</a>' in html
    assert re.search(r'value="manual"[^>]*checked|checked[^>]*value="manual"', html)
    assert f'name="capacity_{agent.pk}" value="2"' in html and f'name="languages_{agent.pk}" value="de"' in html
    assert re.search(rf'<select name="notify_{agent.pk}"[^>]*>\s*<option value="each" selected>', html)
    assert 'data-state="always-open"' in html
    for tag in re.findall(r"<script\b[^>]*>", html):  # the console's CSP: no inline code or styles
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "style=" not in html


def test_an_agent_gets_403_and_no_link(client, store, agent):
    client.force_login(agent)
    assert client.get(URL).status_code == 403
    assert client.post(URL, form_data(store, [agent])).status_code == 403
    assert "/console/team/" not in client.get("/console/").content.decode()
    assert Tenant.objects.get(pk=store.pk).assignment == "manual"


def test_a_manager_saves_the_rule_hours_holidays_target_and_members(client, store, manager, agent):
    client.force_login(manager)
    response = client.post(URL, form_data(store, [manager, agent], **{f"capacity_{manager.pk}": "0",
                                                                       f"notify_{agent.pk}": "digest"}))
    assert response.status_code == 302 and response["Location"] == "/console/team/?tenant=alpha"
    store.refresh_from_db()
    assert (store.assignment, store.timezone, store.first_response_minutes) == ("round_robin", "Europe/Berlin", 15)
    assert store.business_hours == {"mon": [["09:00", "12:30"], ["13:30", "17:30"]], "tue": [["09:00", "17:30"]],
                                    "fri": [["09:00", "16:00"]]}
    assert store.holidays == ["2026-12-25", "2026-12-26"]
    assert (seat(agent, store).capacity, seat(agent, store).languages) == (3, ["en", "es"])
    assert seat(manager, store).capacity == 0
    assert (seat(agent, store).notify, seat(manager, store).notify) == ("digest", "each")  # not sent: kept
    page = client.get(response["Location"]).content.decode()
    assert "Saved how Alpha Outfitters" in page and 'value="09:00-12:30, 13:30-17:30"' in page


def test_always_open_clears_the_schedule_and_an_empty_target_is_none(client, store, manager):
    Tenant.objects.filter(pk=store.pk).update(business_hours={"mon": [["09:00", "17:00"]]}, first_response_minutes=5)
    client.force_login(manager)
    assert client.post(URL, form_data(store, [manager], always_open="on", first_response_minutes="")).status_code == 302
    store.refresh_from_db()
    assert (store.business_hours, store.first_response_minutes) == ({}, None)


@pytest.mark.parametrize("changes, field, error", [
    ({"mon": "9-17"}, "mon", "is not a time"),
    ({"tue": "09:00 to 17:00"}, "tue", "opens-closes"),
    ({"mon": "09:00-13:00, 12:00-17:00"}, "mon", "overlap"),
    ({"fri": "17:00-09:00"}, "fri", "closes before it opens"),
    ({"mon": "", "tue": "", "fri": ""}, None, "never open"),
    ({"holidays": "25.12.2026"}, "holidays", "is not a date"),
    ({"timezone": "Mars/Olympus"}, "timezone", "Select a valid choice"),
    ({"first_response_minutes": "0"}, "first_response_minutes", "greater than or equal to 1"),
    ({"assignment": "random"}, "assignment", "Select a valid choice"),
    ({"capacity_AGENT": "-1"}, "capacity_AGENT", "greater than or equal to 0"),
    ({"languages_AGENT": "english"}, "languages_AGENT", "not a two-letter language code"),
    ({"notify_AGENT": "weekly"}, "notify_AGENT", "Select a valid choice"),
])
def test_a_refused_setting_stands_under_its_field_and_nothing_is_stored(client, store, manager, agent, changes, field,
                                                                        error):
    changes = {k.replace("AGENT", str(agent.pk)): v for k, v in changes.items()}
    field = field.replace("AGENT", str(agent.pk)) if field else None
    client.force_login(manager)
    response = client.post(URL, form_data(store, [manager, agent], **changes))
    assert response.status_code == 400
    form = response.context["form"]
    errors = form.errors.get(field or "__all__")
    assert errors and error in " ".join(errors), form.errors
    store.refresh_from_db()
    assert (store.assignment, store.business_hours, store.holidays) == ("manual", {}, [])
    assert (seat(agent, store).capacity, seat(agent, store).languages, seat(agent, store).notify) == (5, [], "each")


def test_switching_on_a_rule_gives_waiting_hand_offs_out_at_once(client, store, manager, agent):
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=store))
    ownership.conversation_hand_off(conversation.id, "visitor asked for a person", code="asked_for_person")
    presence.presence_join(agent, "console-of-ada")
    client.force_login(manager)
    data = form_data(store, [manager, agent], **{f"capacity_{manager.pk}": "0"})
    data.update({day: "00:00-24:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}, holidays="")
    assert client.post(URL, data).status_code == 302
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_agent) == (Conversation.Status.HUMAN, agent)


def test_another_stores_slug_answers_like_a_missing_one(client, store, manager):
    other = TenantFactory(slug="bravo")
    client.force_login(manager)
    assert client.get(URL, {"tenant": "bravo"}).status_code == 404
    assert client.post(URL, form_data(other, [])).status_code == 404
    assert Tenant.objects.get(pk=other.pk).assignment == "manual"
