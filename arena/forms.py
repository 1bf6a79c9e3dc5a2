from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from arena.accounts.tokens import api_token_scopes_allowed
from arena.models import ApiToken, GoldItem
from arena.quality.control import gold_item_problem


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


class ApiTokenForm(forms.ModelForm[ApiToken]):
    """The admin's token form. Scopes and expiry are chosen when the token is made; after
    that only its name and expiry change (the user and scopes are read-only)."""

    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=ApiToken.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None ticked: every scope the user's permissions allow, except admin."),
    )

    class Meta:
        model = ApiToken
        fields = ["user", "name", "scopes", "expires_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.fields.pop("scopes", None)

    def clean_scopes(self) -> str:
        return " ".join(self.cleaned_data["scopes"])  # the model's space-separated column

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.instance._state.adding:
            return cleaned
        user, scopes = cleaned.get("user"), cleaned.get("scopes", "")
        if user is not None and scopes:
            refused = sorted(set(scopes.split()) - set(api_token_scopes_allowed(user=user)))
            if refused:
                self.add_error(
                    "scopes",
                    _("%(user)s may not hold these scopes: %(s)s.")
                    % {"user": user.get_username(), "s": ", ".join(refused)},
                )
        expires_at = cleaned.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            self.add_error("expires_at", _("The expiry must be in the future."))
        return cleaned


class GoldItemForm(forms.ModelForm[GoldItem]):
    """A gold item in the admin: two different finished answers to the chosen question."""

    class Meta:
        model = GoldItem
        fields = ["campaign", "question", "better", "worse", "note", "active"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        problem = gold_item_problem(
            question=cleaned.get("question"),
            better=cleaned.get("better"),
            worse=cleaned.get("worse"),
        )
        if problem:
            raise forms.ValidationError(problem)
        return cleaned
