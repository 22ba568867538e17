"""The mails themselves: who they are from, what they say, and the headers that thread them.

Every mail about a conversation belongs to one thread: its Message-ID is fixed by what it is
(`<message.ID@DOMAIN>` for a message's mail, so a mail sent again is recognisably the same one), and
References / In-Reply-To name the conversation's root (`<conversation.ID@DOMAIN>`, never sent itself, which
mail clients thread on) and the mails before it, the visitor's own answers included. Bodies are plain text:
nothing an agent or a visitor wrote can become markup.
"""
from datetime import datetime
from email.utils import formataddr, parseaddr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Q

from chatbot.conversations.payloads import display_name
from chatbot.mail import texts, tokens
from chatbot.models import AgentMembership, Conversation, Message

THREAD_DEPTH = 10  # earlier mails named in References, besides the root


def domain() -> str:
    """The domain of the Message-IDs: the inbound one, else the sender's."""
    sender = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return settings.INBOUND_EMAIL_DOMAIN or sender.rpartition("@")[2] or "localhost"


def message_mail_id(message_id: int) -> str:
    return f"<message.{message_id}@{domain()}>"


def root_id(conversation_id: int) -> str:
    return f"<conversation.{conversation_id}@{domain()}>"


def chat_link(conversation: Conversation) -> str:
    """Where the visitor continues the chat: her store's site, the first origin it lets open the widget (the page
    the widget runs on there keeps her conversation); a store that allows any origin: the page this server keeps
    for it (/demo/<slug>/)."""
    for origin in conversation.tenant.allowed_origins or []:
        if isinstance(origin, str) and origin.startswith(("https://", "http://")):
            return origin.rstrip("/") + "/"
    return f"{settings.PUBLIC_URL}/demo/{conversation.tenant.slug}/"


def console_link(conversation_id: int) -> str:
    return f"{settings.PUBLIC_URL}/console/#conversation-{conversation_id}"


def sender(name: str) -> str:
    """DEFAULT_FROM_EMAIL's address under `name`."""
    return formataddr((name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or "chatbot@localhost"))


def language_of(conversation: Conversation) -> str:
    return texts.language_of(conversation.language, conversation.tenant.main_language)


def _thread_headers(message: Message) -> dict:
    """References and In-Reply-To of a message's mail: the root, then the conversation's mails before it."""
    earlier = (Message.objects.filter(conversation_id=message.conversation_id, seq__lt=message.seq)
               .filter(Q(channel=Message.Channel.EMAIL, sender=Message.Sender.VISITOR)
                       | Q(email_state=Message.EmailState.SENT))
               .order_by("-seq").values_list("id", "email_message_id")[:THREAD_DEPTH])
    ids = [mail_id or message_mail_id(pk) for pk, mail_id in reversed(earlier)]
    references = [root_id(message.conversation_id), *ids]
    return {"References": " ".join(references), "In-Reply-To": references[-1]}


def _visitor_mail(message: Message, subject: str, body: str, from_name: str, language: str,
                  automatic: bool = False) -> EmailMessage:
    conversation = message.conversation
    reply_to = tokens.reply_address(conversation.id)
    headers = {"Message-ID": message_mail_id(message.id), "Content-Language": language, **_thread_headers(message)}
    if automatic:
        headers["Auto-Submitted"] = "auto-generated"
    return EmailMessage(subject=subject, body=body, from_email=sender(from_name), to=[conversation.visitor.email],
                        reply_to=[reply_to] if reply_to else None, headers=headers)


def _ending(conversation: Conversation, language: str) -> str:
    ask = "answer_by_mail" if tokens.reply_address(conversation.id) else "continue_chat"
    return f"{texts.text(language, ask)}\n{chat_link(conversation)}\n"


def reply_mail(message: Message) -> EmailMessage:
    """An agent's reply, to the visitor's address: who wrote it, for which store, the reply, the way back."""
    conversation = message.conversation
    language = language_of(conversation)
    store, agent = conversation.tenant.name, display_name(message.author) or conversation.tenant.name
    body = (f"{texts.text(language, 'reply_intro', agent=agent, store=store)}\n\n{message.text}\n\n"
            f"{_ending(conversation, language)}")
    return _visitor_mail(message, texts.text(language, "subject", store=store), body,
                         texts.text(language, "from_name", agent=agent, store=store), language)


def transcript_mail(notice: Message) -> EmailMessage:
    """The conversation up to `notice` (the resolve notice that carries the transcript's state), as she saw it:
    her messages, the bot's and the agents' replies, never notes or system notices."""
    conversation = notice.conversation
    language = language_of(conversation)
    store = conversation.tenant.name
    zone = _zone(conversation.tenant.timezone)
    rows = (Message.objects.filter(conversation_id=conversation.id, seq__lt=notice.seq, private=False)
            .exclude(sender=Message.Sender.SYSTEM).select_related("author").order_by("seq"))
    names = {Message.Sender.VISITOR: texts.text(language, "you"), Message.Sender.BOT: texts.text(language, "assistant")}
    lines = [f"[{_when(m.created_at, zone)}] "
             f"{names.get(m.sender) or display_name(m.author) or store}: {m.text}" for m in rows]
    body = (f"{texts.text(language, 'transcript_intro', store=store)}\n\n" + "\n\n".join(lines)
            + f"\n\n{_ending(conversation, language)}")
    return _visitor_mail(notice, texts.text(language, "transcript_subject", store=store), body, store, language,
                         automatic=True)


def handoff_mail(conversation: Conversation, membership: AgentMembership) -> EmailMessage:
    """An agent is told of a hand-off nobody was online for: why, what the visitor wrote, where to answer."""
    language = language_of(conversation)
    store = conversation.tenant.name
    lines = [texts.text(language, "handoff_intro"), ""]
    if conversation.handoff_reason or conversation.handoff_code:
        lines.append(texts.text(language, "reason", reason=conversation.handoff_reason or conversation.handoff_code))
    last = _last_visitor_text(conversation.id)
    if last:
        lines.append(texts.text(language, "last_message", text=last))
    if conversation.visitor.email:
        lines.append(texts.text(language, "visitor_email", email=conversation.visitor.email))
    lines += ["", texts.text(language, "open_console"), console_link(conversation.id), ""]
    return EmailMessage(subject=texts.text(language, "handoff_subject", store=store), body="\n".join(lines),
                        from_email=sender(store), to=[membership.user.email],
                        headers={"Auto-Submitted": "auto-generated", "Content-Language": language})


def digest_mail(membership: AgentMembership, conversations: list[Conversation]) -> EmailMessage:
    """An agent's digest: the hand-offs since her last one that still wait, in her store's main language."""
    tenant = membership.tenant
    language = texts.language_of(tenant.main_language)
    lines = [texts.text(language, "digest_intro"), ""]
    for conversation in conversations:
        last = _last_visitor_text(conversation.id, 160)
        reason = conversation.handoff_reason or conversation.handoff_code
        lines.append(f"- {last or '…'}" + (f" ({reason})" if reason else ""))
        lines.append(f"  {console_link(conversation.id)}")
    lines.append("")
    return EmailMessage(subject=texts.text(language, "digest_subject", store=tenant.name, count=len(conversations)),
                        body="\n".join(lines), from_email=sender(tenant.name), to=[membership.user.email],
                        headers={"Auto-Submitted": "auto-generated", "Content-Language": language})


def _last_visitor_text(conversation_id: int, limit: int = 500) -> str:
    text = (Message.objects.filter(conversation_id=conversation_id, sender=Message.Sender.VISITOR)
            .order_by("-seq").values_list("text", flat=True).first()) or ""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
