from inference.nlu_services import config_default, sentiment_model_train
from nlu.train import recipe

from inference.management.commands._common import ModelCommand, training_options, training_overrides, version_summary


class Command(ModelCommand):
    help = "Fine-tune the global sentiment model (negative/neutral/positive) on a file or the stored examples."

    def add_arguments(self, parser):
        parser.add_argument("--data", metavar="FILE", help=".csv/.jsonl file (default: all SentimentExample rows)")
        parser.add_argument("--text", metavar="COL", default="text", help="text column (default: text)")
        parser.add_argument("--label", metavar="COL", default="label", help="label column (default: label)")
        training_options(parser)

    def handle(self, *args, data, text, label, **options):
        overrides = training_overrides(options)
        # the recipe probes the pretrained encoder; asking for epochs or steps fine-tunes it
        fine_tune = bool(overrides.get("epochs") or overrides.get("max_train_steps"))
        config = config_default("sentiment", **(recipe("sentiment", fine_tune) | overrides))
        version = sentiment_model_train(data, text, label, config, activate=not options["no_activate"],
                                        members=options["members"],
                                        progress=options["verbosity"] > 0)
        self.stdout.write(version_summary(version))
