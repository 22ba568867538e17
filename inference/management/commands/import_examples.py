from inference.nlu_services import examples_import

from inference.management.commands._common import ModelCommand, data_file_arguments


class Command(ModelCommand):
    help = "Import a tenant's labelled messages (intent, optional response) from a CSV or JSONL file."

    def add_arguments(self, parser):
        data_file_arguments(parser)
        parser.add_argument("--intent", required=True, metavar="COL", help="column with the intent label")
        parser.add_argument("--response", metavar="COL", help="column with the reply it should get")
        language = parser.add_mutually_exclusive_group()
        language.add_argument("--language", default="", metavar="CODE",
                              help="the language of every row (ISO 639-1, e.g. es); default: the store's main one")
        language.add_argument("--language-column", metavar="COL", help="column with each row's language")

    def handle(self, *args, tenant, file, text, intent, response, language, language_column, **options):
        count = examples_import(tenant, file, text, intent, response, progress=options["verbosity"] > 0,
                                language=language, language_col=language_column)
        self.stdout.write(f"Imported {count} examples into {tenant}.")
