import json

from chatbot.management.base import ServiceCommand, tenant_argument
from inference.responder_services import responder_config, responder_train


class Command(ServiceCommand):
    help = "Fine-tune a tenant's seq2seq responder on its (message, reply) pairs and register the new version."
    refused = (FileNotFoundError,)  # the base model is not downloaded: the operator's to fix

    def add_arguments(self, parser):
        tenant_argument(parser)
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--lr", type=float)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
        parser.add_argument("--decoder-layers", type=int, help="decoder depth of a warm start (fewer is faster)")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--examples", type=int,
                            help="retrieve-and-refine: replies of the N most similar training messages in the input")
        parser.add_argument("--example-chars", type=int, help="an example reply is clipped to this many characters")
        parser.add_argument("--encoder-layers", type=int, help="also fine-tune the encoder's top N layers")
        parser.add_argument("--max-target-tokens", type=int, help="training replies are cut at this many tokens")
        parser.add_argument("--max-minutes", type=float, help="stop training after this long")
        parser.add_argument("--no-activate", action="store_true", help="register the version without activating it")

    def handle(self, *args, tenant, **options):
        names = {"epochs": "epochs", "lr": "lr", "batch_size": "batch_size", "max_steps": "max_train_steps",
                 "decoder_layers": "decoder_layers", "seed": "seed", "examples": "examples",
                 "example_chars": "max_example_chars", "encoder_layers": "train_encoder_layers",
                 "max_target_tokens": "max_target_length"}
        values = {f: options[o] for o, f in names.items() if options.get(o) is not None}
        if options.get("max_minutes"):
            values["max_train_seconds"] = options["max_minutes"] * 60
        config = responder_config(**values)
        version = responder_train(tenant, config, activate=not options["no_activate"],
                                  progress=options["verbosity"] > 0)
        summary = {k: version.metrics.get(k) for k in ("pairs", "epochs_run", "best_epoch", "val_loss", "val",
                                                       "train_seconds")}
        state = "active" if version.is_active else "inactive"
        self.stdout.write(f"Trained responder {version.version} ({state}) at {version.path}")
        self.stdout.write(json.dumps(summary))
