"""What every management command shares: a refusal from a service (the chatbot.errors.ServiceError family)
ends the command with a one-line CommandError (exit status 1), here and nowhere else; and the arguments that
name a store or a visitor, spelt and explained the same in every command."""
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatbot.errors import ServiceError


def command_error(exc: Exception) -> CommandError:
    """The CommandError of a refusal: the first line of its message (a traceback is for bugs, not for input)."""
    text = exc.detail if isinstance(exc, ServiceError) else str(exc)
    lines = text.strip().splitlines()
    return CommandError(lines[0] if lines else getattr(exc, "code", type(exc).__name__))


def tenant_argument(parser: CommandParser) -> None:
    """The store a command acts on, by slug (the services refuse an unknown one)."""
    parser.add_argument("tenant", help="The store's slug.")


def visitor_arguments(parser: CommandParser) -> None:
    """A visitor of a store, as the privacy commands find her (chatbot.conversations.privacy.visitors_of)."""
    tenant_argument(parser)
    parser.add_argument("visitor", help="The visitor's id, widget token or external id (the store's user id).")


class ServiceCommand(BaseCommand):
    """A command whose services' refusals reach the operator as their message, never as a traceback.

    `refused` adds errors outside the family that an operator fixes the same way (the ML commands': a
    base model not downloaded, FileNotFoundError)."""

    refused: tuple[type[Exception], ...] = ()

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (ServiceError, *self.refused) as exc:
            raise command_error(exc) from exc
