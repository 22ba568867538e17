"""POST /inbound/email/: a visitor's answer by e-mail, as an inbound mail service or an MTA hook posts it.

The body is the raw RFC 822 message (Content-Type: message/rfc822), signed with
`X-Chatbot-Signature: sha256=<hex HMAC-SHA256 of the body under INBOUND_EMAIL_SECRET>`. Answers: 200 with
what became of it (stored, a duplicate, an auto-reply dropped), 403 for a missing or bad signature (or no
secret set: the endpoint is off), 404 for a reply address that names no conversation, 413 over
INBOUND_EMAIL_MAX_BYTES, 415 for another content type. Only a 200 with `"stored": true` stored anything.
"""
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from chatbot.mail import inbound

log = logging.getLogger(__name__)

CONTENT_TYPE = "message/rfc822"


@csrf_exempt  # signed with INBOUND_EMAIL_SECRET instead
@require_POST
def inbound_email(request: HttpRequest) -> JsonResponse:
    secret = settings.INBOUND_EMAIL_SECRET
    if not secret:
        log.error("inbound mail refused: INBOUND_EMAIL_SECRET is not set (see docs/email.md)")
        return JsonResponse({"stored": False, "reason": "not_configured"}, status=403)
    limit = settings.INBOUND_EMAIL_MAX_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return JsonResponse({"stored": False, "reason": "too_large"}, status=413)
    if request.content_type != CONTENT_TYPE:
        return JsonResponse({"stored": False, "reason": "unsupported_type"}, status=415)
    raw = request.read(limit + 1)  # not request.body: DATA_UPLOAD_MAX_MEMORY_SIZE is for forms, mails are larger
    if len(raw) > limit:
        return JsonResponse({"stored": False, "reason": "too_large"}, status=413)
    if not inbound.signature_valid(raw, request.headers.get("X-Chatbot-Signature", ""), secret):
        log.warning("inbound mail refused: bad signature")
        return JsonResponse({"stored": False, "reason": "bad_signature"}, status=403)
    outcome = inbound.mail_receive(raw)
    return JsonResponse(outcome.payload(), status=outcome.status)
