from chatbot.conversations.identity import identity_secret_rotate
from chatbot.management.base import ServiceCommand, tenant_argument


class Command(ServiceCommand):
    help = ("Give a store a new identity-verification secret and print it as the last line. The old one stays "
            "valid (as the previous secret) until the next rotation or --drop-previous, so the store's servers "
            "can switch without refusing visitors.")

    def add_arguments(self, parser):
        tenant_argument(parser)
        parser.add_argument("--drop-previous", action="store_true",
                            help="Accept only the new secret from now on (the old one leaked).")

    def handle(self, *args, tenant, drop_previous, **options):
        secret = identity_secret_rotate(tenant, keep_previous=not drop_previous)
        self.stdout.write("The store's server signs each visitor's id as hex(HMAC-SHA256(secret, id)) and the page "
                          "passes both to the widget: data-user-id=\"ID\" data-user-hash=\"HASH\".")
        if not drop_previous:
            self.stdout.write("The previous secret is still accepted until the next rotation or --drop-previous.")
        self.stdout.write(secret)
