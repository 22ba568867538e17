import json

from inference.nlu_services import intent_model_evaluate

from inference.management.commands._common import ModelCommand, data_file_arguments


class Command(ModelCommand):
    help = "Evaluate a tenant's active intent model on a labelled file; the last line is the metrics as JSON."

    def add_arguments(self, parser):
        data_file_arguments(parser)
        parser.add_argument("--intent", required=True, metavar="COL", help="true intent (out_of_scope allowed)")

    def handle(self, *args, tenant, file, text, intent, **options):
        metrics = intent_model_evaluate(tenant, file, text, intent, progress=options["verbosity"] > 0)
        self.stdout.write(f"{metrics['n']} examples, accuracy {metrics['accuracy']}, macro-F1 {metrics['macro_f1']}")
        self.stdout.write(json.dumps(metrics))
