import json

from django.core.management.base import BaseCommand, CommandError

from inference.responder_services import ResponderError, responder_evaluate


class Command(BaseCommand):
    help = "Evaluate a tenant's active responder on a file of messages and reference replies; last line is JSON."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("file", help=".csv, .tsv or .jsonl file")
        parser.add_argument("--text", required=True, metavar="COL", help="the visitor's message")
        parser.add_argument("--response", required=True, metavar="COL", help="the reference reply")

    def handle(self, *args, tenant, file, text, response, **options):
        try:
            metrics = responder_evaluate(tenant, file, text, response)
        except ResponderError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{metrics['n']} replies: ROUGE-L {metrics['rouge_l']}, BLEU {metrics['bleu']}, "
            f"hand-off rate {metrics['handoff_rate']}"
        )
        self.stdout.write(json.dumps(metrics))
