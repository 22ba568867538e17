import json

from chatbot.conversations import selectors
from chatbot.management.base import ServiceCommand, tenant_argument
from chatbot.review.insights import period_parse
from inference.clusters import DISTANCE_THRESHOLD, unanswered_clusters


class Command(ServiceCommand):
    help = ("Group a tenant's questions the bot could not answer by meaning, for the console's 'what to fix "
            "first'; last line is JSON.")

    def add_arguments(self, parser):
        tenant_argument(parser)
        parser.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first day (default: 30 days ago)")
        parser.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last day (default: today)")
        parser.add_argument("--threshold", type=float, default=DISTANCE_THRESHOLD,
                            help="cosine distance under which questions are grouped (average linkage)")

    def handle(self, *args, tenant, start, end, threshold, **options):
        found = selectors.tenant_require(tenant)
        result = unanswered_clusters(found.id, period_parse(start, end), threshold)
        for cluster in result["clusters"][:10]:
            self.stdout.write(f"{cluster['size']:5d}  {cluster['label']}")
        self.stdout.write(json.dumps({k: result[k] for k in ("tenant", "from", "to", "questions", "grouped",
                                                              "seconds")} | {"clusters": len(result["clusters"])}))
