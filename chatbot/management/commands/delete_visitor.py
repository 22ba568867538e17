import json

from django.core.management.base import CommandError

from chatbot.conversations.privacy import visitor_erase, visitors_of
from chatbot.management.base import ServiceCommand, visitor_arguments


class Command(ServiceCommand):
    help = ("Erase a visitor of a store (a data-subject erasure request): the text of her conversations' "
            "messages, her ratings, e-mail address and external id. Anonymous counts stay (see chatbot.conversations.privacy). "
            "Prints the counts as JSON.")

    def add_arguments(self, parser):
        visitor_arguments(parser)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, tenant, visitor, yes, **options):
        found = visitors_of(tenant, visitor)
        if not yes:
            ids = ", ".join(str(v.id) for v in found)
            answer = input(f"Erase visitor(s) {ids} of {tenant}? This cannot be undone. Type 'yes': ")
            if answer.strip().lower() != "yes":
                raise CommandError("Nothing erased.")
        counts = visitor_erase(tenant, visitor)
        self.stdout.write(json.dumps(counts))
