from chatbot.conversations.selectors import tenant_require
from inference.nlu_services import config_default, intent_model_train

from chatbot.management.base import tenant_argument
from inference.management.commands._common import ModelCommand, training_options, training_overrides, version_summary


class Command(ModelCommand):
    help = "Fine-tune a new intent model (with out-of-scope detection) on a tenant's training examples."

    def add_arguments(self, parser):
        tenant_argument(parser)
        training_options(parser)

    def handle(self, *args, tenant, **options):
        overrides = training_overrides(options)
        if "epochs" in overrides:  # as many epochs as asked: no early stop
            overrides.setdefault("patience", 0)
        config = config_default("intent", tenant_require(tenant), **overrides)
        version = intent_model_train(tenant, config, activate=not options["no_activate"],
                                     members=options["members"],
                                     progress=options["verbosity"] > 0)
        self.stdout.write(version_summary(version))
