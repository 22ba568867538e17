"""Store a visitor's answer by e-mail read from standard input: for an MTA that pipes a domain's mail to a command.

    python manage.py receive_email [--recipient reply+TOKEN@INBOUND_EMAIL_DOMAIN] < message.eml

Postfix, for instance: `chatbot unix - n n - - pipe user=chatbot argv=/app/manage.py receive_email
--recipient ${original_recipient}`. The mail is trusted as the MTA's (no signature); everything else is as for
POST /inbound/email/ (chatbot.mail.inbound). The exit status tells the MTA what to do: 0 delivered (stored, a
duplicate, an auto-reply dropped), 67 (EX_NOUSER) no such conversation: bounce, 65 (EX_DATAERR) too large or
unreadable: bounce, 75 (EX_TEMPFAIL) the database is away: try again later.
"""
import json
import sys

from django.conf import settings
from chatbot.management.base import ServiceCommand

from chatbot.errors import TRANSIENT_ERRORS
from chatbot.mail import inbound

EX_DATAERR, EX_NOUSER, EX_TEMPFAIL = 65, 67, 75
EXIT_STATUS = {200: 0, 404: EX_NOUSER, 413: EX_DATAERR, 400: EX_DATAERR}


class Command(ServiceCommand):
    help = "Store a visitor's answer by e-mail (an RFC 822 message on standard input) in her conversation."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--recipient", default="",
                            help="The envelope recipient (reply+TOKEN@...), when the MTA passes it.")

    def handle(self, *args, recipient: str = "", **options) -> None:
        raw = sys.stdin.buffer.read(settings.INBOUND_EMAIL_MAX_BYTES + 1)
        try:
            outcome = inbound.mail_receive(raw, recipient=recipient)
        except TRANSIENT_ERRORS as exc:
            self.stderr.write(f"not stored now, try again later: {exc!r}")
            sys.exit(EX_TEMPFAIL)
        self.stdout.write(json.dumps(outcome.payload()))
        status = EXIT_STATUS.get(outcome.status, EX_DATAERR)
        if status:
            self.stderr.write(f"refused: {outcome.reason}")
            sys.exit(status)
