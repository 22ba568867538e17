import json

from chatbot.conversations.privacy import visitor_export
from chatbot.management.base import ServiceCommand, visitor_arguments


class Command(ServiceCommand):
    help = ("Print, as JSON, everything stored about a visitor of a store (a data-subject access request): "
            "her visitor row, conversations, messages, hand-offs, feedback and suggested replies.")

    def add_arguments(self, parser):
        visitor_arguments(parser)

    def handle(self, *args, tenant, visitor, **options):
        data = visitor_export(tenant, visitor)
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
