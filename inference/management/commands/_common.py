"""What the NLU commands share: their base class, options and summaries."""
import argparse
import json

from django.core.management.base import CommandParser

from chatbot.management.base import ServiceCommand, tenant_argument


class ModelCommand(ServiceCommand):
    """A command that trains or evaluates intent and sentiment models. Besides the services' refusals, the
    model library's errors about a file it cannot use end it with their message: nlu, a library without the
    platform's errors, raises FileNotFoundError or ValueError for a model or data file it cannot read."""

    refused = (FileNotFoundError, ValueError)


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def data_file_arguments(parser: CommandParser, *, tenant: bool = True) -> None:
    """The arguments of a command that reads a data file (inference.training_data): the store (unless the
    data is the platform's), the file and its message column; the command adds its label columns."""
    if tenant:
        tenant_argument(parser)
    parser.add_argument("file", help=".csv, .tsv or .jsonl file, UTF-8")
    parser.add_argument("--text", required=True, metavar="COL", help="column with the message text")


def training_options(parser) -> None:
    parser.add_argument("--epochs", type=int, help="training epochs (default: the platform's)")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--members", type=positive_int, help="models in a seed ensemble (default: the setting)")
    parser.add_argument("--no-activate", action="store_true", help="register the version without activating it")


def training_overrides(options) -> dict:
    names = {"epochs": "epochs", "lr": "lr", "batch_size": "batch_size", "max_steps": "max_train_steps", "seed": "seed"}
    overrides = {field: options[opt] for opt, field in names.items() if options.get(opt) is not None}
    if "epochs" in overrides or "max_train_steps" in overrides:
        overrides.setdefault("min_train_steps", 0)
    return overrides


def version_summary(version) -> str:
    keys = ("members", "n_train", "n_val", "epochs", "val_accuracy", "val_macro_f1", "temperature",
            "val_ece_after", "train_seconds")
    metrics = {k: version.metrics[k] for k in keys if k in version.metrics}
    if version.metrics.get("oos"):
        oos = version.metrics["oos"]
        metrics["oos"] = {"method": oos.get("method"), "threshold": oos.get("threshold")}
    state = "active" if version.is_active else "inactive"
    return f"Trained {version.kind} model {version.version} ({state}) at {version.path}\n{json.dumps(metrics)}"
