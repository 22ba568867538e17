"""The console's pages through the Django test client: login, who may open the console, the data
it renders for console.js, and the canned replies' writes, per role and per store."""
import json
import re

import pytest
from django.contrib.auth import get_user_model

from chatbot.console import canned

from chatbot.conversations import services
from chatbot.errors import NotFound, PermissionDenied
from chatbot.models import CannedReply
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
DATA_SCRIPT = re.compile(r'<script id="console-data" type="application/json">(.*?)</script>', re.S)


def member(tenant, username: str, role: str = "agent", name: str | None = None):
    membership, _ = services.agent_add(tenant, username, password=PASSWORD, role=role, name=name)
    return membership.user


@pytest.fixture
def store_a():
    return TenantFactory(name="Alpha Outfitters", slug="alpha")


@pytest.fixture
def store_b():
    return TenantFactory(name="Bravo Bikes", slug="bravo")


@pytest.fixture
def manager(store_a):
    return member(store_a, "mia", role="manager", name="Mia Manager")


@pytest.fixture
def agent(store_a):
    return member(store_a, "ada", name="Ada Agent")


def logged_in(client, user):
    client.force_login(user)
    return client


def console_data(response) -> dict:
    found = DATA_SCRIPT.search(response.content.decode())
    assert found, "the page carries its data in a json_script block"
    return json.loads(found.group(1))


# --- login and who may open the console -------------------------------------------------


def test_login_page_renders_our_form(client):
    response = client.get("/accounts/login/?next=/console/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Log in to the agent console" in html
    assert 'name="username"' in html and 'name="password"' in html and "csrfmiddlewaretoken" in html
    assert 'name="next" value="/console/"' in html


def test_logging_in_through_the_form_opens_the_console(client, agent):
    response = client.post("/accounts/login/", {"username": "ada", "password": PASSWORD, "next": "/console/"})
    assert response.status_code == 302 and response.url == "/console/"
    assert client.get("/console/").status_code == 200


def test_wrong_password_is_refused_with_a_message(client, agent):
    response = client.post("/accounts/login/", {"username": "ada", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_console_redirects_anonymous_users_to_login(client):
    response = client.get("/console/")
    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/console/"
    assert client.get("/console/canned/").url == "/accounts/login/?next=/console/canned/"


def test_logged_in_user_of_no_team_gets_a_clear_403(client, store_a):
    outsider = get_user_model().objects.create_user("olga", password=PASSWORD)
    response = logged_in(client, outsider).get("/console/")
    assert response.status_code == 403
    assert "You are not a member of any store&#x27;s team." in response.content.decode()
    assert logged_in(client, outsider).get("/console/canned/").status_code == 403


def test_logout_is_a_post_that_ends_the_session(client, agent):
    logged_in(client, agent)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response.url == "/accounts/login/"
    assert client.get("/console/").status_code == 302


def test_member_sees_the_console_with_her_stores_team_as_json(client, store_a, store_b, agent, manager):
    member(store_b, "bob", name="Bob Bravo")
    CannedReply.objects.create(tenant=store_a, shortcut="hello", text="Hi there!")
    CannedReply.objects.create(tenant=store_b, shortcut="secret", text="Bravo only")

    response = logged_in(client, agent).get("/console/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Ada Agent" in html and "Alpha Outfitters" in html and "Bravo Bikes" not in html
    data = console_data(response)
    assert data["me"] == {"id": agent.id, "name": "Ada Agent", "username": "ada"}
    assert data["tenants"] == [{"slug": "alpha", "name": "Alpha Outfitters", "role": "agent", "languages": []}]
    assert data["teams"] == {"alpha": [
        {"id": agent.id, "name": "Ada Agent", "role": "agent", "languages": []},
        {"id": manager.id, "name": "Mia Manager", "role": "manager", "languages": []},
    ]}
    assert data["canned"] == [{"tenant": "alpha", "shortcut": "hello", "text": "Hi there!", "language": "en",
                               "translations": {}}]
    assert data["socket_path"] == "/ws/agent/"
    assert data["counts"] == {"mine": 0, "unassigned": 0, "all": 0}


def test_console_pages_have_no_inline_scripts_or_handlers(client, store_a, manager):
    """Content-Security-Policy friendly: code only from console.js, data only as JSON, no style attributes."""
    reply = CannedReply.objects.create(tenant=store_a, shortcut="hello", text="Hi!")
    pages = [client.get("/accounts/login/")]
    logged_in(client, manager)
    pages += [client.get(url) for url in ("/console/", "/console/canned/", f"/console/canned/{reply.id}/")]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, tag
        assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
        assert "style=" not in html


# --- canned replies ------------------------------------------------------------------------


def test_manager_adds_a_canned_reply(client, store_a, manager):
    response = logged_in(client, manager).post(
        "/console/canned/", {"tenant": "alpha", "shortcut": "/Refund-Policy ", "text": "  Refunds take 5 days.  "})
    assert response.status_code == 302 and response.url == "/console/canned/"
    reply = CannedReply.objects.get(tenant=store_a)
    assert (reply.shortcut, reply.text) == ("refund-policy", "Refunds take 5 days.")
    page = client.get("/console/canned/").content.decode()
    assert "/refund-policy" in page and "Refunds take 5 days." in page and "Saved /refund-policy." in page


def test_manager_edits_a_canned_reply(client, store_a, manager):
    reply = CannedReply.objects.create(tenant=store_a, shortcut="hello", text="Hi!")
    logged_in(client, manager)
    form = client.get(f"/console/canned/{reply.id}/")
    assert form.status_code == 200 and 'value="hello"' in form.content.decode()
    response = client.post(f"/console/canned/{reply.id}/", {"shortcut": "hi", "text": "Hello there!"})
    assert response.status_code == 302
    reply.refresh_from_db()
    assert (reply.shortcut, reply.text) == ("hi", "Hello there!")


def test_manager_deletes_a_canned_reply(client, store_a, manager):
    reply = CannedReply.objects.create(tenant=store_a, shortcut="hello", text="Hi!")
    response = logged_in(client, manager).post(f"/console/canned/{reply.id}/delete/")
    assert response.status_code == 302
    assert not CannedReply.objects.filter(pk=reply.id).exists()
    assert client.get(f"/console/canned/{reply.id}/delete/").status_code == 405


def test_duplicate_shortcut_is_refused_with_a_clear_error(client, store_a, manager):
    CannedReply.objects.create(tenant=store_a, shortcut="hello", text="Hi!")
    other = CannedReply.objects.create(tenant=store_a, shortcut="bye", text="Bye!")
    logged_in(client, manager)

    response = client.post("/console/canned/", {"tenant": "alpha", "shortcut": "Hello", "text": "Another hi"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "The shortcut /hello is taken already in this store; choose another." in html
    assert "Another hi" in html  # the form keeps what was typed
    assert CannedReply.objects.filter(tenant=store_a).count() == 2

    response = client.post(f"/console/canned/{other.id}/", {"shortcut": "hello", "text": "Bye!"})
    assert response.status_code == 400 and "is taken already" in response.content.decode()
    other.refresh_from_db()
    assert other.shortcut == "bye"


@pytest.mark.parametrize("shortcut, text, error", [
    ("", "Some text", "Give a shortcut."),
    ("two words", "Some text", "A shortcut may hold only letters, digits, - and _"),
    ("ok", "   ", "Write the reply&#x27;s text."),
    ("ok", "x" * 2001, "A reply has at most 2000 characters"),
])
def test_invalid_canned_reply_says_what_is_wrong(client, store_a, manager, shortcut, text, error):
    response = logged_in(client, manager).post("/console/canned/", {"tenant": "alpha", "shortcut": shortcut,
                                                                    "text": text})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not CannedReply.objects.exists()


def test_same_shortcut_in_two_stores_is_fine(store_a, store_b):
    boss = member(store_a, "boss", role="manager")
    member(store_b, "boss", role="manager")
    canned.canned_reply_save(boss, store_a, "hello", "Hi from Alpha")
    canned.canned_reply_save(boss, "bravo", "hello", "Hi from Bravo")
    assert CannedReply.objects.filter(shortcut="hello").count() == 2


def test_agent_sees_canned_replies_but_cannot_write_them(client, store_a, agent):
    reply = CannedReply.objects.create(tenant=store_a, shortcut="hello", text="Hi!")
    logged_in(client, agent)

    page = client.get("/console/canned/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/hello" in html and "Only your store's managers can add or change canned replies." in html
    assert f"/console/canned/{reply.id}/" not in html and 'name="shortcut"' not in html

    assert client.post("/console/canned/", {"tenant": "alpha", "shortcut": "new", "text": "x"}).status_code == 403
    assert client.get(f"/console/canned/{reply.id}/").status_code == 403
    assert client.post(f"/console/canned/{reply.id}/", {"shortcut": "x", "text": "y"}).status_code == 403
    assert client.post(f"/console/canned/{reply.id}/delete/").status_code == 403
    reply.refresh_from_db()
    assert (reply.shortcut, reply.text) == ("hello", "Hi!")
    assert CannedReply.objects.count() == 1
    with pytest.raises(PermissionDenied):
        canned.canned_reply_save(agent, store_a, "new", "x")


def test_member_of_one_store_cannot_see_or_touch_anothers_canned_replies(client, store_a, store_b, manager):
    theirs = CannedReply.objects.create(tenant=store_b, shortcut="bravo-secret", text="Bravo's own words")
    logged_in(client, manager)

    html = client.get("/console/canned/").content.decode()
    assert "bravo-secret" not in html and "Bravo" not in html
    assert client.get(f"/console/canned/{theirs.id}/").status_code == 404
    assert client.get("/console/canned/999999/").status_code == 404  # the same as a missing one
    assert client.post(f"/console/canned/{theirs.id}/", {"shortcut": "mine", "text": "gotcha"}).status_code == 404
    assert client.post(f"/console/canned/{theirs.id}/delete/").status_code == 404
    assert client.post("/console/canned/", {"tenant": "bravo", "shortcut": "x", "text": "y"}).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.shortcut, theirs.text) == ("bravo-secret", "Bravo's own words")
    assert CannedReply.objects.filter(tenant=store_b).count() == 1
    with pytest.raises(NotFound):
        canned.canned_reply_delete(manager, theirs.id)


def test_markup_in_a_canned_reply_is_escaped(client, store_a, manager):
    text = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
    canned.canned_reply_save(manager, store_a, "xss", text)
    logged_in(client, manager)

    html = client.get("/console/canned/").content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in html

    page = client.get("/console/")
    assert "<script>alert" not in page.content.decode()
    assert console_data(page)["canned"] == [{"tenant": "alpha", "shortcut": "xss", "text": text, "language": "en",
                                             "translations": {}}]
