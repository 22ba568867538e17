"""A visitor's answer by e-mail joins her conversation as a visitor message (channel `email`).

The mail comes whole (RFC 822) through POST /inbound/email/ (signed with INBOUND_EMAIL_SECRET) or
`manage.py receive_email` (an MTA's pipe). Its reply address names the conversation (chatbot.mail.tokens): a
token this server did not sign is refused like an unknown one. What she wrote is kept, the quoted history and
her signature stripped (mail-parser-reply, which knows the reply headers of Gmail, Outlook, Apple Mail and
others in many languages); attachments are listed by name and size in the message, never stored or opened.
A mail is stored once: its Message-ID is kept on the message (Message.email_message_id) and a second delivery
of it is answered as a duplicate. Auto-replies and bounces are dropped.

The message goes through the normal path (journal.message_append), so agents see it live and the worker
side hears of it. People answer it: a conversation the bot held (it was handed back, or resolved and reopened)
is handed off first, since the bot's widget reply would never reach her inbox.
"""
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message as MimePart
from email.parser import BytesParser
from html.parser import HTMLParser

from django.conf import settings
from django.db import IntegrityError, transaction
from mailparser_reply import EmailReplyParser
from mailparser_reply.constants import MAIL_LANGUAGES

from chatbot.conversations import delivery, journal, ownership
from chatbot.mail import tokens
from chatbot.models import Conversation, HandoffReason, Message

log = logging.getLogger(__name__)

HANDOFF_REASON = "the visitor answered by e-mail"
SIGNATURE_PREFIX = "sha256="
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc")
AUTOMATIC_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
ATTACHMENTS_LISTED = 20


@dataclass
class Outcome:
    """What became of a mail: the HTTP status the endpoint answers with (the command's exit status follows it)."""

    status: int
    stored: bool = False
    reason: str = ""
    message: int | None = None  # the stored (or earlier stored) message
    conversation: int | None = None

    def payload(self) -> dict:
        payload = {"stored": self.stored, "reason": self.reason}
        if self.message is not None:
            payload.update(message=self.message, conversation=self.conversation)
        return payload


def signature_valid(raw: bytes, header: str, secret: str) -> bool:
    """Whether `header` is "sha256=" + the hex HMAC-SHA256 of `raw` under `secret`."""
    if not secret or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len(SIGNATURE_PREFIX):].strip().lower())


def mail_receive(raw: bytes, *, recipient: str = "") -> Outcome:
    """Store the visitor's answer in `raw` (an authenticated RFC 822 message); `recipient`: the envelope
    recipient when the MTA tells it (the reply address is looked for in the headers as well)."""
    if len(raw) > settings.INBOUND_EMAIL_MAX_BYTES:
        return Outcome(413, reason="too_large")
    try:
        mail = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception:  # noqa: BLE001 - the parser is lenient; anything it still chokes on is not a mail
        return Outcome(400, reason="unreadable")
    token = tokens.token_in([recipient, *(_header(mail, name) for name in RECIPIENT_HEADERS)])
    conversation_id = tokens.conversation_of(token) if token else None
    conversation = (Conversation.objects.select_related("tenant").filter(pk=conversation_id).first()
                    if conversation_id is not None else None)
    if conversation is None or not conversation.tenant.is_active:
        log.info("inbound mail for no known conversation (token %s)", "given" if token else "missing")
        return Outcome(404, reason="unknown_conversation")
    if _automatic(mail):
        return Outcome(200, reason="automatic")
    text = message_text(mail, [conversation.language, *conversation.tenant.listed_languages])
    if not text:
        return Outcome(200, reason="empty")
    return _store(conversation.id, text, _mail_id(mail, raw))


def _store(conversation_id: int, text: str, mail_id: str) -> Outcome:
    client_id = "email:" + hashlib.sha256(mail_id.encode()).hexdigest()[:40]
    try:
        with transaction.atomic():
            conversation = journal.conversation_lock(conversation_id)
            earlier = Message.objects.filter(conversation__tenant_id=conversation.tenant_id,
                                             channel=Message.Channel.EMAIL, email_message_id=mail_id).first()
            if earlier is not None:
                return Outcome(200, reason="duplicate", message=earlier.pk, conversation=earlier.conversation_id)
            conversation = _open_conversation(conversation)
            message = journal.message_append(conversation, Message.Sender.VISITOR, text, client_id=client_id,
                                             channel=Message.Channel.EMAIL, email_message_id=mail_id,
                                             **delivery.answer_fields(conversation))
            return Outcome(200, stored=True, message=message.pk, conversation=conversation.id)
    except IntegrityError:  # the same mail, delivered twice at once (only without row locks)
        earlier = Message.objects.filter(conversation_id=conversation_id, client_id=client_id).first()
        if earlier is None:
            raise
        return Outcome(200, reason="duplicate", message=earlier.pk, conversation=conversation_id)


def _open_conversation(conversation: Conversation) -> Conversation:
    """The conversation (locked) her answer joins, held by people: a resolved one is reopened (or, when she has
    started another since, that one takes it), and one the bot holds is handed off."""
    if conversation.status == Conversation.Status.RESOLVED:
        newer = (Conversation.objects.filter(visitor_id=conversation.visitor_id)
                 .exclude(status=Conversation.Status.RESOLVED).values_list("id", flat=True).first())
        if newer is not None:
            conversation = journal.conversation_lock(newer)
        else:
            ownership.conversation_reopen(conversation)
    if conversation.status == Conversation.Status.BOT:
        ownership.conversation_hand_off(conversation.id, HANDOFF_REASON, code=HandoffReason.OTHER)
        conversation = journal.conversation_lock(conversation.id)
    return conversation


# --- reading the mail ------------------------------------------------------------------------------------


def message_text(mail: EmailMessage, languages: list[str]) -> str:
    """What she wrote (quoted history and signature stripped), with her attachments listed, within
    WIDGET_MAX_TEXT_LENGTH."""
    body_part = mail.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        body = _content(body_part)
        if body_part.get_content_subtype() == "html":
            body = html_text(body)
    reply = latest_reply(body, languages)
    note = _attachments_note(mail, body_part)
    limit = settings.WIDGET_MAX_TEXT_LENGTH
    room = limit - len(note) - (2 if note and reply else 0)
    if len(reply) > room:
        reply = reply[:max(0, room - 1)].rstrip() + "…"
    return "\n\n".join(part for part in (reply, note) if part)[:limit]


def latest_reply(body: str, languages: list[str]) -> str:
    """The newest reply of a mail body: what comes before the first quoted header ("On ... wrote:",
    "-----Original Message-----", "From: ..."), without its signature."""
    body = _clean(body)
    if not body.strip():
        return ""
    wanted = [code for code in dict.fromkeys(filter(None, languages)) if code in MAIL_LANGUAGES]
    parsed = EmailReplyParser(languages=wanted or ["en"]).read(body)
    if not parsed.replies:
        return body.strip()
    first = parsed.replies[0]
    return (first.body or first.content).strip()


def _content(part: MimePart) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeDecodeError, AssertionError):  # an unknown charset, a broken encoding
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def _clean(text: str) -> str:
    """No NUL (PostgreSQL stores none) and no lone surrogates (no UTF-8 for them)."""
    return text.replace("\x00", "").encode("utf-8", errors="replace").decode("utf-8")


def _attachments_note(mail: EmailMessage, body_part: MimePart | None) -> str:
    """"[Attachments, not kept: invoice.pdf (application/pdf, 12 KB), ...]" for the agents, or ""."""
    found = []
    _collect(mail, body_part, found)
    if not found:
        return ""
    listed = [f"{name} ({kind}, {_size(size)})" for name, kind, size in found[:ATTACHMENTS_LISTED]]
    more = f" and {len(found) - ATTACHMENTS_LISTED} more" if len(found) > ATTACHMENTS_LISTED else ""
    return f"[Attachments, not kept: {', '.join(listed)}{more}]"


def _collect(part: MimePart, body_part: MimePart | None, found: list) -> None:
    """The attachments under `part` as (name, type, bytes): files, and forwarded mails (not opened)."""
    if part is body_part:
        return
    kind = part.get_content_type()
    if kind == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        subject = str(inner.get("Subject", "")) if hasattr(inner, "get") else ""
        found.append((_name(subject or "forwarded message"), kind, len(str(inner))))
        return
    if part.is_multipart():
        for child in part.iter_parts():
            _collect(child, body_part, found)
        return
    filename = part.get_filename()
    if filename or part.get_content_disposition() == "attachment" or part.get_content_maintype() not in ("text",):
        if part.get_content_maintype() == "multipart":
            return
        payload = part.get_payload(decode=True) or b""
        found.append((_name(filename or "unnamed"), kind, len(payload)))


def _name(value: str) -> str:
    value = re.sub(r"[\x00-\x1f\x7f]", "", _clean(str(value))).strip()
    return value[:100] or "unnamed"


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def _header(mail: EmailMessage, name: str) -> str:
    try:
        return ", ".join(str(value) for value in mail.get_all(name, []))
    except Exception:  # noqa: BLE001 - a header the parser cannot read names no reply address
        return ""


def _automatic(mail: EmailMessage) -> bool:
    """An auto-reply (out of office), a mailing list's or a bounce: nobody wrote it to her conversation."""
    auto = _header(mail, "Auto-Submitted").strip().lower()
    if auto and auto != "no":
        return True
    if _header(mail, "X-Autoreply") or _header(mail, "X-Autorespond"):
        return True
    if _header(mail, "Precedence").strip().lower() in AUTOMATIC_PRECEDENCE:
        return True
    return mail.get_content_type() == "multipart/report" or _header(mail, "Return-Path").strip() == "<>"


def _mail_id(mail: EmailMessage, raw: bytes) -> str:
    """The mail's Message-ID, or one made of its bytes when it has none (or one too long to keep)."""
    value = re.sub(r"\s+", "", _header(mail, "Message-ID"))
    if value and len(value) <= 255:
        return value
    return f"<sha256.{hashlib.sha256(raw).hexdigest()[:48]}@inbound.invalid>"


class _HtmlText(HTMLParser):
    """Text of an HTML body: blocks on lines of their own, quoted blocks marked "> " like a plain-text reply."""

    BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr"}
    SKIPPED = {"style", "script", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.quote = 0
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag == "blockquote":
            self.quote += 1
            self._newline()
        elif tag in self.BLOCKS:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self._newline()
        elif tag in self.BLOCKS:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        text = re.sub(r"\s+", " ", data)
        if not self.lines[-1] and self.quote:
            self.lines[-1] = "> " * self.quote
        self.lines[-1] += text

    def _newline(self) -> None:
        self.lines.append("")


def html_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    text = "\n".join(line.rstrip() for line in parser.lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
