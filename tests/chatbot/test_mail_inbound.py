"""E-mail continuity, inbound: a visitor's answer by e-mail, as real RFC 822 messages from common clients (Gmail,
Outlook, Apple Mail, with quoted history and signatures), through POST /inbound/email/ and
`manage.py receive_email`: stored once in her conversation, quotes and signatures stripped, attachments listed
and never kept, refused with 403 / 404 / 413 without storing anything, and live on the agents' sockets."""
import base64
import hashlib
import hmac
import io
import sys
import time

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.test import Client

from chatbot.conversations import ownership
from chatbot.mail import tokens
from chatbot.models import Conversation, Message
from tests.chatbot.sockets import agent_socket, frame_where
from tests.chatbot.test_events import check_amsg
from tests.factories import ConversationFactory, MessageFactory, TenantFactory, VisitorFactory, agent_of

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async
S = Conversation.Status
SECRET = "inbound-test-secret"
DOMAIN = "in.shop.example"


@pytest.fixture(autouse=True)
def inbound_settings(settings):
    settings.INBOUND_EMAIL_SECRET = SECRET
    settings.INBOUND_EMAIL_DOMAIN = DOMAIN
    settings.INBOUND_EMAIL_MAX_BYTES = 64 * 1024


@pytest.fixture
def shop():
    return TenantFactory(name="Acme Outdoor", languages=["en", "de"])


@pytest.fixture
def ada(shop):
    return agent_of(shop, username="ada", first_name="Ada", last_name="Lovelace")


@pytest.fixture
def conversation(shop, ada) -> Conversation:
    """Ada answered Ann by e-mail; Ann's answers come back to this conversation."""
    conversation = ConversationFactory(visitor=VisitorFactory(tenant=shop, email="ann@example.com"), status=S.HUMAN,
                                       assigned_agent=ada, last_seq=2)
    MessageFactory(conversation=conversation, seq=1, sender="visitor", text="Can I change the address?")
    MessageFactory(conversation=conversation, seq=2, sender="agent", author=ada, text="Which address?",
                   email_state="sent")
    return conversation


def reply_address(conversation_id: int) -> str:
    return f"reply+{tokens.reply_token(conversation_id)}@{DOMAIN}"


def sign(raw: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def post(raw: bytes, signature: str | None = None, **extra):
    headers = {"X-Chatbot-Signature": sign(raw) if signature is None else signature}
    return Client().post("/inbound/email/", data=raw, content_type="message/rfc822", headers=headers, **extra)


# --- real mails from common clients ------------------------------------------------------------------

def gmail_reply(to: str, message_id: str = "<CAF=ann.1@mail.gmail.com>") -> bytes:
    return f"""\
MIME-Version: 1.0
Date: Tue, 3 Mar 2026 10:21:07 +0100
References: <conversation.1@{DOMAIN}> <message.2@{DOMAIN}>
In-Reply-To: <message.2@{DOMAIN}>
Message-ID: {message_id}
Subject: Re: Your conversation with Acme Outdoor
From: Ann Keller <ann@example.com>
To: Ada from Acme Outdoor <{to}>
Content-Type: multipart/alternative; boundary="000000000000a1b2c3"

--000000000000a1b2c3
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

Yes, please send it to my office address instead: Hauptstra=C3=9Fe 5, Berlin.

Thanks,
Ann

On Tue, Mar 3, 2026 at 10:15 AM Ada from Acme Outdoor <chat@shop.example> wrote:

> Ada from Acme Outdoor replied to you:
>
> Which address?
>

--000000000000a1b2c3
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">Yes, please send it to my office address instead: Hauptstra=C3=9Fe 5, Berlin.<div><br></div><div>Thanks,</div><div>Ann</div></div><br><div class=3D"gmail_quote"><div dir=3D"ltr" class=3D"gmail_attr">On Tue, Mar 3, 2026 at 10:15 AM Ada from Acme Outdoor &lt;<a href=3D"mailto:chat@shop.example">chat@shop.example</a>&gt; wrote:<br></div><blockquote class=3D"gmail_quote">Which address?</blockquote></div>

--000000000000a1b2c3--
""".replace("\n", "\r\n").encode()


def outlook_reply(to: str) -> bytes:
    return f"""\
From: Ann Keller <ann@keller-gmbh.example>
To: "Acme Outdoor" <{to}>
Subject: RE: Your conversation with Acme Outdoor
Date: Tue, 3 Mar 2026 09:30:12 +0000
Message-ID: <AM0PR07MB1234ABCD@AM0PR07MB1234.eurprd07.prod.outlook.com>
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 8bit
MIME-Version: 1.0

Hi, the order number is NW-482913.

Best regards
Ann Keller
Senior Buyer | Keller GmbH
Tel. +49 30 1234567

-----Original Message-----
From: Acme Outdoor <chat@shop.example>
Sent: Tuesday, March 3, 2026 10:15 AM
To: ann@keller-gmbh.example
Subject: Your conversation with Acme Outdoor

Ada from Acme Outdoor replied to you:
Which order is it?
""".encode()


def outlook_web_reply_de(to: str) -> bytes:
    return f"""\
From: Ann Keller <ann@example.com>
To: {to}
Subject: AW: Ihr Gespräch mit Acme Outdoor
Message-ID: <DB9PR0@DB9PR0.eurprd.prod.outlook.com>
Content-Type: text/plain; charset="utf-8"
MIME-Version: 1.0

Danke, das passt so.

Mit freundlichen Grüßen
Ann Keller

________________________________
Von: Ada von Acme Outdoor <chat@shop.example>
Gesendet: Dienstag, 3. März 2026 10:15
An: ann@example.com
Betreff: Ihr Gespräch mit Acme Outdoor

Ada von Acme Outdoor hat Ihnen geantwortet:
Passt die Adresse?
""".encode()


def apple_mail_reply(to: str) -> bytes:
    return f"""\
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit
Mime-Version: 1.0 (1.0)
Subject: Re: Your conversation with Acme Outdoor
From: Ann Keller <ann@icloud.example>
Date: Tue, 3 Mar 2026 10:40:01 +0100
Message-Id: <3F2A7C1E-8D7B-4B0E-9C61-1A2B3C4D5E6F@icloud.example>
To: Acme Outdoor <{to}>
X-Mailer: iPhone Mail (21D61)

Perfect, thank you!

Sent from my iPhone

> On 3 Mar 2026, at 10:15, Ada from Acme Outdoor <chat@shop.example> wrote:
>
> Your refund is on its way.
""".encode()


def html_only_reply(to: str) -> bytes:
    return f"""\
From: ann@example.com
To: {to}
Subject: Re: Your conversation
Message-ID: <html-only.1@example.com>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<html><head><style>p {{ color: red }}</style></head><body><p>Friday works &amp; thanks!</p>
<div>On Tue, Mar 3, 2026 at 10:15 AM Acme Outdoor &lt;chat@shop.example&gt; wrote:</div>
<blockquote type="cite"><p>Shall we come on Friday?</p></blockquote></body></html>
""".encode()


def reply_with_attachments(to: str) -> bytes:
    return f"""\
From: Ann Keller <ann@example.com>
To: {to}
Subject: Re: Your conversation with Acme Outdoor
Message-ID: <attach.1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain; charset=utf-8

Here are the photo of the damage and my invoice.

--outer
Content-Type: application/pdf; name="invoice NW-482913.pdf"
Content-Disposition: attachment; filename="invoice NW-482913.pdf"
Content-Transfer-Encoding: base64

{base64.encodebytes(b"%PDF-1.4" + bytes(2040)).decode()}

--outer
Content-Type: application/x-msdownload; name="run-me.exe"
Content-Disposition: attachment; filename="run-me.exe"
Content-Transfer-Encoding: base64

TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAgAAAAA==

--outer--
""".encode()


def stored(conversation: Conversation) -> list[Message]:
    return list(Message.objects.filter(conversation=conversation, channel="email").order_by("seq"))


# --- the endpoint ---------------------------------------------------------------------------------------


def test_a_gmail_reply_joins_the_conversation_without_its_quote_or_signature(conversation):
    response = post(gmail_reply(reply_address(conversation.id)))
    assert response.status_code == 200
    [message] = stored(conversation)
    assert response.json() == {"stored": True, "reason": "", "message": message.id, "conversation": conversation.id}
    assert message.text == "Yes, please send it to my office address instead: Hauptstraße 5, Berlin."
    assert (message.sender, message.seq, message.email_message_id) == ("visitor", 3, "<CAF=ann.1@mail.gmail.com>")
    assert message.answer_state == ""  # people hold the conversation: the bot stays out of it
    conversation.refresh_from_db()
    assert (conversation.status, conversation.unread, conversation.last_message_text) == \
        (S.HUMAN, 1, message.text)


@pytest.mark.parametrize("mail, text", [
    (outlook_reply, "Hi, the order number is NW-482913."),
    (outlook_web_reply_de, "Danke, das passt so."),
    (apple_mail_reply, "Perfect, thank you!"),
    (html_only_reply, "Friday works & thanks!"),
])
def test_replies_from_common_clients_keep_only_what_she_wrote(conversation, mail, text):
    assert post(mail(reply_address(conversation.id))).status_code == 200
    assert [m.text for m in stored(conversation)] == [text]


def test_attachments_are_listed_by_name_and_size_and_never_kept(conversation, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    assert post(reply_with_attachments(reply_address(conversation.id))).status_code == 200
    [message] = stored(conversation)
    assert message.text.startswith("Here are the photo of the damage and my invoice.\n\n[Attachments, not kept: ")
    assert "invoice NW-482913.pdf (application/pdf, 2 KB)" in message.text
    assert "run-me.exe (application/x-msdownload, 64 B)" in message.text
    assert list(tmp_path.iterdir()) == []


def test_a_mail_delivered_twice_is_stored_once(conversation):
    raw = gmail_reply(reply_address(conversation.id))
    first, second = post(raw), post(raw)
    assert first.json()["stored"] is True
    assert second.status_code == 200 and second.json()["reason"] == "duplicate"
    assert second.json()["message"] == first.json()["message"]
    assert len(stored(conversation)) == 1


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, sign(b"another body"), sign(b"x", "other-secret")])
def test_a_bad_signature_is_refused_with_403_and_stores_nothing(conversation, signature):
    response = post(gmail_reply(reply_address(conversation.id)), signature=signature)
    assert response.status_code == 403 and response.json()["reason"] == "bad_signature"
    assert stored(conversation) == []


def test_without_a_secret_the_endpoint_refuses_everything_and_says_why_in_the_log(conversation, settings, caplog):
    settings.INBOUND_EMAIL_SECRET = ""
    response = post(gmail_reply(reply_address(conversation.id)), signature=sign(b"", ""))
    assert response.status_code == 403 and response.json()["reason"] == "not_configured"
    assert "INBOUND_EMAIL_SECRET is not set" in caplog.text
    assert stored(conversation) == []


def test_a_forged_or_unknown_token_is_404_and_stores_nothing(conversation, shop):
    other = ConversationFactory(visitor=VisitorFactory(tenant=shop))
    forged = f"reply+{conversation.id}.{tokens.reply_token(other.id).split('.')[1]}@{DOMAIN}"  # another's signature
    gone = reply_address(other.id)
    other.delete()
    for to in (forged, gone, f"reply+{conversation.id}@{DOMAIN}", "support@shop.example",
               reply_address(conversation.id).replace(DOMAIN, "elsewhere.example")):
        response = post(gmail_reply(to, message_id=f"<{hash(to)}@x>"))
        assert response.status_code == 404, to
        assert response.json()["reason"] == "unknown_conversation"
    assert not Message.objects.filter(channel="email").exists()


def test_a_mail_over_the_limit_is_413(conversation, settings):
    settings.INBOUND_EMAIL_MAX_BYTES = 1024
    assert post(reply_with_attachments(reply_address(conversation.id))).status_code == 413
    assert stored(conversation) == []


def test_another_content_type_is_415(conversation):
    raw = gmail_reply(reply_address(conversation.id))
    response = Client().post("/inbound/email/", data=raw, content_type="text/plain",
                             headers={"X-Chatbot-Signature": sign(raw)})
    assert response.status_code == 415 and stored(conversation) == []


def test_an_out_of_office_reply_is_dropped(conversation):
    raw = gmail_reply(reply_address(conversation.id)).replace(b"MIME-Version: 1.0\r\n",
                                                              b"MIME-Version: 1.0\r\nAuto-Submitted: auto-replied\r\n")
    response = post(raw)
    assert response.status_code == 200 and response.json() == {"stored": False, "reason": "automatic"}
    assert stored(conversation) == []


def test_an_answer_to_a_conversation_the_bot_holds_goes_to_people_not_to_the_bot(conversation):
    Conversation.objects.filter(pk=conversation.id).update(status=S.BOT, assigned_agent=None)
    assert post(outlook_reply(reply_address(conversation.id))).status_code == 200
    [message] = stored(conversation)
    conversation.refresh_from_db()
    assert conversation.status == S.WAITING and conversation.handoff_reason == "the visitor answered by e-mail"
    assert message.answer_state == ""


def test_an_answer_to_a_resolved_conversation_reopens_it_for_people(conversation, ada):
    ownership.conversation_resolve(conversation.id, agent=ada)
    assert post(apple_mail_reply(reply_address(conversation.id))).status_code == 200
    conversation.refresh_from_db()
    assert conversation.status == S.WAITING
    assert [m.text for m in stored(conversation)] == ["Perfect, thank you!"]


# --- the command ---------------------------------------------------------------------------------------


def receive(monkeypatch, raw: bytes, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    out = io.StringIO()
    try:
        call_command("receive_email", *args, stdout=out, stderr=io.StringIO())
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def test_the_command_stores_a_piped_mail_once(conversation, monkeypatch):
    raw = outlook_reply(reply_address(conversation.id))
    status, out = receive(monkeypatch, raw)
    assert status == 0 and '"stored": true' in out
    assert receive(monkeypatch, raw)[0] == 0  # the MTA delivers it again: delivered, stored once
    assert [m.text for m in stored(conversation)] == ["Hi, the order number is NW-482913."]


def test_the_command_takes_the_envelope_recipient_and_bounces_unknown_ones(conversation, monkeypatch, settings):
    raw = apple_mail_reply("support@shop.example")  # the reply address only in the envelope
    assert receive(monkeypatch, raw, "--recipient", reply_address(conversation.id))[0] == 0
    assert len(stored(conversation)) == 1
    assert receive(monkeypatch, gmail_reply(f"reply+1.{'0' * 32}@{DOMAIN}"))[0] == 67  # EX_NOUSER: bounced
    settings.INBOUND_EMAIL_MAX_BYTES = 512
    assert receive(monkeypatch, gmail_reply(reply_address(conversation.id), "<big@x>"))[0] == 65  # EX_DATAERR
    assert len(stored(conversation)) == 1


# --- live ----------------------------------------------------------------------------------------------


async def test_agents_see_her_answer_live(conversation, ada):
    console, _ = await agent_socket(ada)
    started = time.monotonic()
    response = await db(post)(gmail_reply(reply_address(conversation.id)))
    assert response.status_code == 200
    frame = await frame_where(console, type="message")
    assert time.monotonic() - started < 2
    check_amsg(frame["message"])
    assert frame["conversation"] == conversation.id
    assert (frame["message"]["sender"], frame["message"]["channel"]) == ("visitor", "email")
    assert frame["message"]["text"].startswith("Yes, please send it to my office address")
    await console.disconnect()
