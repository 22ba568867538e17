"""Forms of the console's pages: they parse and render; chatbot.console.canned, .knowledge and .texts validate
and write. A text in a language other than the store's main one is the field `<name>_<language>` (text_es,
question_es...), the names the services' errors give."""
from django import forms

from chatbot.console.canned import SHORTCUT_MAX_LENGTH
from chatbot.console.knowledge import CATEGORY_MAX_LENGTH
from chatbot.console.languages import language_name
from chatbot.content import untranslated_note
from chatbot.models import Tenant


def _textarea(rows: int, language: str | None = None, **attrs) -> forms.Textarea:
    """A textarea that spell-checks in its language and follows a right-to-left script."""
    if language:
        attrs.update(lang=language, dir="auto")
    return forms.Textarea(attrs={"rows": rows, **attrs})


def field_of(form: forms.Form, name: str) -> str | None:
    """The form's field a service's error names, None (the whole form) for one it does not have."""
    return name if name in form.fields else None


class CannedReplyForm(forms.Form):
    tenant = forms.ChoiceField(label="Store")
    shortcut = forms.CharField(
        label="Shortcut", max_length=SHORTCUT_MAX_LENGTH + 1,  # room for a leading "/"
        error_messages={"required": "Give a shortcut."},
        help_text="Agents type /shortcut in the composer, e.g. /refund-policy.",
        widget=forms.TextInput(attrs={"placeholder": "refund-policy", "autocomplete": "off", "spellcheck": "false"}),
    )
    text = forms.CharField(
        label="Reply", error_messages={"required": "Write the reply's text."},
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "The text inserted in the composer"}),
    )

    def __init__(self, *args, tenants: list[Tenant], languages: list[str] | None = None, main_language: str = "",
                 **kwargs):
        """`languages`: the versions besides the main text to offer (`main_language` names the main one when
        all the form's stores share it)."""
        super().__init__(*args, **kwargs)
        self.fields["tenant"].choices = [(t.slug, t.name) for t in tenants]
        if len(tenants) == 1:
            self.fields["tenant"].initial = tenants[0].slug
            self.fields["tenant"].widget = forms.HiddenInput()
        self.languages = list(languages or [])
        if self.languages:
            text = self.fields["text"]
            if main_language:
                text.label = f"Reply ({language_name(main_language)})"
                text.widget.attrs.update(lang=main_language, dir="auto")
            else:
                text.help_text = "In the store's main language."
        for language in self.languages:
            self.fields[f"text_{language}"] = forms.CharField(
                label=f"Reply ({language_name(language)})", required=False,
                widget=_textarea(4, language, placeholder="Not written yet"),
            )

    def text_fields(self) -> list[forms.BoundField]:
        """The reply's versions, main first: shown side by side."""
        return [self["text"], *(self[f"text_{language}"] for language in self.languages)]

    def other_fields(self) -> list[forms.BoundField]:
        return [field for field in self.visible_fields() if not field.name.startswith("text")]

    def translations(self) -> dict[str, str]:
        return {language: self.cleaned_data.get(f"text_{language}", "") for language in self.languages}


class KnowledgeEntryForm(forms.Form):
    """An entry's question and answer in each of the store's languages; the service says what is missing."""

    category = forms.CharField(
        label="Category", required=False, help_text="Optional, e.g. shipping: groups entries on the list.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "maxlength": CATEGORY_MAX_LENGTH}),
    )

    def __init__(self, *args, languages: list[str], **kwargs):
        """`languages`: the store's, main first."""
        super().__init__(*args, **kwargs)
        self.languages = languages
        for n, language in enumerate(languages):
            suffix = "" if n == 0 else f"_{language}"
            hint = {} if n == 0 else {"placeholder": "Not written yet"}
            self.fields[f"question{suffix}"] = forms.CharField(
                label="Question", required=False, widget=_textarea(2, language, **hint))
            self.fields[f"answer{suffix}"] = forms.CharField(
                label="Answer", required=False, widget=_textarea(7, language, **hint))

    def columns(self) -> list[dict]:
        """One column per language, main first: its name, its two fields, and whether it is written."""
        columns = []
        for n, language in enumerate(self.languages):
            suffix = "" if n == 0 else f"_{language}"
            question, answer = self[f"question{suffix}"], self[f"answer{suffix}"]
            columns.append({"code": language, "name": language_name(language), "main": n == 0,
                            "fields": [question, answer], "written": bool(question.value() or answer.value())})
        return columns

    def translations(self) -> dict[str, dict[str, str]]:
        return {language: {"question": self.cleaned_data.get(f"question_{language}", ""),
                           "answer": self.cleaned_data.get(f"answer_{language}", "")}
                for language in self.languages[1:]}


# The store's texts as the texts page shows them: (name, label, when the bot sends it).
STORE_TEXTS = (
    ("greeting", "Greeting", "The widget's first message."),
    ("fallback_text", "Fallback", "When the bot has no answer to a question."),
    ("handoff_text", "Hand-off notice", "When the conversation goes to a person."),
    ("no_agent_text", "Nobody online", "When it goes to a person and no agent is online: asks for an e-mail address."),
    ("complaint_text", "Complaint reply", "To a strong complaint: an apology and the offer of a person."),
    ("untranslated_note", "Before an untranslated answer",
     "The line before an answer sent in the main language to a visitor who wrote in another one."),
)


class StoreTextsForm(forms.Form):
    """Each of the store's texts in each of its languages, and the `untranslated` choice."""

    untranslated = forms.ChoiceField(
        label="A question the store wrote no answer to in the visitor's language",
        choices=Tenant.Untranslated.choices, widget=forms.RadioSelect,
        error_messages={"required": "Choose what the bot does.", "invalid_choice": "Choose what the bot does."},
    )

    def __init__(self, *args, tenant: Tenant, languages: list[str], **kwargs):
        """`languages`: the store's, main first."""
        super().__init__(*args, **kwargs)
        self.tenant, self.languages = tenant, languages
        main = languages[0]
        for name, label, _ in STORE_TEXTS:
            if name != "untranslated_note":
                self.fields[name] = forms.CharField(label=label, required=False, widget=_textarea(3, main))
            for language in languages[1:]:
                # Empty: the main text is sent, or for the note the platform's wording in that language.
                unwritten = (untranslated_note(language, main) if name == "untranslated_note"
                             else "Not written yet: the main text is sent")
                self.fields[f"{name}_{language}"] = forms.CharField(
                    label=label, required=False, widget=_textarea(3, language, placeholder=unwritten))

    def rows(self) -> list[dict]:
        """One row per text: its label and hint, and one cell per language (the main language's note shown as
        the platform words it, since it has no field)."""
        rows = []
        for name, label, hint in STORE_TEXTS:
            cells = []
            for n, language in enumerate(self.languages):
                if n == 0 and name == "untranslated_note":
                    cells.append({"code": language, "name": language_name(language), "main": True, "field": None,
                                  "fixed": untranslated_note(language, language)})
                    continue
                field = self[name if n == 0 else f"{name}_{language}"]
                cells.append({"code": language, "name": language_name(language), "main": n == 0, "field": field})
            rows.append({"name": name, "label": label, "hint": hint, "cells": cells})
        return rows

    def main_texts(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(name, "") for name, _, _ in STORE_TEXTS if name != "untranslated_note"}

    def translations(self) -> dict[str, dict[str, str]]:
        return {language: {name: self.cleaned_data.get(f"{name}_{language}", "") for name, _, _ in STORE_TEXTS}
                for language in self.languages[1:]}

    @staticmethod
    def initial_of(tenant: Tenant, languages: list[str]) -> dict:
        """The form's values as the store has them."""
        initial = {"untranslated": tenant.untranslated}
        for name, _, _ in STORE_TEXTS:
            if name != "untranslated_note":
                initial[name] = getattr(tenant, name)
            for language in languages[1:]:
                texts = (tenant.translations or {}).get(language)
                initial[f"{name}_{language}"] = texts.get(name, "") if isinstance(texts, dict) else ""
        return initial
