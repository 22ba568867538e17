"""Forms of the console's pages: they parse and render; chatbot.console.canned, .knowledge and .texts validate
and write. A text in a language other than the store's main one is the field `<name>_<language>` (text_es,
question_es...), the names the services' errors give."""
from django import forms

from chatbot.console.canned import SHORTCUT_MAX_LENGTH
from chatbot.console.knowledge import CATEGORY_MAX_LENGTH
from chatbot.console.languages import language_name
from chatbot.content import untranslated_note
from chatbot.conversations import hours
from chatbot.conversations.assignment import MAX_CAPACITY, MAX_TARGET_MINUTES, MemberSettings
from chatbot.models import AgentMembership, Tenant


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


# --- the order system page (chatbot.console.connections) -------------------------------------------------------

# How the connect form names a kind's credentials; a name not listed is shown as written ("api_key": "Api key").
CREDENTIAL_LABELS = {
    "secret": ("Signing secret", "Leave empty for a new one, shown once after connecting."),
    "token": ("Admin API access token", "An app made in the store's admin (shpat_...); or give the two below."),
    "client_id": ("Client ID", "An app made in Shopify's Dev Dashboard: Settings → Client ID."),
    "client_secret": ("Client secret", "Shown with the client ID; the platform gets its day-long tokens itself."),
    "consumer_key": ("Consumer key", "WooCommerce → Settings → Advanced → REST API (ck_...)."),
    "consumer_secret": ("Consumer secret", "Shown with the consumer key (cs_...)."),
}
URL_MAX_LENGTH = 500  # StoreConnection.url


class StoreConnectionForm(forms.Form):
    """Connect (or reconnect) the store's order system. It parses; services.store_connect validates (kind, address,
    mapping, pattern, timeout) and its refusals land on the fields (`field_for`).

    Each kind's credentials are fields `<kind>_<name>` (webhook_secret, shopify_token...), password inputs that
    are never filled in from the stored connection nor rendered back after a refused submit."""

    kind = forms.ChoiceField(label="Order system", error_messages={"required": "Choose the kind of order system."})
    url = forms.CharField(
        label="Address", max_length=URL_MAX_LENGTH, error_messages={"required": "Give the order system's address."},
        help_text="Your endpoint's https address; for Shopify https://SHOP.myshopify.com, for WooCommerce the "
                  "shop's address.",
        widget=forms.TextInput(attrs={"placeholder": "https://shop.example/chatbot/orders", "spellcheck": "false",
                                      "autocomplete": "off", "inputmode": "url"}),
    )
    keep_credentials = forms.BooleanField(
        label="Keep the credentials it holds", required=False,
        help_text="Fields left empty below keep their stored value (the webhook keeps its signing secret), while the "
                  "kind and the address's host stay the same.")
    intent_actions = forms.CharField(
        label="Intents and their actions", required=False,
        help_text="One per line: intent = action, e.g. track_order = order_status.",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "placeholder": "track_order = order_status"}),
    )
    order_pattern = forms.CharField(
        label="Order-number pattern", required=False, strip=False, max_length=200,
        help_text="A regular expression for the store's order numbers, e.g. NW-\\d{6}.",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    timeout = forms.FloatField(
        label="Timeout (seconds)", required=False, help_text="How long the order system has to answer: 0.5 to 30.",
        error_messages={"invalid": "Give the timeout in seconds, e.g. 5."},
        widget=forms.NumberInput(attrs={"step": "0.5", "min": "0.5", "max": "30"}),
    )

    def __init__(self, *args, kinds: list[tuple[str, str]], credentials: dict[str, tuple[str, ...]],
                 connected: bool = False, **kwargs):
        """`kinds`: (kind, name) a store can connect; `credentials`: each kind's credential names; `connected`:
        whether the store has a connection (only then is there something to keep)."""
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = kinds
        self.kind_names = dict(kinds)
        self.credential_fields: dict[str, list[str]] = {}
        for kind, names in credentials.items():
            for name in names:
                label, hint = CREDENTIAL_LABELS.get(name, (name.replace("_", " ").capitalize(), ""))
                field_name = f"{kind}_{name}"
                self.fields[field_name] = forms.CharField(
                    label=label, required=False, strip=True, max_length=500, help_text=hint,
                    widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password",
                                                                          "spellcheck": "false"}))
                self.credential_fields.setdefault(kind, []).append(field_name)
        if not connected:
            del self.fields["keep_credentials"]

    def credential_groups(self) -> list[dict]:
        """Each kind's credential fields, to render as one fieldset per kind."""
        return [{"kind": kind, "name": self.kind_names.get(kind, kind), "fields": [self[n] for n in names]}
                for kind, names in self.credential_fields.items()]

    def clean_intent_actions(self) -> dict[str, str]:
        """The lines as {intent: action}; whether each action fits the kind is the service's to say."""
        mapping: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["intent_actions"].splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            intent, sep, action = line.partition("=")
            intent, action = intent.strip(), action.strip()
            if not sep or not intent or not action:
                raise forms.ValidationError(f"Line {number}: write intent = action (got {line[:60]!r}).")
            if intent in mapping:
                raise forms.ValidationError(f"Line {number}: {intent!r} is mapped twice.")
            mapping[intent] = action
        return mapping

    def credentials(self) -> dict[str, str]:
        """The credentials typed for the chosen kind (empty ones left out)."""
        kind = self.cleaned_data.get("kind", "")
        prefix = f"{kind}_"
        return {name.removeprefix(prefix): self.cleaned_data[name] for name in self.credential_fields.get(kind, [])
                if self.cleaned_data.get(name)}

    def field_for(self, service_field: str) -> str | None:
        """The form's field a refusal of services.store_connect names: its own fields, or a credential of the
        chosen kind (`secret` -> `webhook_secret`); None (the whole form) for any other."""
        credential = f"{self.cleaned_data.get('kind', '')}_{service_field}"
        if credential in self.fields:
            return credential
        return field_of(self, service_field)


class OrderLookupForm(forms.Form):
    """A manager's test look-up; services.connection_test says what is missing."""

    order_number = forms.CharField(
        label="Order number", required=False, max_length=50,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "NW-482913"}))
    email = forms.CharField(
        label="Customer's e-mail", required=False, max_length=254,
        help_text="Optional: as a visitor who gives it would be asked.",
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "optional"}))


# --- the team page (chatbot.console.team) ---------------------------------------------------------------------

# AgentMembership.Notify in words short enough for the members' table (a new choice fails here, loudly).
_SHORT_NOTIFY = {"each": "Each hand-off", "digest": "Digest", "none": "None"}
TEAM_NOTIFY_CHOICES = [(value, _SHORT_NOTIFY[value]) for value in AgentMembership.Notify.values]
DAY_NAMES = dict(zip(hours.DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")))


class TeamSettingsForm(forms.Form):
    """How a store's team works: the assignment rule, business hours, holidays, the first-response target, and each
    member's capacity, languages and hand-off e-mails (fields capacity_<user id>, languages_<user id>,
    notify_<user id>). It parses the day lines ("09:00-12:30, 13:30-17:30") and the lists;
    assignment.team_settings_save validates and writes, and its refusals land on these fields (`field_of`)."""

    assignment = forms.ChoiceField(label="Who gets a hand-off", choices=Tenant.Assignment.choices,
                                   widget=forms.RadioSelect)
    first_response_minutes = forms.IntegerField(
        label="First-response target (minutes)", required=False, min_value=1, max_value=MAX_TARGET_MINUTES,
        help_text="Counted in business hours from the hand-off (from the next opening when it comes in while the team "
                  "is away). Empty: no target.",
        widget=forms.NumberInput(attrs={"placeholder": "e.g. 15"}))
    timezone = forms.ChoiceField(label="Time zone", help_text="The hours below are this zone's wall-clock times, "
                                                               "summer time included.")
    always_open = forms.BooleanField(label="Always open", required=False,
                                     help_text="The team takes hand-offs at any hour; the days below are not kept.")
    holidays = forms.CharField(
        label="Holidays", required=False, help_text="Closed all day: one date a line (or separated by commas), "
                                                    "e.g. 2026-12-25.",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "placeholder": "2026-12-25"}))

    def __init__(self, *args, members: list, **kwargs):
        """`members`: the store's memberships (chatbot.conversations.selectors.team_of), a capacity and a languages
        field each."""
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = [(name, name) for name in hours.time_zones()]
        for day, name in DAY_NAMES.items():
            self.fields[day] = forms.CharField(
                label=name, required=False, max_length=200,
                widget=forms.TextInput(attrs={"placeholder": "closed", "spellcheck": "false", "autocomplete": "off"}))
        self.members = members
        for seat in members:
            self.fields[f"capacity_{seat.user_id}"] = forms.IntegerField(
                label="Capacity", min_value=0, max_value=MAX_CAPACITY,
                error_messages={"required": "Give a number of conversations (0: never assigned automatically)."},
                widget=forms.NumberInput(attrs={"class": "team-capacity"}))
            self.fields[f"languages_{seat.user_id}"] = forms.CharField(
                label="Languages", required=False, max_length=100,
                widget=forms.TextInput(attrs={"placeholder": "en, es", "spellcheck": "false", "autocomplete": "off"}))
            # Left out of a POST (a script of the store's own): she keeps hers.
            self.fields[f"notify_{seat.user_id}"] = forms.ChoiceField(
                label="Hand-off e-mails", choices=TEAM_NOTIFY_CHOICES, required=False,
                widget=forms.Select(attrs={"class": "team-notify"}))

    @staticmethod
    def initial_of(tenant: Tenant, members: list) -> dict:
        initial = {"assignment": tenant.assignment, "first_response_minutes": tenant.first_response_minutes,
                   "timezone": tenant.timezone, "always_open": not tenant.business_hours,
                   "holidays": "\n".join(tenant.holidays or [])}
        for day in hours.DAYS:
            intervals = (tenant.business_hours or {}).get(day) or []
            initial[day] = ", ".join(f"{opens}-{closes}" for opens, closes in intervals)
        for seat in members:
            initial[f"capacity_{seat.user_id}"] = seat.capacity
            initial[f"languages_{seat.user_id}"] = ", ".join(seat.languages or [])
            initial[f"notify_{seat.user_id}"] = seat.notify
        return initial

    def clean(self) -> dict:
        data = super().clean()
        for day in hours.DAYS:
            if day in data:
                data[day] = self._intervals(day, data[day])
        return data

    def _intervals(self, day: str, line: str) -> list[list[str]]:
        """"09:00-12:30, 13:30-17:30" as [["09:00", "12:30"], ["13:30", "17:30"]] (the service checks the times)."""
        intervals = []
        for part in line.replace(";", ",").split(","):
            part = part.strip().replace("–", "-")
            if not part:
                continue
            opens, sep, closes = part.partition("-")
            if not sep:
                self.add_error(day, f"Write {DAY_NAMES[day]}'s hours as opens-closes, e.g. 09:00-17:30 "
                                    f"(got {part[:30]!r}).")
                return []
            intervals.append([opens.strip(), closes.strip()])
        return intervals

    def clean_holidays(self) -> list[str]:
        return self.cleaned_data["holidays"].replace(",", " ").split()

    def _languages(self, name: str) -> list[str]:
        return [code.strip().lower() for code in self.cleaned_data.get(name, "").replace(";", ",").split(",")
                if code.strip()]

    def business_hours(self) -> dict:
        """The weekly schedule to store: {} when always open, else every day (an empty one closed; all empty is
        refused by the service, not read as always open)."""
        if self.cleaned_data.get("always_open"):
            return {}
        return {day: self.cleaned_data.get(day) or [] for day in hours.DAYS}

    def member_settings(self) -> dict[int, MemberSettings]:
        return {seat.user_id: MemberSettings(self.cleaned_data[f"capacity_{seat.user_id}"],
                                             self._languages(f"languages_{seat.user_id}"),
                                             self.cleaned_data.get(f"notify_{seat.user_id}") or None)
                for seat in self.members}

    def day_fields(self) -> list:
        return [self[day] for day in hours.DAYS]

    def member_rows(self) -> list[dict]:
        return [{"seat": seat, "capacity": self[f"capacity_{seat.user_id}"],
                 "languages": self[f"languages_{seat.user_id}"], "notify": self[f"notify_{seat.user_id}"]}
                for seat in self.members]


# --- "My settings" (chatbot.console.me) ----------------------------------------------------------------------


class NotifyForm(forms.Form):
    """One of her memberships' hand-off e-mail preference, a form per store on "My settings". It only renders:
    assignment.member_notify_set checks the membership is hers and validates the choice, and its refusal lands on
    `notify`."""

    membership = forms.IntegerField(widget=forms.HiddenInput)
    notify = forms.CharField(label="Hand-off e-mails", required=False,
                             widget=forms.Select(choices=AgentMembership.Notify.choices))
