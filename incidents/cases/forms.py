"""Forms of the suspected-cases app: flag, correct, withdraw, filter."""

import re
from datetime import date

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from portal.forms import CalendarDateField
from portal.regions import Province

from .models import (
    AgeBand,
    AntigenResult,
    CaseDefinition,
    Classification,
    Criterion,
    CriterionKind,
    FlagStatus,
    LegalBasis,
    Sex,
    WithdrawReason,
)
from .nik import clean_nik
from .services import local_today

EARLIEST_ONSET = date(2019, 12, 1)
REGENCY_CODE = re.compile(r"^\d{2}\.\d{2}$")
# Dukcapil/BPS province prefix of regency codes, by ISO 3166-2:ID code. Papua's newer
# provinces use the 9x range; any 9x code is accepted for them.
PROVINCE_PREFIX = {
    "ID-AC": "11", "ID-SU": "12", "ID-SB": "13", "ID-RI": "14", "ID-JA": "15", "ID-SS": "16",
    "ID-BE": "17", "ID-LA": "18", "ID-BB": "19", "ID-KR": "21", "ID-JK": "31", "ID-JB": "32",
    "ID-JT": "33", "ID-YO": "34", "ID-JI": "35", "ID-BT": "36", "ID-BA": "51", "ID-NB": "52",
    "ID-NT": "53", "ID-KB": "61", "ID-KT": "62", "ID-KS": "63", "ID-KI": "64", "ID-KU": "65",
    "ID-SA": "71", "ID-ST": "72", "ID-SN": "73", "ID-SG": "74", "ID-GO": "75", "ID-SR": "76",
    "ID-MA": "81", "ID-MU": "82",
}  # fmt: skip
PAPUA = {"ID-PA", "ID-PB", "ID-PD", "ID-PT", "ID-PE", "ID-PS"}


def _criterion_choices(kind: str) -> list[tuple[str, str]]:
    return [(c.code, c.label) for c in Criterion.objects.filter(kind=kind)]


class DateInput(forms.DateInput):
    input_type = "date"


class CriterionCheckboxes(forms.CheckboxSelectMultiple):
    """Checkboxes for symptom or criterion codes, each marked with the definitions that list it.

    Codes the current definition does not list are rendered hidden; static/cases/criteria.js
    shows and hides them when the reporter picks another definition.
    """

    option_template_name = "cases/widgets/criterion_option.html"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.definitions: dict[str, list[int]] = {}
        self.current: int | None = None

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        listed = self.definitions.get(str(value), [])
        option["definitions"] = " ".join(str(pk) for pk in listed)
        option["hidden"] = self.current is not None and self.current not in listed and not selected
        return option


class FactsForm(forms.Form):
    """The clinical and epidemiological facts the evaluator classifies."""

    definition = forms.ModelChoiceField(
        label=_("Case definition"), queryset=CaseDefinition.objects.none(), empty_label=None
    )
    symptoms = forms.MultipleChoiceField(
        label=_("Symptoms"), required=False, widget=CriterionCheckboxes, choices=()
    )
    onset_date = forms.DateField(
        label=_("Date of symptom onset"),
        required=False,
        widget=DateInput,
        help_text=_("Required when there are symptoms."),
    )
    epidemiological = forms.MultipleChoiceField(
        label=_("Epidemiological criteria"),
        required=False,
        widget=CriterionCheckboxes,
        choices=(),
        help_text=_("In the 14 days before onset. Only the criteria of the chosen definition are shown."),
    )
    sari = forms.BooleanField(
        label=_("Severe acute respiratory illness: fever and cough, needs hospitalisation"), required=False
    )
    antigen_result = forms.ChoiceField(
        label=_("Antigen rapid test"),
        choices=AntigenResult.choices,
        initial=AntigenResult.NOT_DONE,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, operator, **kwargs) -> None:
        self.operator = operator
        super().__init__(*args, **kwargs)
        definitions = CaseDefinition.objects.active()
        self.fields["definition"].queryset = definitions
        default = definitions.filter(is_default=True).first()
        if default is not None and not self.initial.get("definition"):
            self.fields["definition"].initial = default.pk
        self.fields["symptoms"].choices = _criterion_choices(CriterionKind.SYMPTOM)
        self.fields["epidemiological"].choices = _criterion_choices(CriterionKind.EPIDEMIOLOGICAL)
        # Which definitions list each code, and which definition the form shows now.
        listed: dict[str, dict[str, list[int]]] = {"symptoms": {}, "epidemiological": {}}
        for definition in definitions:
            for key, codes in (
                ("symptoms", definition.symptom_codes),
                ("epidemiological", definition.epidemiological_codes),
            ):
                for code in codes:
                    listed[key].setdefault(code, []).append(definition.pk)
        current = self.data.get(self.add_prefix("definition")) if self.is_bound else None
        current = current or self.initial.get("definition") or self.fields["definition"].initial
        try:
            current = int(getattr(current, "pk", current))
        except (TypeError, ValueError):
            current = None
        for key in ("symptoms", "epidemiological"):
            widget = self.fields[key].widget
            widget.definitions, widget.current = listed[key], current

    def clean(self):
        data = super().clean()
        definition = data.get("definition")
        if definition is None:
            return data
        for key, listed, message in (
            (
                "symptoms",
                definition.symptom_codes,
                _(
                    "%(definition)s does not list these symptoms: %(names)s. "
                    "Untick them or choose another definition."
                ),
            ),
            (
                "epidemiological",
                definition.epidemiological_codes,
                _(
                    "%(definition)s does not list these criteria: %(names)s. "
                    "Untick them or choose the definition that lists them."
                ),
            ),
        ):
            foreign = [code for code in data.get(key) or () if code not in listed]
            if foreign:
                labels = dict(self.fields[key].choices)
                names = ", ".join(str(labels.get(code, code)) for code in foreign)
                self.add_error(key, message % {"definition": definition.short_name, "names": names})
        return data

    def clean_onset_date(self):
        onset = self.cleaned_data.get("onset_date")
        if onset is not None:
            if onset > local_today(self.operator):
                raise ValidationError(_("The onset date cannot be in the future."))
            if onset < EARLIEST_ONSET:
                raise ValidationError(_("The onset date cannot be before December 2019."))
        return onset


class PlaceForm(FactsForm):
    """Facts plus where and who, in codes: province, regency, age band, sex."""

    province = forms.ChoiceField(label=_("Province"), choices=[("", "—")] + list(Province.choices))
    regency_code = forms.CharField(
        label=_("Regency or city code"),
        required=False,
        max_length=5,
        help_text=_("Optional, as in the NIK: e.g. 73.71 for Kota Makassar."),
    )
    regency_name = forms.CharField(label=_("Regency or city"), required=False, max_length=100)
    age_band = forms.ChoiceField(label=_("Age band"), choices=[("", "—")] + list(AgeBand.choices))
    sex = forms.ChoiceField(label=_("Sex"), choices=[("", "—")] + list(Sex.choices))

    def clean_regency_code(self):
        code = self.cleaned_data.get("regency_code", "").strip()
        if code and not REGENCY_CODE.match(code):
            raise ValidationError(
                _("Write the regency code as two digits, a dot and two digits, e.g. 73.71.")
            )
        return code

    def clean(self):
        # Checked here, not in FactsForm: the live classification works on partial facts.
        data = super().clean()
        if data.get("symptoms") and not data.get("onset_date") and "onset_date" not in self.errors:
            self.add_error("onset_date", _("Give the date the symptoms began."))
        if not data.get("symptoms") and data.get("sari"):
            self.add_error(
                "sari", _("Severe acute respiratory illness needs its symptoms ticked (fever, cough).")
            )
        code, province = data.get("regency_code"), data.get("province")
        if code and province:
            expected = PROVINCE_PREFIX.get(province)
            ok = code[:2].startswith("9") if province in PAPUA else code[:2] == expected
            if not ok:
                self.add_error("regency_code", _("This regency code does not belong to the chosen province."))
        return data


class FlagForm(PlaceForm):
    """The full flag: facts, place, references, legal basis, the optional identity and a note."""

    consultation_ref = forms.CharField(
        label=_("Consultation reference"),
        required=False,
        max_length=64,
        help_text=_(
            "Your own reference of the consultation; it stays in the portal and finds repeated flags."
        ),
    )
    legal_basis = forms.ChoiceField(
        label=_("Legal basis (UU PDP Pasal 20)"), choices=[("", "—")] + list(LegalBasis.choices)
    )
    note = forms.CharField(
        label=_("Internal note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("For your organisation only; never forwarded to any authority."),
    )
    full_name = forms.CharField(label=_("Name"), required=False, max_length=150)
    phone = forms.CharField(label=_("Phone"), required=False, max_length=32)
    nik = forms.CharField(label=_("NIK"), required=False, max_length=24, help_text=_("16 digits."))
    address = forms.CharField(
        label=_("Address"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )
    subject_identifier = forms.CharField(
        label=_("The person's identifier in your system"),
        required=False,
        max_length=128,
        help_text=_(
            "User id or consultation id as recorded in your consent ledger; used to check "
            "consent to share identity with health authorities."
        ),
    )
    share_identity = forms.BooleanField(
        label=_("Share the identity under the legal basis above even without recorded consent"),
        required=False,
    )
    share_reason = forms.CharField(
        label=_("Why the identity must be shared"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    confirm_classification = forms.CharField(required=False, widget=forms.HiddenInput)

    FIELDSETS = [
        (
            _("Clinical and epidemiological facts"),
            ["definition", "symptoms", "onset_date", "epidemiological", "sari", "antigen_result"],
        ),
        (
            _("Where and who (codes only)"),
            [
                "province",
                "regency_code",
                "regency_name",
                "age_band",
                "sex",
                "consultation_ref",
                "legal_basis",
            ],
        ),
        (
            _("Identity (optional, encrypted, forwarded only with consent or an explicit legal basis)"),
            ["full_name", "phone", "nik", "address", "subject_identifier", "share_identity", "share_reason"],
        ),
        (_("Note"), ["note"]),
    ]

    def fieldsets(self):
        return [(legend, [self[name] for name in names]) for legend, names in self.FIELDSETS]

    def clean_nik(self):
        value = self.cleaned_data.get("nik", "").strip()
        return clean_nik(value) if value else ""

    def clean_phone(self):
        value = self.cleaned_data.get("phone", "").strip()
        if value and not re.fullmatch(r"\+?[\d\s().-]{6,32}", value):
            raise ValidationError(_("Write the phone number with digits, e.g. +62 812 3456 7890."))
        return value

    def clean(self):
        data = super().clean()
        has_identity = any(data.get(k) for k in ("full_name", "phone", "nik", "address"))
        if data.get("share_identity"):
            if not has_identity:
                self.add_error("share_identity", _("There is no identity to share."))
            if not (data.get("share_reason") or "").strip():
                self.add_error(
                    "share_reason", _("Say why the identity must be shared under this legal basis.")
                )
        return data


class CorrectForm(PlaceForm):
    """What a correction may change: the facts and the coded place and person."""


class WithdrawForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=WithdrawReason.choices)


class FilterForm(forms.Form):
    classification = forms.ChoiceField(
        label=_("Classification"), required=False, choices=[("", _("All"))] + list(Classification.choices)
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All"))] + list(FlagStatus.choices)
    )
    province = forms.ChoiceField(
        label=_("Province"), required=False, choices=[("", _("All"))] + list(Province.choices)
    )
    since = CalendarDateField(label=_("Flagged from"), required=False, widget=DateInput)
    until = CalendarDateField(label=_("Flagged until"), required=False, widget=DateInput)
