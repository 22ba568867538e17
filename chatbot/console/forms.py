"""Forms of the console's pages: they parse and render; chatbot.console.canned validates and writes."""
from django import forms

from chatbot.console.canned import SHORTCUT_MAX_LENGTH
from chatbot.models import Tenant


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

    def __init__(self, *args, tenants: list[Tenant], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].choices = [(t.slug, t.name) for t in tenants]
        if len(tenants) == 1:
            self.fields["tenant"].initial = tenants[0].slug
            self.fields["tenant"].widget = forms.HiddenInput()
