import json

from inference.nlu_services import sentiment_model_evaluate

from inference.management.commands._common import ModelCommand, data_file_arguments


class Command(ModelCommand):
    help = "Evaluate the active sentiment model on a labelled file; the last line is the metrics as JSON."

    def add_arguments(self, parser):
        data_file_arguments(parser, tenant=False)
        parser.add_argument("--label", required=True, metavar="COL", help="negative, neutral or positive")

    def handle(self, *args, file, text, label, **options):
        metrics = sentiment_model_evaluate(file, text, label, progress=options["verbosity"] > 0)
        self.stdout.write(f"{metrics['n']} examples, accuracy {metrics['accuracy']}, macro-F1 {metrics['macro_f1']}")
        self.stdout.write(json.dumps(metrics))
