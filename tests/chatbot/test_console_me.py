"""The console's "My settings" page (/console/me/): every agent sets how each of her stores tells her of hand-offs
nobody was online for (AgentMembership.notify: each, digest, none); she changes her own memberships only (another
agent's, another store's and a missing one answer 404 alike, storing nothing), a value that is no choice is refused
under its field and nothing is stored; the console's header links to it."""
import re

import pytest
from django.db.models import Max

from chatbot.conversations import assignment
from chatbot.errors import NotFound
from chatbot.models import AgentMembership, Tenant
from tests.factories import TenantFactory, agent_of

pytestmark = pytest.mark.django_db
URL = "/console/me/"


@pytest.fixture
def alpha():
    return TenantFactory(name="Alpha Outfitters", slug="alpha")


@pytest.fixture
def bravo():
    return TenantFactory(name="Bravo Bikes", slug="bravo")


@pytest.fixture
def ada(alpha, bravo):
    """An agent of both stores."""
    user = agent_of(alpha, username="ada", first_name="Ada", last_name="Lovelace", email="ada@alpha.example")
    AgentMembership.objects.create(user=user, tenant=bravo, role="manager")
    return user


@pytest.fixture
def grace(alpha):
    """Another agent of Alpha's team."""
    return agent_of(alpha, username="grace", first_name="Grace", last_name="Hopper")


@pytest.fixture
def carol():
    """An agent of a store Ada is not on."""
    return agent_of(TenantFactory(name="Charlie Camping", slug="charlie"), username="carol")


def seat(user, tenant) -> AgentMembership:
    return AgentMembership.objects.get(user=user, tenant=tenant)


def notify_of() -> dict:
    return dict(AgentMembership.objects.values_list("pk", "notify"))


def test_she_sees_a_form_per_store_with_her_choice_and_the_header_links_it(client, alpha, bravo, ada):
    AgentMembership.objects.filter(user=ada, tenant=bravo).update(notify="digest")
    client.force_login(ada)
    html = client.get(URL).content.decode()
    assert re.search(r'<a class="me-link" href="/console/me/" title="Ada Lovelace · My settings" aria-current="page">', html)
    for tenant, chosen in ((alpha, "each"), (bravo, "digest")):
        membership = seat(ada, tenant).pk
        section = re.search(rf'<section[^>]*data-membership="{membership}".*?</section>', html, re.S).group(0)
        assert tenant.name in section and 'name="csrfmiddlewaretoken"' in section
        assert f'name="membership" value="{membership}"' in section
        assert re.search(rf'<option value="{chosen}" selected>', section)
        assert [v for v in re.findall(r'<option value="(\w+)"', section)] == ["each", "digest", "none"]
    assert "ada@alpha.example" in html
    assert "style=" not in html  # the console's CSP
    inbox = client.get("/console/").content.decode()
    assert re.search(r'<a class="me-link" href="/console/me/" title="Ada Lovelace · My settings">', inbox)


def test_she_sets_her_own_choice(client, alpha, bravo, ada, grace):
    client.force_login(ada)
    before = notify_of()
    response = client.post(URL, {"membership": seat(ada, bravo).pk, "notify": "none"})
    assert response.status_code == 302 and response["Location"] == URL
    assert seat(ada, bravo).notify == "none"
    assert notify_of() == {**before, seat(ada, bravo).pk: "none"}  # only that one
    page = client.get(URL).content.decode()
    assert "Saved how Bravo Bikes tells you of hand-offs: no e-mail." in page
    assert client.post(URL, {"membership": seat(ada, alpha).pk, "notify": "digest"}).status_code == 302
    assert (seat(ada, alpha).notify, seat(ada, bravo).notify, seat(grace, alpha).notify) == ("digest", "none", "each")


def test_an_agent_sets_hers_too(client, alpha, grace):
    client.force_login(grace)
    assert client.get(URL).status_code == 200
    assert client.post(URL, {"membership": seat(grace, alpha).pk, "notify": "digest"}).status_code == 302
    assert seat(grace, alpha).notify == "digest"


def test_another_agents_or_another_stores_membership_answers_like_a_missing_one(client, alpha, ada, grace, carol):
    client.force_login(ada)
    before = notify_of()
    missing = (AgentMembership.objects.aggregate(top=Max("id"))["top"] or 0) + 10**6
    charlie = Tenant.objects.get(slug="charlie")
    answers = [client.post(URL, {"membership": membership, "notify": notify})
               for membership in (seat(grace, alpha).pk, seat(carol, charlie).pk, missing, "", "x", "-1", "1.0")
               for notify in ("none", "weekly")]  # a bad value too: 404 first, nothing said about the value
    assert {r.status_code for r in answers} == {404}
    assert len({r.content for r in answers}) == 1
    assert notify_of() == before
    for refused in answers:
        assert b"Grace" not in refused.content and b"Charlie" not in refused.content


def test_a_store_that_is_switched_off_is_not_hers_to_set(client, alpha, ada):
    Tenant.objects.filter(pk=alpha.pk).update(is_active=False)
    client.force_login(ada)
    assert "Alpha Outfitters" not in client.get(URL).content.decode()
    assert client.post(URL, {"membership": seat(ada, alpha).pk, "notify": "none"}).status_code == 404
    assert seat(ada, alpha).notify == "each"


@pytest.mark.parametrize("value", ["weekly", "", "EACH", "each "])
def test_a_value_that_is_no_choice_is_refused_under_its_field_and_nothing_is_stored(client, alpha, bravo, ada, value):
    client.force_login(ada)
    before = notify_of()
    membership = seat(ada, bravo).pk
    response = client.post(URL, {"membership": membership, "notify": value})
    assert response.status_code == 400
    assert notify_of() == before
    [row] = [row for row in response.context["rows"] if row["seat"].pk == membership]
    assert row["form"].errors == {"notify": ["Choose how hand-offs are e-mailed: each, digest or none."]}
    html = response.content.decode()
    section = re.search(rf'<section[^>]*data-membership="{membership}".*?</section>', html, re.S).group(0)
    assert 'class="field field-invalid"' in section and "each, digest or none" in section
    other = re.search(rf'<section[^>]*data-membership="{seat(ada, alpha).pk}".*?</section>', html, re.S).group(0)
    assert "field-invalid" not in other


def test_only_a_post_or_a_get_and_only_with_a_login(client, ada):
    assert client.get(URL).status_code == 302  # to the login page
    assert client.post(URL, {"membership": seat(ada, Tenant.objects.get(slug="alpha")).pk,
                             "notify": "none"}).status_code == 302
    assert set(notify_of().values()) == {"each"}
    client.force_login(ada)
    assert client.put(URL).status_code == 405


def test_the_post_needs_the_csrf_token(alpha, ada):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(ada)
    assert client.post(URL, {"membership": seat(ada, alpha).pk, "notify": "none"}).status_code == 403
    assert seat(ada, alpha).notify == "each"
    page = client.get(URL)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = client.post(URL, {"membership": seat(ada, alpha).pk, "notify": "none",
                                 "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and seat(ada, alpha).notify == "none"


def test_the_service_takes_her_own_membership_only_and_checks_the_choice(alpha, bravo, ada, grace):
    mine = seat(ada, alpha)
    assert assignment.member_notify_set(ada, mine.pk, "digest").notify == "digest"
    with pytest.raises(NotFound):
        assignment.member_notify_set(ada, seat(grace, alpha).pk, "none")
    for bad_id in (str(mine.pk), True, None, float(mine.pk)):
        with pytest.raises(NotFound):
            assignment.member_notify_set(ada, bad_id, "none")
    with pytest.raises(assignment.NotifyInvalid) as refused:
        assignment.member_notify_set(ada, mine.pk, ["none"])
    assert (refused.value.code, refused.value.field) == ("invalid_notify", "notify")
    assert (seat(ada, alpha).notify, seat(grace, alpha).notify) == ("digest", "each")


def test_the_team_service_refuses_a_members_bad_choice_on_her_field_and_keeps_one_not_given(alpha, ada, grace):
    manager = agent_of(alpha, role="manager", username="mia")
    AgentMembership.objects.filter(user=grace).update(notify="digest")
    common = {"assignment": "manual", "timezone_name": "UTC", "business_hours": {}, "holidays": [],
              "first_response_minutes": None}
    with pytest.raises(assignment.TeamSettingsInvalid) as refused:
        assignment.team_settings_save(manager, alpha, **common, members={
            ada.pk: assignment.MemberSettings(5, [], "none"), grace.pk: assignment.MemberSettings(5, [], "weekly")})
    assert (refused.value.code, refused.value.field) == ("invalid_notify", f"notify_{grace.pk}")
    assert (seat(ada, alpha).notify, seat(grace, alpha).notify) == ("each", "digest")  # nothing stored
    assignment.team_settings_save(manager, alpha, **common, members={
        ada.pk: assignment.MemberSettings(5, [], "none"), grace.pk: assignment.MemberSettings(4, [])})
    assert (seat(ada, alpha).notify, seat(grace, alpha).notify, seat(grace, alpha).capacity) == ("none", "digest", 4)


def test_a_superuser_sets_only_the_memberships_she_holds(client, alpha, ada):
    root = agent_of(TenantFactory(name="Delta Diving", slug="delta"), username="root", is_superuser=True,
                    is_staff=True)
    client.force_login(root)
    html = client.get(URL).content.decode()
    assert "Delta Diving" in html and f'data-membership="{seat(ada, alpha).pk}"' not in html
    assert client.post(URL, {"membership": seat(ada, alpha).pk, "notify": "none"}).status_code == 404
    assert seat(ada, alpha).notify == "each"
