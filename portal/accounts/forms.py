from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from portal.crypto import Kind, NormalisationError, normalise

from .models import Operator, Role


class OperatorProfileForm(forms.ModelForm):
    class Meta:
        model = Operator
        fields = [
            "name",
            "pse_registration_number",
            "timezone",
            "province",
            "contact_email",
            "contact_phone",
            "address",
            "require_two_factor",
        ]

    def clean_contact_phone(self) -> str:
        phone = self.cleaned_data["contact_phone"].strip()
        if not phone:
            return ""
        try:
            digits = normalise(Kind.PHONE, phone)
        except NormalisationError:
            raise ValidationError(_("Enter a phone number, for example +62 21 1234 5678.")) from None
        if not 8 <= len(digits) <= 15:
            raise ValidationError(_("Enter a phone number, for example +62 21 1234 5678."))
        return phone


class InviteForm(forms.Form):
    # The invitation's column holds 254 characters (the longest address SMTP allows).
    email = forms.EmailField(label=_("E-mail address"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.REPORTER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class AcceptInvitationForm(forms.Form):
    full_name = forms.CharField(label=_("Full name"), max_length=150)
    password1 = forms.CharField(label=_("Password"), widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label=_("Password again"), widget=forms.PasswordInput, strip=False)

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("The two passwords do not match."))
        elif p1:
            from .models import User

            try:
                password_validation.validate_password(
                    p1, User(email=self.email, full_name=cleaned.get("full_name", ""))
                )
            except ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class TokenForm(forms.Form):
    token = forms.CharField(
        label=_("Code"),
        max_length=16,
        help_text=_("The 6-digit code from your authenticator app, or one of your recovery codes."),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_token(self) -> str:
        return self.cleaned_data["token"].replace(" ", "").strip()


class PasswordResetRequestForm(PasswordResetForm):
    """Django's reset form, answered by a worker: saving only records the request.

    Looking the account up and sending the e-mail in the request made a known address
    answer measurably slower than an unknown one.
    """

    def save(self, **kwargs) -> None:
        from . import services

        services.password_reset_request(
            email=self.cleaned_data["email"], language=translation.get_language() or settings.LANGUAGE_CODE
        )
