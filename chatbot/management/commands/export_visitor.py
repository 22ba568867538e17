import json

from django.core.management.base import BaseCommand, CommandError

from chatbot.errors import ServiceError
from chatbot.privacy import visitor_export


class Command(BaseCommand):
    help = ("Print, as JSON, everything stored about a visitor of a store (a data-subject access request): "
            "her visitor row, conversations, messages, hand-offs, feedback and suggested replies.")

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="The store's slug.")
        parser.add_argument("visitor", help="The visitor's id, widget token or external id (the store's user id).")

    def handle(self, *args, tenant, visitor, **options):
        try:
            data = visitor_export(tenant, visitor)
        except ServiceError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
