from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class QuestionUploadForm(forms.Form):
    set_name = forms.CharField(label=_("Question set"), max_length=200)
    file = forms.FileField(
        label=_("File"), help_text=_("CSV, JSON or JSONL in UTF-8. See the README for columns.")
    )
    mode = forms.ChoiceField(
        label=_("If an id already exists"),
        choices=[
            ("refuse", _("Refuse the file")),
            ("update", _("Update those questions")),
        ],
        initial="refuse",
    )
