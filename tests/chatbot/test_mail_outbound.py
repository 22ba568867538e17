"""E-mail continuity, outbound: agents' replies to a visitor who is away, transcripts and hand-off notices, sent
through Django's SMTP backend to a real SMTP server on loopback (aiosmtpd) that the tests read: headers,
threading, the signed Reply-To, the language; an SMTP server down and back (nothing lost, nothing twice); the
visitor's presence read from her real widget socket."""
import threading
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from chatbot import events
from chatbot.conversations import ownership, services
from chatbot.conversations.payloads import agent_message_payload
from chatbot import redis_clients
from chatbot.mail import kv, notify, outbound, presence, tasks, texts, tokens
from chatbot.models import AgentMembership, AgentPresence, Conversation, Message
from tests.chatbot.mailserver import body, mail_settings
from tests.chatbot.sockets import agent_socket, frame_where, widget_socket
from tests.chatbot.test_events import check_amsg
from tests.factories import ConversationFactory, MessageFactory, TenantFactory, VisitorFactory, agent_of

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async
S = Conversation.Status


@pytest.fixture
def mailing(settings, smtp):
    mail_settings(settings, smtp)
    kv.memory_reset()
    return smtp


@pytest.fixture
def shop():
    return TenantFactory(name="Acme Outdoor", slug="acme", languages=["en", "es", "de"],
                         allowed_origins=["https://shop.example"])


@pytest.fixture
def ada(shop):
    user = agent_of(shop, username="ada", first_name="Ada", last_name="Lovelace", email="ada@acme.example")
    return user


def away_conversation(shop, agent, language: str = "", email: str = "ann@example.com") -> Conversation:
    """A conversation the agent holds, whose visitor left an address and has no widget open."""
    return ConversationFactory(visitor=VisitorFactory(tenant=shop, email=email), status=S.HUMAN,
                               assigned_agent=agent, language=language)


def reply(agent, conversation, text: str, client_id: str) -> Message:
    message, _ = services.agent_message_send(agent, conversation.id, text, client_id)
    return message


# --- what is mailed ------------------------------------------------------------------------------


def test_a_reply_to_a_visitor_who_is_away_is_mailed_in_her_language_threaded_with_a_signed_reply_to(mailing, shop,
                                                                                                   ada):
    conversation = away_conversation(shop, ada, language="es")
    first = reply(ada, conversation, "Hola Ann, tu pedido sale mañana.", "c-1")
    assert first.email_state == Message.EmailState.QUEUED
    amsg = agent_message_payload(first)
    check_amsg(amsg)
    assert amsg["email_state"] == "queued"

    assert outbound.mail_send(first.id) == "sent"
    [mail] = mailing.wait_for(1)
    assert mail["To"] == "ann@example.com"
    assert mail["From"].addresses[0].display_name == "Ada Lovelace de Acme Outdoor"
    assert mail["From"].addresses[0].addr_spec == "chat@shop.example"
    assert mail["Subject"] == "Tu conversación con Acme Outdoor"
    assert mail["Content-Language"] == "es"
    text = body(mail)
    assert "Ada Lovelace de Acme Outdoor te ha respondido:" in text
    assert "Hola Ann, tu pedido sale mañana." in text
    assert "Responde a este correo" in text and "https://shop.example/" in text
    # One thread per conversation: a fixed root, this mail's own fixed id, a reply address naming the conversation.
    root = f"<conversation.{conversation.id}@in.shop.example>"
    assert mail["Message-ID"] == f"<message.{first.id}@in.shop.example>"
    assert (mail["In-Reply-To"], mail["References"]) == (root, root)
    reply_to = mail["Reply-To"].addresses[0]
    assert reply_to.domain == "in.shop.example" and reply_to.username.startswith("reply+")
    assert tokens.conversation_of(reply_to.username.removeprefix("reply+")) == conversation.id
    first.refresh_from_db()
    assert (first.email_state, first.email_attempts, first.email_message_id) == ("sent", 1, mail["Message-ID"])

    # Her answer by e-mail, then the next reply: it answers her mail, after the first one.
    answer = MessageFactory(conversation=conversation, seq=first.seq + 1, sender="visitor", text="¿Y el envío?",
                            channel="email", email_message_id="<CAB+ann.1@mail.gmail.com>")
    Conversation.objects.filter(pk=conversation.id).update(last_seq=answer.seq)
    second = reply(ada, conversation, "Es gratis.", "c-2")
    assert outbound.mail_send(second.id) == "sent"
    mail = mailing.wait_for(2)[1]
    assert mail["In-Reply-To"] == "<CAB+ann.1@mail.gmail.com>"
    assert mail["References"].split() == [root, f"<message.{first.id}@in.shop.example>", "<CAB+ann.1@mail.gmail.com>"]
    assert mail["Subject"] == "Tu conversación con Acme Outdoor"  # the same subject: clients keep one thread


@pytest.mark.parametrize("language, subject, intro", [
    ("en", "Your conversation with Acme Outdoor", "Ada Lovelace from Acme Outdoor replied to you:"),
    ("de", "Ihr Gespräch mit Acme Outdoor", "Ada Lovelace von Acme Outdoor hat Ihnen geantwortet:"),
    ("fr", "Votre conversation avec Acme Outdoor", "Ada Lovelace de Acme Outdoor vous a répondu :"),
    ("it", "La tua conversazione con Acme Outdoor", "Ada Lovelace di Acme Outdoor ti ha risposto:"),
    ("pt", "A sua conversa com Acme Outdoor", "Ada Lovelace, da equipa Acme Outdoor, respondeu-lhe:"),
    ("ja", "Your conversation with Acme Outdoor", "Ada Lovelace from Acme Outdoor replied to you:"),  # main language
])
def test_the_mail_is_written_in_the_conversations_language_else_the_stores(mailing, shop, ada, language, subject,
                                                                            intro):
    message = reply(ada, away_conversation(shop, ada, language=language), "Done.", "c-1")
    outbound.mail_send(message.id)
    [mail] = mailing.wait_for(1)
    assert mail["Subject"] == subject and intro in body(mail)


def test_every_language_has_every_text():
    assert set(texts.TEXTS) == set(texts.LANGUAGES)
    for language in texts.LANGUAGES:
        assert set(texts.TEXTS[language]) == set(texts.TEXTS["en"]), language


def test_without_an_inbound_domain_the_mail_has_no_reply_to_and_sends_her_to_the_chat(mailing, settings, shop, ada):
    settings.INBOUND_EMAIL_DOMAIN = ""
    message = reply(ada, away_conversation(shop, ada), "Done.", "c-1")
    outbound.mail_send(message.id)
    [mail] = mailing.wait_for(1)
    assert mail["Reply-To"] is None
    assert "Continue the chat on our site:\nhttps://shop.example/" in body(mail)
    assert mail["Message-ID"] == f"<message.{message.id}@shop.example>"  # the sender's domain


def test_notes_and_replies_to_visitors_without_an_address_are_not_mailed(mailing, shop, ada):
    note, _ = services.agent_message_send(ada, away_conversation(shop, ada).id, "VIP", "n-1", private=True)
    no_address = reply(ada, away_conversation(shop, ada, email=""), "Hello?", "c-1")
    assert (note.email_state, no_address.email_state) == ("", "")
    assert "email_state" not in agent_message_payload(note)
    assert outbound.mail_send(note.id) == "" and mailing.mails() == []


async def test_a_reply_to_a_visitor_with_the_chat_open_is_not_mailed_and_one_after_she_left_is(mailing, shop, ada):
    conversation = await db(away_conversation)(shop, ada)
    widget, session = await widget_socket(shop, visitor=conversation.visitor.token)
    assert session["conversation"] == conversation.id
    assert await db(presence.visitor_connected)(conversation.id)
    seen = await db(reply)(ada, conversation, "I'm here.", "c-1")
    assert seen.email_state == ""
    assert (await widget.receive_json_from(timeout=5))["message"]["text"] == "I'm here."
    await widget.disconnect()
    assert not await db(presence.visitor_connected)(conversation.id)
    missed = await db(reply)(ada, conversation, "Are you still there?", "c-2")
    assert missed.email_state == "queued"


def test_a_presence_not_refreshed_within_its_ttl_counts_as_gone(settings):
    """A web process that died without saying goodbye: its sockets stop counting once their expiry passed."""
    key = kv.key("visitor", 987654)
    client = redis_clients.sync_client()
    client.delete(key)
    client.zadd(key, {"web-1.dead-socket": time.time() - 1})
    assert not presence.visitor_connected(987654)
    client.zadd(key, {"web-2.live-socket": time.time() + settings.VISITOR_PRESENCE_TTL})
    assert presence.visitor_connected(987654)
    client.delete(key)


def test_a_presence_redis_cannot_read_counts_as_away(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    assert presence.visitor_connected(1) is False


# --- sending once --------------------------------------------------------------------------------


def test_smtp_down_then_back_loses_nothing_and_sends_nothing_twice(mailing, settings, shop, ada):
    mailing.stop()
    conversation = away_conversation(shop, ada)
    messages = [reply(ada, conversation, f"Reply {n}", f"c-{n}") for n in range(5)]
    for message in messages:
        with pytest.raises(outbound.MailDeferred):
            outbound.mail_send(message.id)
        assert tasks.message_mail_task(message.id, retry=False) == "deferred"  # the task: one try, left queued
    assert set(Message.objects.filter(pk__in=[m.id for m in messages]).values_list("email_state", "email_attempts")) \
        == {("queued", 2)}

    mailing.start()
    settings.EMAIL_SWEEP_AFTER_SECONDS = 0
    settings.ANSWER_IN_PROCESS = True  # the sweep's events reach the mailer thread of this process
    assert outbound.mails_sweep() == {"queued": 5, "failed": 0}
    mails = mailing.wait_for(5)
    deadline = time.monotonic() + 10
    while Message.objects.filter(email_state="queued").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(Message.objects.filter(pk__in=[m.id for m in messages]).values_list("email_state", flat=True)) \
        == {"sent"}
    # Everything again: the sweep finds nothing, a late duplicate task finds it sent.
    assert outbound.mails_sweep() == {"queued": 0, "failed": 0}
    assert [outbound.mail_send(m.id) for m in messages] == ["sent"] * 5
    time.sleep(0.3)
    mails = mailing.mails()
    assert sorted(m["Message-ID"] for m in mails) == sorted(f"<message.{m.id}@in.shop.example>" for m in messages)
    assert sorted(body(m).split("\n\n")[1] for m in mails) == [f"Reply {n}" for n in range(5)]


def test_two_senders_at_once_send_one_mail(mailing, shop, ada):
    message = reply(ada, away_conversation(shop, ada), "Once.", "c-1")
    results, start = [], threading.Barrier(4)

    def send():
        start.wait()
        try:
            results.append(outbound.mail_send(message.id))
        finally:
            from django.db import connection
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    time.sleep(0.3)
    assert len(mailing.mails()) == 1
    assert results.count("sent") >= 1 and set(results) <= {"sent", "busy"}


def test_a_deferring_server_leaves_the_mail_queued_and_a_refused_address_fails_it(mailing, shop, ada):
    mailing.deferring = True
    deferred = reply(ada, away_conversation(shop, ada), "Later.", "c-1")
    with pytest.raises(outbound.MailDeferred):
        outbound.mail_send(deferred.id)
    mailing.deferring = False
    mailing.refused.add("nobody@example.com")
    refused = reply(ada, away_conversation(shop, ada, email="nobody@example.com"), "Hello?", "c-2")
    assert outbound.mail_send(refused.id) == "failed"
    assert outbound.mail_send(deferred.id) == "sent"
    assert dict(Message.objects.filter(pk__in=[deferred.id, refused.id]).values_list("id", "email_state")) == \
        {deferred.id: "sent", refused.id: "failed"}


def test_the_sweep_gives_up_on_a_mail_after_email_give_up_hours(mailing, settings, shop, ada, monkeypatch):
    heard = []
    monkeypatch.setitem(events._subscribers, events.EMAIL_STATE_CHANGED, [heard.append])
    monkeypatch.setitem(events._subscribers, events.EMAIL_REQUESTED, [heard.append])
    old = reply(ada, away_conversation(shop, ada), "Old.", "c-1")
    recent = reply(ada, away_conversation(shop, ada), "Recent.", "c-2")
    Message.objects.filter(pk=old.id).update(created_at=timezone.now() - timedelta(hours=settings.EMAIL_GIVE_UP_HOURS,
                                                                                   minutes=1))
    Message.objects.filter(pk=recent.id).update(created_at=timezone.now() - timedelta(hours=1))
    assert outbound.mails_sweep() == {"queued": 1, "failed": 1}
    conversation_of = {old.id: old.conversation_id, recent.id: recent.conversation_id}
    assert heard == [
        {"type": "email_state_changed", "tenant": shop.id, "conversation": conversation_of[old.id],
         "message": old.id, "email_state": "failed"},
        {"type": "email_requested", "tenant": shop.id, "conversation": conversation_of[recent.id],
         "message": recent.id},
    ]
    assert outbound.mail_send(old.id) == "failed" and mailing.mails() == []


async def test_agents_see_the_reply_queued_then_e_mailed_live(mailing, shop, ada):
    conversation = await db(away_conversation)(shop, ada)
    console, _ = await agent_socket(ada)
    await console.send_json_to({"type": "message", "conversation": conversation.id, "text": "On its way.",
                                "client_id": "c-1"})
    ack = await frame_where(console, type="ack")
    check_amsg(ack["message"])
    assert ack["message"]["email_state"] == "queued"
    assert await db(outbound.mail_send)(ack["message"]["id"]) == "sent"
    frame = await frame_where(console, type="email")
    assert frame == {"type": "email", "conversation": conversation.id, "message_id": ack["message"]["id"],
                     "email_state": "sent"}
    await console.disconnect()


# --- transcripts ---------------------------------------------------------------------------------


async def test_the_contact_frame_asks_for_the_transcript(shop):
    widget, session = await widget_socket(shop)
    await widget.send_json_to({"type": "contact", "email": "ann@example.com", "transcript": True})
    assert await widget.receive_json_from(timeout=5) == {"type": "contact", "email": "ann@example.com",
                                                          "transcript": True}
    await widget.send_json_to({"type": "contact", "email": "ann@example.com", "transcript": "yes"})
    error = await widget.receive_json_from(timeout=5)
    assert (error["type"], error["code"]) == ("error", "invalid_transcript")
    conversation = await db(Conversation.objects.get)(pk=session["conversation"])
    assert conversation.transcript_requested is True
    await widget.disconnect()


def test_resolving_mails_the_transcript_she_asked_for(mailing, shop, ada):
    conversation = away_conversation(shop, ada, language="de")
    services.visitor_contact_leave(conversation.id, "ann@example.com", transcript=True)
    MessageFactory(conversation=conversation, seq=1, sender="visitor", text="Wo ist meine Bestellung?")
    MessageFactory(conversation=conversation, seq=2, sender="bot", text="Ich übergebe an das Team.")
    MessageFactory(conversation=conversation, seq=3, sender="agent", author=ada, text="Nur intern", private=True)
    Conversation.objects.filter(pk=conversation.id).update(last_seq=3)
    answer = reply(ada, conversation, "Sie ist unterwegs.", "c-1")
    ownership.conversation_resolve(conversation.id, agent=ada)
    notice = Message.objects.get(conversation=conversation, sender="system", seq=answer.seq + 1)
    assert notice.email_state == "queued"
    check_amsg(agent_message_payload(notice))
    assert outbound.mail_send(notice.id) == "sent"
    assert outbound.mail_send(answer.id) == "sent"
    mails = {m["Subject"]: m for m in mailing.wait_for(2)}
    transcript = mails["Verlauf Ihres Gesprächs mit Acme Outdoor"]
    text = body(transcript)
    assert "Hier ist, wie gewünscht, der Verlauf Ihres Gesprächs mit Acme Outdoor." in text
    assert "Sie: Wo ist meine Bestellung?" in text and "Assistent: Ich übergebe an das Team." in text
    assert "Ada Lovelace: Sie ist unterwegs." in text
    assert "Nur intern" not in text and "marked as resolved" not in text
    assert transcript["Auto-Submitted"] == "auto-generated"
    assert transcript["Message-ID"] == f"<message.{notice.id}@in.shop.example>"
    assert f"<conversation.{conversation.id}@in.shop.example>" in transcript["References"]


def test_an_idle_conversation_closed_by_beat_mails_the_transcript_she_asked_for(mailing, shop, ada):
    from datetime import timedelta

    from django.utils import timezone

    conversation = away_conversation(shop, ada)
    services.visitor_contact_leave(conversation.id, "ann@example.com", transcript=True)
    MessageFactory(conversation=conversation, seq=1, sender="visitor", text="Where is my order?")
    Conversation.objects.filter(pk=conversation.id).update(last_seq=1)
    assert ownership.conversation_resolve_idle(conversation.id, timezone.now() + timedelta(seconds=1))
    notice = Message.objects.get(conversation=conversation, sender="system", email_state="queued")
    assert outbound.mail_send(notice.id) == "sent"
    assert "Where is my order?" in body(mailing.wait_for(1)[0])


def test_resolving_without_a_request_mails_nothing(mailing, shop, ada):
    conversation = away_conversation(shop, ada)
    ownership.conversation_resolve(conversation.id, agent=ada)
    assert not Message.objects.filter(conversation=conversation).exclude(email_state="").exists()


# --- agents told of hand-offs nobody was online for ---------------------------------------------


@pytest.fixture
def team(shop):
    """Three agents of the store with an address: one per preference."""
    members = {}
    for notify_as in ("each", "digest", "none"):
        user = agent_of(shop, username=f"agent-{notify_as}", email=f"{notify_as}@acme.example")
        AgentMembership.objects.filter(user=user, tenant=shop).update(notify=notify_as)
        members[notify_as] = user
    return members


def handed_off(shop, language: str = "de") -> Conversation:
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=shop, email="ann@example.com"),
                                       language=language)
    MessageFactory(conversation=conversation, seq=1, sender="visitor", text="Ich möchte mit einer Person sprechen.")
    Conversation.objects.filter(pk=conversation.id).update(last_seq=1)
    ownership.conversation_hand_off(conversation.id, "asked for a person", code="asked_for_person")
    return Conversation.objects.get(pk=conversation.id)


def test_a_hand_off_nobody_is_online_for_mails_each_agent_who_wants_each_once(mailing, shop, team):
    conversation = handed_off(shop)
    assert conversation.status == S.WAITING
    assert notify.handoff_notify(conversation.id) == 1
    assert notify.handoff_notify(conversation.id) == 0  # a second run of the task: claimed already
    [mail] = mailing.wait_for(1)
    assert mail["To"] == "each@acme.example"
    assert mail["Subject"] == "Acme Outdoor: Ein Besucher wartet auf eine Person"
    text = body(mail)
    assert "Grund: asked for a person" in text and "Der Besucher schrieb: Ich möchte mit einer Person sprechen." in text
    assert f"https://chat.example.com/console/#conversation-{conversation.id}" in text


def test_no_notice_while_an_agent_is_online_or_once_someone_took_it(mailing, shop, team, ada):
    conversation = handed_off(shop)
    AgentPresence.objects.create(user=ada, channel_name="web.1", seen_at=timezone.now())
    assert notify.handoff_notify(conversation.id) == 0
    AgentPresence.objects.all().delete()
    ownership.conversation_take_over(conversation.id, agent=ada)
    assert notify.handoff_notify(conversation.id) == 0
    assert mailing.mails() == []


def test_the_hand_off_event_reaches_the_mailer(mailing, settings, shop, team):
    settings.ANSWER_IN_PROCESS = True  # the worker side's subscriber runs the job on this process's mailer thread
    try:
        handed_off(shop)
        [mail] = mailing.wait_for(1)
        assert mail["To"] == "each@acme.example"
    finally:
        # The process's job threads finish and let their connections go before the test database is emptied
        # (a thread still reading it deadlocks the truncation).
        from django.db import connections

        from inference import dispatch

        for pool in list(dispatch._threads.values()):
            pool.submit(connections.close_all).result(timeout=60)


def test_the_digest_lists_the_hand_offs_still_waiting_since_the_last_one(mailing, shop, team, ada):
    waiting = handed_off(shop, language="en")
    taken = handed_off(shop, language="en")
    ownership.conversation_take_over(taken.id, agent=ada)
    assert notify.digests_send() == 1
    [mail] = mailing.wait_for(1)
    assert mail["To"] == "digest@acme.example"
    assert mail["Subject"] == "Acme Outdoor: conversations waiting for a person (1)"
    text = body(mail)
    assert f"#conversation-{waiting.id}" in text and f"#conversation-{taken.id}" not in text
    assert notify.digests_send() == 0  # nothing new since
    later = handed_off(shop, language="en")
    assert notify.digests_send() == 1
    text = body(mailing.wait_for(2)[1])
    assert f"#conversation-{later.id}" in text and f"#conversation-{waiting.id}" not in text
