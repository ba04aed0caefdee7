from django import template

from incidents.services import SUBMIT_REQUIRED

register = template.Library()


@register.filter
def fields_named(form, names: str) -> list:
    """Return the bound fields of `form` named in the space-separated `names`, in that order."""
    return [form[name] for name in names.split() if name in form.fields]


@register.filter
def needed_to_submit(field) -> bool:
    return field.name in SUBMIT_REQUIRED


@register.filter
def shown_value(field) -> str:
    """Return a bound field's initial value as a person reads it (choice labels, local times)."""
    from datetime import datetime

    from django.utils.translation import gettext

    from portal.timefmt import format_zoned

    value = field.initial
    if value is None or value == "" or value == []:
        return "—"
    choices = dict(getattr(field.field, "choices", []) or [])
    if isinstance(value, list):
        return ", ".join(str(choices.get(v, v)) for v in value)
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, datetime):
        return format_zoned(value)
    return str(choices.get(value, value))
