import json

from chatbot.management.base import ServiceCommand
from inference.management.commands._common import data_file_arguments
from inference.responder_services import responder_evaluate


class Command(ServiceCommand):
    help = ("Evaluate a tenant's active responder on a file of messages and reference replies: its own replies, "
            "the nearest training reply and the replies as served; last line is JSON.")

    def add_arguments(self, parser):
        data_file_arguments(parser)
        parser.add_argument("--response", required=True, metavar="COL", help="column with the reference reply")

    def handle(self, *args, tenant, file, text, response, **options):
        metrics = responder_evaluate(tenant, file, text, response)
        low, high = metrics["served_gain"]["ci95"]
        self.stdout.write(
            f"{metrics['n']} replies: ROUGE-L as served {metrics['served_rougeL']} (responder's own "
            f"{metrics['rougeL']}, nearest training reply {metrics['retrieval_rougeL']}; served gain "
            f"{metrics['served_gain']['mean']:+.4f}, 95% interval [{low:+.4f}, {high:+.4f}]), invented values in "
            f"{metrics['invented_rate']:.1%} of generated replies, BLEU {metrics['bleu']}, "
            f"hand-off rate {metrics['handoff_rate']}"
        )
        self.stdout.write(json.dumps(metrics))
