import json

from chatbot.management.base import ServiceCommand
from inference.management.commands._common import data_file_arguments
from inference.responder_services import responder_evaluate


class Command(ServiceCommand):
    help = "Evaluate a tenant's active responder on a file of messages and reference replies; last line is JSON."

    def add_arguments(self, parser):
        data_file_arguments(parser)
        parser.add_argument("--response", required=True, metavar="COL", help="column with the reference reply")

    def handle(self, *args, tenant, file, text, response, **options):
        metrics = responder_evaluate(tenant, file, text, response)
        self.stdout.write(
            f"{metrics['n']} replies: ROUGE-L {metrics['rouge_l']}, BLEU {metrics['bleu']}, "
            f"hand-off rate {metrics['handoff_rate']}"
        )
        self.stdout.write(json.dumps(metrics))
