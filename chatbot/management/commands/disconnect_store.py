from chatbot.actions import services
from chatbot.management.base import ServiceCommand, tenant_argument


class Command(ServiceCommand):
    help = "Disconnect a store's order system: the bot stops calling it and its credentials are deleted."

    def add_arguments(self, parser):
        tenant_argument(parser)

    def handle(self, *args, tenant, **options):
        if services.store_disconnect(tenant):
            self.stdout.write(f"Disconnected {tenant}'s order system; its call records stay.")
        else:
            self.stdout.write(f"{tenant} had no order system connected.")
