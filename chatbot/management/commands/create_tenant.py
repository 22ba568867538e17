from chatbot.conversations.services import tenant_create
from chatbot.management.base import ServiceCommand
from chatbot.views import widget_src


class Command(ServiceCommand):
    help = "Create a store (tenant). Prints the embed tag, then its public widget key as the last line."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The store's name; its slug is made from it.")
        parser.add_argument(
            "--origin", action="append", default=[], metavar="URL",
            help="An origin allowed to embed the widget, e.g. https://shop.example (repeatable; '*' allows any).",
        )
        parser.add_argument("--slug", help="Slug to use instead of one made from NAME.")

    def handle(self, *args, name, origin, slug, **options):
        tenant = tenant_create(name, origin, slug=slug)
        self.stdout.write(f"Created tenant {tenant.name!r} (slug: {tenant.slug}).")
        if not tenant.allowed_origins:
            self.stdout.write(self.style.WARNING("No --origin given: no website can open the widget yet."))
        self.stdout.write("Paste this tag into your store's pages:")
        self.stdout.write(f'<script src="{widget_src()}" data-key="{tenant.public_key}" async></script>')
        self.stdout.write(tenant.public_key)
