"""Tenant isolation: an agent of store A, aimed at store B's conversations and messages, learns nothing and
changes nothing. The walk covers every agent socket frame, the access functions, the console's HTTP URLs
and the Django admin; another store's id answers exactly like an id that does not exist."""
import re
from html import unescape
from urllib.parse import urljoin, urlsplit

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser, Permission
from django.db.models import Max
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from chatbot.conversations import access, selectors
from chatbot.errors import NotFound, PermissionDenied
from chatbot.models import (
    ActionCall, AgentMembership, AssistSuggestion, CannedReply, Conversation, ConversationTransition, Feedback,
    KnowledgeEntry, Message, StoreConnection, Tenant,
)
from tests.chatbot.sockets import agent_socket, drain, frame_where, frames_until, widget_socket
from tests.factories import ConversationFactory, MessageFactory, TenantFactory, UserFactory, VisitorFactory, agent_of

db = database_sync_to_async
S = Conversation.Status
B_SECRET = "bravo-secret-words"


def build_two_stores() -> dict:
    """Store A with its agent and manager; store B with a waiting conversation, a bot reply and a canned reply."""
    alpha = TenantFactory(name="Alpha Outdoor", slug="alpha", allowed_origins=["https://shop.example"])
    bravo = TenantFactory(name="Bravo Hidden Store", slug="bravo", allowed_origins=["https://shop.example"])
    a_agent = agent_of(alpha, username="ada", first_name="Ada", last_name="Alpha")
    a_manager = agent_of(alpha, role="manager", username="amy", first_name="Amy", last_name="Alpha")
    b_agent = agent_of(bravo, username="bob", first_name="Bob", last_name="Bravo")
    a_conversation = ConversationFactory(visitor=VisitorFactory(tenant=alpha), last_seq=2,
                                         last_message_text="alpha question")
    asked_a = MessageFactory(conversation=a_conversation, seq=1, sender="visitor", text="alpha question")
    MessageFactory(conversation=a_conversation, seq=2, sender="bot", text="alpha answer", reply_to=asked_a)
    b_conversation = ConversationFactory(
        visitor=VisitorFactory(tenant=bravo, email="visitor@bravo.example"), status=S.WAITING, last_seq=2, unread=1,
        last_message_text=B_SECRET, handoff_reason="asked for a person",
    )
    asked = MessageFactory(conversation=b_conversation, seq=1, sender="visitor", text=B_SECRET, intent="refund")
    b_reply = MessageFactory(conversation=b_conversation, seq=2, sender="bot", text=f"{B_SECRET} reply",
                             reply_to=asked)
    AssistSuggestion.objects.create(conversation=b_conversation, message=asked, texts=[f"{B_SECRET} suggestion"])
    b_canned = CannedReply.objects.create(tenant=bravo, shortcut="bravo-refund", text=f"{B_SECRET} canned")
    missing_conversation = (Conversation.objects.aggregate(top=Max("id"))["top"] or 0) + 10**6
    missing_message = (Message.objects.aggregate(top=Max("id"))["top"] or 0) + 10**6
    missing_canned = (CannedReply.objects.aggregate(top=Max("id"))["top"] or 0) + 10**6
    b_entry = KnowledgeEntry.objects.create(tenant=bravo, question=f"{B_SECRET} question?", answer=f"{B_SECRET} answer",
                                            translations={"es": {"question": "¿?", "answer": f"{B_SECRET} es"}})
    missing_entry = (KnowledgeEntry.objects.aggregate(top=Max("id"))["top"] or 0) + 10**6
    StoreConnection.objects.create(tenant=bravo, kind="webhook", url=f"https://{B_SECRET}.example/orders",
                                   intent_actions={"refund": "start_return"})
    ActionCall.objects.create(tenant=bravo, conversation=b_conversation, action="order_status", outcome="failed",
                              params={"order_number": "BRAVO-1"}, detail=f"{B_SECRET} detail")
    return {
        "alpha": alpha, "bravo": bravo, "a_agent": a_agent, "a_manager": a_manager, "b_agent": b_agent,
        "a_conversation": a_conversation, "b_conversation": b_conversation, "b_reply": b_reply,
        "b_canned": b_canned, "b_entry": b_entry,
        "missing": {"conversation": missing_conversation, "message": missing_message, "canned": missing_canned,
                    "entry": missing_entry},
    }


def store_snapshot(tenant: Tenant) -> dict:
    """Everything an outsider could change in a store."""
    return {
        "conversations": list(Conversation.objects.filter(tenant=tenant).order_by("id").values()),
        "messages": list(Message.objects.filter(conversation__tenant=tenant).order_by("id").values()),
        "transitions": ConversationTransition.objects.filter(conversation__tenant=tenant).count(),
        "feedback": Feedback.objects.filter(message__conversation__tenant=tenant).count(),
        "suggestions": list(AssistSuggestion.objects.filter(conversation__tenant=tenant).values()),
        "canned": list(CannedReply.objects.filter(tenant=tenant).values()),
        "knowledge": list(KnowledgeEntry.objects.filter(tenant=tenant).values()),
        "texts": list(Tenant.objects.filter(pk=tenant.pk).values("greeting", "translations", "untranslated")),
        "order_system": list(StoreConnection.objects.filter(tenant=tenant).values()),
        "action_calls": list(ActionCall.objects.filter(tenant=tenant).order_by("id").values()),
        "team": list(Tenant.objects.filter(pk=tenant.pk).values("assignment", "timezone", "business_hours", "holidays",
                                                                "first_response_minutes")),
        "seats": list(AgentMembership.objects.filter(tenant=tenant).order_by("id").values("capacity", "languages",
                                                                                          "notify")),
    }


def secrets_of(world: dict) -> list[str]:
    """Strings of store B that must never appear in anything A's people can open."""
    bravo = world["bravo"]
    return [bravo.public_key, bravo.name, B_SECRET, "visitor@bravo.example", "Bob Bravo"]


# --- the agent socket: every frame type ---------------------------------------------------------

AGENT_FRAMES = {
    "open": lambda c, m, agent: {"type": "open", "conversation": c},
    "take_over": lambda c, m, agent: {"type": "take_over", "conversation": c},
    "hand_back": lambda c, m, agent: {"type": "hand_back", "conversation": c},
    "resolve": lambda c, m, agent: {"type": "resolve", "conversation": c},
    "reassign": lambda c, m, agent: {"type": "reassign", "conversation": c, "agent": agent},
    "message": lambda c, m, agent: {"type": "message", "conversation": c, "text": "hello", "client_id": f"x-{c}"},
    "note": lambda c, m, agent: {"type": "note", "conversation": c, "text": "note", "client_id": f"n-{c}"},
    "feedback": lambda c, m, agent: {"type": "feedback", "message_id": m, "rating": "down", "correct_reply": "Better.",
                                     "correct_intent": "other"},
    "typing": lambda c, m, agent: {"type": "typing", "conversation": c, "on": True},
    "read": lambda c, m, agent: {"type": "read", "conversation": c},
}


def test_the_walk_covers_every_agent_frame_type():
    from chatbot.sockets.agent import FRAME_TYPES

    assert set(FRAME_TYPES) - {"inbox"} == set(AGENT_FRAMES)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("frame_type", list(AGENT_FRAMES))
async def test_another_stores_ids_answer_not_found_exactly_like_missing_ones(frame_type):
    world = await db(build_two_stores)()
    bravo, b_conversation = world["bravo"], world["b_conversation"]
    before = await db(store_snapshot)(bravo)
    b_widget, _ = await widget_socket(bravo, visitor=await db(lambda: b_conversation.visitor.token)())
    comm, inbox = await agent_socket(world["a_agent"])
    assert [c["id"] for c in inbox["conversations"]] == [world["a_conversation"].id]

    make = AGENT_FRAMES[frame_type]
    await comm.send_json_to(make(b_conversation.id, world["b_reply"].id, world["b_agent"].pk))
    theirs = await frame_where(comm, type="error")
    missing = world["missing"]
    await comm.send_json_to(make(missing["conversation"], missing["message"], world["b_agent"].pk))
    nowhere = await frame_where(comm, type="error")

    assert theirs["code"] == "not_found"
    assert (theirs["code"], theirs["detail"]) == (nowhere["code"], nowhere["detail"])
    assert set(theirs) == set(nowhere)
    assert await db(store_snapshot)(bravo) == before
    assert await b_widget.receive_nothing(timeout=0.3)  # not even a typing indicator
    rest, secrets = str(await drain(comm)), await db(secrets_of)(world)
    assert not any(s in rest for s in secrets)
    await comm.disconnect()
    await b_widget.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_agent_never_receives_another_stores_live_frames():
    world = await db(build_two_stores)()
    alpha, bravo = world["alpha"], world["bravo"]
    a_socket, _ = await agent_socket(world["a_agent"])
    b_socket, _ = await agent_socket(world["b_agent"])
    b_widget, b_session = await widget_socket(bravo)
    b_id = b_session["conversation"]

    await b_widget.send_json_to({"type": "message", "text": f"{B_SECRET} live", "client_id": "b-1"})
    await b_widget.send_json_to({"type": "typing", "on": True})
    await b_socket.send_json_to({"type": "message", "conversation": b_id, "text": "Bob here", "client_id": "b-2"})
    await b_socket.send_json_to({"type": "note", "conversation": b_id, "text": f"{B_SECRET} note", "client_id": "b-3"})
    await b_socket.send_json_to({"type": "resolve", "conversation": b_id})
    # B's agent heard all of it, so it was published...
    await frames_until(b_socket, lambda f: f["type"] == "conversation" and f["conversation"]["id"] == b_id
                       and f["conversation"]["status"] == "resolved")
    # ...and A's agent, who hears her own store's next message, heard none of it before.
    a_widget, a_session = await widget_socket(alpha)
    await a_widget.send_json_to({"type": "message", "text": "alpha live", "client_id": "a-1"})
    frames = await frames_until(a_socket, lambda f: f["type"] == "message" and f["message"]["text"] == "alpha live")
    frames += await drain(a_socket)
    ids = {f["conversation"]["id"] if isinstance(f.get("conversation"), dict) else f.get("conversation")
           for f in frames}
    assert b_id not in ids and ids <= {a_session["conversation"]}
    secrets = await db(secrets_of)(world)
    assert not any(s in str(frames) for s in secrets)
    for socket in (a_socket, b_socket, a_widget, b_widget):
        await socket.disconnect()


# --- the access functions ---------------------------------------------------------------------


@pytest.fixture
def world(db):
    return build_two_stores()


def refusal(call) -> tuple:
    with pytest.raises(NotFound) as refused:
        call()
    return type(refused.value), refused.value.code, refused.value.detail


def test_access_conversation_of_another_store_is_refused_like_a_missing_one(world):
    agent = world["a_agent"]
    theirs = refusal(lambda: access.access_conversation(agent, world["b_conversation"].id))
    assert theirs == refusal(lambda: access.access_conversation(agent, world["missing"]["conversation"]))
    assert theirs == refusal(lambda: access.access_conversation(agent, world["b_conversation"].id, lock=True))
    assert theirs[1] == "not_found"
    assert access.access_conversation(agent, world["a_conversation"].id) == world["a_conversation"]


def test_access_message_of_another_store_is_refused_like_a_missing_one(world):
    agent = world["a_agent"]
    theirs = refusal(lambda: access.access_message(agent, world["b_reply"].id))
    assert theirs == refusal(lambda: access.access_message(agent, world["missing"]["message"]))
    assert theirs[1] == "not_found"


@pytest.mark.parametrize("bad_id", ["1", 1.0, True, None, [1], {"id": 1}])
def test_access_functions_refuse_ids_that_are_not_integers(world, bad_id):
    agent = world["a_agent"]
    assert refusal(lambda: access.access_conversation(agent, bad_id))[1] == "not_found"
    assert refusal(lambda: access.access_message(agent, bad_id))[1] == "not_found"


def test_access_tenant_by_id_or_slug_and_the_manager_check(world):
    alpha, bravo = world["alpha"], world["bravo"]
    assert access.access_tenant(world["a_agent"], "alpha") == alpha
    assert access.access_tenant(world["a_agent"], alpha.id) == alpha
    assert refusal(lambda: access.access_tenant(world["a_agent"], "bravo")) == refusal(
        lambda: access.access_tenant(world["a_agent"], "no-such-store"))
    assert refusal(lambda: access.access_tenant(world["a_agent"], bravo.id))[1] == "not_found"
    with pytest.raises(PermissionDenied):
        access.access_tenant(world["a_agent"], "alpha", manager=True)
    assert access.access_tenant(world["a_manager"], "alpha", manager=True) == alpha


def test_who_sees_which_stores(world):
    alpha, bravo = world["alpha"], world["bravo"]
    assert access.tenant_ids_of(world["a_agent"]) == [alpha.id]
    assert access.tenant_ids_of(AnonymousUser()) == []
    assert access.tenant_ids_of(UserFactory()) == []
    assert access.role_in(world["a_manager"], alpha.id) == "manager"
    assert access.role_in(world["a_agent"], bravo.id) is None
    root = UserFactory(is_superuser=True, is_staff=True)
    assert set(access.tenant_ids_of(root)) == {alpha.id, bravo.id}
    assert access.access_conversation(root, world["b_conversation"].id) == world["b_conversation"]


def test_a_deactivated_user_or_store_sees_nothing(world):
    agent = world["a_agent"]
    Tenant.objects.filter(pk=world["alpha"].pk).update(is_active=False)
    assert access.tenant_ids_of(agent) == []
    assert refusal(lambda: access.access_conversation(agent, world["a_conversation"].id))[1] == "not_found"
    Tenant.objects.filter(pk=world["alpha"].pk).update(is_active=True)
    agent.is_active = False
    agent.save()
    assert access.tenant_ids_of(agent) == [] and not access.is_agent(agent)


def test_inbox_and_counts_hold_only_the_agents_stores(world):
    agent = world["a_agent"]
    for tab in selectors.INBOX_TABS:
        assert world["b_conversation"] not in selectors.inbox(agent, tab)
    assert list(selectors.inbox(agent, "all", B_SECRET)) == []
    assert list(selectors.inbox(agent, "all", str(world["b_conversation"].id))) == []
    assert list(selectors.inbox(agent, "all", tenant_id=world["bravo"].id)) == []
    assert selectors.inbox_counts(agent) == {"mine": 0, "unassigned": 0, "all": 1}
    assert list(access.conversations_for(agent)) == [world["a_conversation"]]


# --- the console's HTTP URLs ----------------------------------------------------------------------

# Every console URL, for the walk. A URL that takes an object id is written with the placeholder of its kind
# ({conversation}, {message} or {canned}) and is called with store B's id and with a missing id: both must
# answer 404 alike, change nothing and show nothing of B. Pages without ids are opened and searched for B.
# Add each new console URL here: test_every_console_url_is_in_the_walk fails until it is.
CONSOLE_OBJECT_URLS: list[tuple[str, str]] = [
    ("GET", "/console/canned/{canned}/"),
    ("POST", "/console/canned/{canned}/"),
    ("POST", "/console/canned/{canned}/delete/"),
    ("GET", "/console/knowledge/{entry}/"),
    ("POST", "/console/knowledge/{entry}/"),
    ("POST", "/console/knowledge/{entry}/active/"),
    ("POST", "/console/knowledge/{entry}/delete/"),
    ("GET", "/console/review/{conversation}/"),
    ("POST", "/console/review/queue/{message}/label/"),
]
CONSOLE_PAGES: list[str] = ["/console/", "/console/canned/", "/console/me/"]
# Pages for a store's managers only, with the query parameter that picks the store: an agent gets 403, a
# manager sees her store and nothing of B, and one aimed at store B answers exactly like a missing store.
MANAGER_PAGES: list[tuple[str, str]] = [("/console/insights/", "tenant"), ("/console/insights/fix/", "tenant"),
                                        ("/console/review/", "store"), ("/console/review/queue/", "store"),
                                        ("/console/models/", "tenant"), ("/console/models/runs.json", "tenant"),
                                        ("/console/knowledge/", "tenant"), ("/console/knowledge/new/", "tenant"),
                                        ("/console/texts/", "tenant"), ("/console/orders/", "tenant"),
                                        ("/console/team/", "tenant")]
# Their downloads (streamed): the same refusals, and no row of B in what a manager gets.
MANAGER_DOWNLOADS: list[tuple[str, str]] = [("/console/export/?format=csv&rows=conversation", "store"),
                                            ("/console/export/?format=jsonl&rows=message", "store")]
# Their POSTs, with the store in the form: for B refused like a missing store, changing and writing nothing.
MANAGER_POSTS: list[tuple[str, str]] = [("/console/insights/fix/recompute/", "tenant"),
                                        ("/console/knowledge/new/", "tenant"), ("/console/texts/", "tenant"),
                                        ("/console/models/retrain/", "tenant"), ("/console/models/rollback/", "tenant"),
                                        ("/console/orders/connect/", "tenant"), ("/console/orders/test/", "tenant"),
                                        ("/console/orders/disconnect/", "tenant"), ("/console/team/", "tenant")]
CONSOLE_POST_DATA = {"tenant": "bravo", "shortcut": "hacked", "text": "hacked", "conversation": "", "message": "",
                     "question": "hacked?", "answer": "hacked", "greeting": "hacked", "untranslated": "main_language",
                     "assignment": "round_robin", "timezone": "UTC", "always_open": "on"}


def console_routes() -> list[str]:
    """The console's URL patterns as written in chatbot.console.urls, e.g. 'canned/<int:reply_id>/'."""
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern)

    return [r for r in walk(get_resolver().url_patterns) if r.startswith("console/")]


def test_every_console_url_is_in_the_walk():
    walked = {re.sub(r"\{\w+\}", "<id>", url) for _, url in CONSOLE_OBJECT_URLS} | set(CONSOLE_PAGES)
    walked |= {url for url, _ in MANAGER_PAGES + MANAGER_POSTS} | {url.split("?")[0] for url, _ in MANAGER_DOWNLOADS}
    for route in console_routes():
        as_url = "/" + re.sub(r"<(?:\w+:)?\w+>", "<id>", route)
        assert as_url in walked, f"{as_url} is not in tests/chatbot/test_access.py's CONSOLE_OBJECT_URLS/PAGES"


@pytest.mark.django_db
@pytest.mark.parametrize("method, template", CONSOLE_OBJECT_URLS)
@pytest.mark.parametrize("who", ["a_agent", "a_manager"])
def test_console_urls_answer_another_stores_ids_like_missing_ones(world, method, template, who):
    client = Client()
    client.force_login(world[who])
    before = store_snapshot(world["bravo"])
    ids = {"conversation": world["b_conversation"].id, "message": world["b_reply"].id,
           "canned": world["b_canned"].id, "entry": world["b_entry"].id}
    call = getattr(client, method.lower())
    args = (CONSOLE_POST_DATA,) if method == "POST" else ()
    theirs = call(template.format(**ids), *args)
    nowhere = call(template.format(**world["missing"]), *args)
    assert theirs.status_code == nowhere.status_code == 404
    assert theirs.content == nowhere.content
    assert store_snapshot(world["bravo"]) == before
    assert not any(s in theirs.content.decode() for s in secrets_of(world))


@pytest.mark.django_db
@pytest.mark.parametrize("page", CONSOLE_PAGES)
@pytest.mark.parametrize("who", ["a_agent", "a_manager"])
def test_console_pages_show_nothing_of_another_store(world, page, who):
    client = Client()
    client.force_login(world[who])
    response = client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Alpha Outdoor" in html
    assert not any(s in html for s in secrets_of(world))


@pytest.mark.django_db
@pytest.mark.parametrize("page, param", MANAGER_PAGES)
def test_manager_pages_refuse_agents_and_show_nothing_of_another_store(world, page, param):
    agent = Client()
    agent.force_login(world["a_agent"])
    assert agent.get(page).status_code == 403
    assert agent.get(page, {param: "alpha"}).status_code == 403
    manager = Client()
    manager.force_login(world["a_manager"])
    response = manager.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Alpha Outdoor" in html
    assert not any(s in html for s in secrets_of(world))
    theirs, nowhere = manager.get(page, {param: "bravo"}), manager.get(page, {param: "no-such-store"})
    assert theirs.status_code == nowhere.status_code == 404
    assert theirs.content == nowhere.content


@pytest.mark.django_db
@pytest.mark.parametrize("url, param", MANAGER_DOWNLOADS)
def test_manager_downloads_refuse_agents_and_hold_nothing_of_another_store(world, url, param):
    agent = Client()
    agent.force_login(world["a_agent"])
    assert agent.get(url).status_code == 403
    manager = Client()
    manager.force_login(world["a_manager"])
    response = manager.get(url)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    assert "alpha question" in text or str(world["a_conversation"].id) in text
    assert not any(s in text for s in secrets_of(world)) and "bravo" not in text
    theirs, nowhere = manager.get(url, {param: "bravo"}), manager.get(url, {param: "no-such-store"})
    assert theirs.status_code == nowhere.status_code == 404
    assert theirs.content == nowhere.content


@pytest.mark.django_db
@pytest.mark.parametrize("url, param", MANAGER_POSTS)
def test_manager_posts_aimed_at_another_store_answer_like_a_missing_one(world, url, param, settings, tmp_path):
    settings.MODELS_DIR = tmp_path
    before = store_snapshot(world["bravo"])
    manager = Client()
    manager.force_login(world["a_manager"])
    theirs, nowhere = manager.post(url, {param: "bravo"}), manager.post(url, {param: "no-such-store"})
    assert theirs.status_code == nowhere.status_code == 404
    assert theirs.content == nowhere.content
    agent = Client()
    agent.force_login(world["a_agent"])
    assert agent.post(url, {param: "alpha"}).status_code == 403
    assert store_snapshot(world["bravo"]) == before
    assert not any(tmp_path.iterdir())


# --- the Django admin -----------------------------------------------------------------------------


def staff_of(tenant: Tenant):
    """A staff user who belongs to `tenant`'s team and may view every chatbot model in the admin."""
    user = agent_of(tenant, username=f"staff-{tenant.slug}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="chatbot",
                                                        codename__startswith="view_"))
    return user


def admin_crawl(client: Client, start: str = "/admin/", limit: int = 400) -> dict[str, str]:
    """Every admin page reachable by following links from `start` (logout and password pages left out)."""
    seen: dict[str, str] = {}
    queue = [start]
    while queue and len(seen) < limit:
        url = queue.pop(0)
        if url in seen:
            continue
        response = client.get(url)
        seen[url] = response.content.decode() if response.status_code == 200 else ""
        for href in re.findall(r'href="([^"]+)"', seen[url]):
            target = urljoin(url, unescape(href))
            parts = urlsplit(target)
            if parts.netloc or not parts.path.startswith("/admin/") or "logout" in parts.path \
                    or "password" in parts.path:
                continue
            if target not in seen:
                queue.append(target)
    return seen


@pytest.mark.django_db
def test_admin_staff_of_store_a_sees_a_and_never_b(world):
    client = Client()
    client.force_login(staff_of(world["alpha"]))
    a_conv, b_conv = world["a_conversation"], world["b_conversation"]
    pages = {
        "/admin/chatbot/conversation/": (f"/admin/chatbot/conversation/{a_conv.id}/change/",
                                         f"/admin/chatbot/conversation/{b_conv.id}/change/"),
        "/admin/chatbot/message/": (f"/admin/chatbot/message/{a_conv.messages.first().id}/change/",
                                    f"/admin/chatbot/message/{world['b_reply'].id}/change/"),
        "/admin/chatbot/tenant/": (f"/admin/chatbot/tenant/{world['alpha'].id}/change/",
                                   f"/admin/chatbot/tenant/{world['bravo'].id}/change/"),
    }
    for changelist, (ours, theirs) in pages.items():
        html = client.get(changelist).content.decode()
        assert ours.replace("/change/", "/") in html or ours in html, changelist
        assert theirs not in html and theirs.replace("/change/", "/") not in html, changelist
        assert client.get(ours).status_code == 200
        response = client.get(theirs, follow=True)  # the admin says "doesn't exist", as for a missing id
        assert not any(s in response.content.decode() for s in secrets_of(world))
    assert world["alpha"].public_key in client.get("/admin/chatbot/tenant/").content.decode()

    crawled = admin_crawl(client)
    assert "/admin/chatbot/conversation/" in crawled and len(crawled) > 20
    for url, html in crawled.items():
        leaked = [s for s in secrets_of(world) if s in html]
        assert not leaked, f"{url} shows {leaked}"


@pytest.mark.django_db
def test_admin_filters_by_another_stores_id_show_nothing(world):
    client = Client()
    client.force_login(staff_of(world["alpha"]))
    bravo = world["bravo"]
    for url in (f"/admin/chatbot/conversation/?tenant__id__exact={bravo.id}",
                f"/admin/chatbot/message/?conversation__tenant__id__exact={bravo.id}"):
        html = client.get(url, follow=True).content.decode()
        assert not any(s in html for s in secrets_of(world)), url
    found = client.get(f"/admin/chatbot/message/?q={B_SECRET}").context["cl"]
    assert found.result_count == 0


# --- the widget socket: every frame type, as a visitor of another store ---------------------------------

# What a visitor of store A sends, aimed at store B: B's message ids, B's visitor token, B's signed identity.
WIDGET_FRAMES = {
    "message": lambda m: {"type": "message", "text": "hello", "client_id": "w-1"},
    "resume": lambda m: {"type": "resume", "after_seq": 0},
    "feedback": lambda m: {"type": "feedback", "message_id": m, "rating": "down"},
    "csat": lambda m: {"type": "csat", "rating": 1},
    "contact": lambda m: {"type": "contact", "email": "intruder@example.com"},
    "typing": lambda m: {"type": "typing", "on": True},
}


def test_the_walk_covers_every_widget_frame_type():
    from chatbot.sockets.widget import FRAME_LIMITS

    assert set(FRAME_LIMITS) == set(WIDGET_FRAMES)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("frame_type", list(WIDGET_FRAMES))
@pytest.mark.parametrize("how", ["own visitor", "b's token", "b's identity"])
async def test_a_visitor_of_another_store_reaches_nothing_of_b_with_any_widget_frame(frame_type, how):
    from chatbot.conversations import identity
    from tests.chatbot.sockets import WIDGET_ORIGIN
    from channels.testing import WebsocketCommunicator
    from chatbot.asgi import application

    world = await db(build_two_stores)()
    alpha, bravo = world["alpha"], world["bravo"]
    b_visitor = await db(lambda: world["b_conversation"].visitor)()
    await db(Tenant.objects.filter(pk__in=[alpha.pk, bravo.pk]).update)(identity_secret="shared-secret-" + "x" * 20)
    await db(type(b_visitor).objects.filter(pk=b_visitor.pk).update)(external_id="cust-b")
    before = await db(store_snapshot)(bravo)
    b_widget, _ = await widget_socket(bravo, visitor=b_visitor.token)
    b_agent, _ = await agent_socket(world["b_agent"])
    query = f"key={alpha.public_key}"
    if how == "b's token":
        query += f"&visitor={b_visitor.token}"
    elif how == "b's identity":  # the same customer id, signed for A: A's own visitor, never B's
        query += "&user_id=cust-b&user_hash=" + identity.identity_hash("shared-secret-" + "x" * 20, "cust-b")
    comm = WebsocketCommunicator(application, f"/ws/widget/?{query}", headers=[(b"origin", WIDGET_ORIGIN.encode())])
    assert (await comm.connect(timeout=5))[0]
    session = await comm.receive_json_from(timeout=5)
    assert session["type"] == "session" and session["messages"] == [] and session["visitor"] != b_visitor.token
    await comm.send_json_to(WIDGET_FRAMES[frame_type](world["b_reply"].id))
    answered = await drain(comm)
    assert await db(store_snapshot)(bravo) == before
    assert await b_widget.receive_nothing(timeout=0.3)
    secrets = await db(secrets_of)(world)
    assert not any(s in str([session, answered]) for s in secrets)
    heard = await drain(b_agent)  # B's agents hear nothing of A's visitor
    assert not any(f.get("type") in ("message", "typing") for f in heard), heard
    for socket in (comm, b_widget, b_agent):
        await socket.disconnect()


@pytest.mark.parametrize("slug", ["", "a\x00b", "no such store", "é" * 3, "x" * 5000])
def test_a_store_slug_no_store_can_have_is_not_found_without_a_query(db, slug, django_assert_num_queries):
    user = agent_of(TenantFactory())
    with django_assert_num_queries(0), pytest.raises(NotFound):
        access.access_tenant(user, slug)
