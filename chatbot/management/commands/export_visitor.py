import json

from chatbot.conversations.privacy import visitor_export
from chatbot.management.base import ServiceCommand


class Command(ServiceCommand):
    help = ("Print, as JSON, everything stored about a visitor of a store (a data-subject access request): "
            "her visitor row, conversations, messages, hand-offs, feedback and suggested replies.")

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="The store's slug.")
        parser.add_argument("visitor", help="The visitor's id, widget token or external id (the store's user id).")

    def handle(self, *args, tenant, visitor, **options):
        data = visitor_export(tenant, visitor)
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
