"""The admin and the operator's incident page read in Bahasa Indonesia: labels, never raw codes."""

import html
import re

import pytest
from django.urls import reverse

from incidents.models import DeadlineRule
from portal.alerts.models import NOTICE_TEMPLATE_LABELS, EventType
from tests.incidents.conftest import staff_client
from tests.test_admin_sweep import MODEL_ADMINS, world  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# An alert's body is the literal webhook payload sent to authorities: codes there are the contract.
# What a person types into a textarea (a case definition's JSON) is input, not a label.
VERBATIM = re.compile(
    r'(?s)<div class="form-row field-body">.*?</div>\s*</div>'
    r"|<textarea.*?</textarea>|<script.*?</script>|<head>.*?</head>"
)


def _text(response) -> str:
    page = VERBATIM.sub(" ", response.content.decode())
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _raw_codes(text: str) -> list[str]:
    found = []
    for needle in (
        "- Select an option -",
        "∅",
        "K / I / K",
        '["',
        *EventType.values,
        *NOTICE_TEMPLATE_LABELS,
        *DeadlineRule.objects.values_list("name", flat=True),  # seeded names are English msgids
    ):
        if needle in text:
            found.append(needle)
    if re.search(r"(?<![\w-])None(?![\w-])", text):
        found.append("None")
    return found


def test_every_admin_page_reads_in_indonesian_without_raw_codes(world, supervisor):  # noqa: F811
    client = staff_client(supervisor)
    client.cookies["django_language"] = "id"
    problems = []
    for model, model_admin in MODEL_ADMINS:
        meta = model._meta
        changelist = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        if changelist.status_code != 200:
            continue
        pages = {"changelist": changelist}
        obj = model_admin.get_queryset(changelist.wsgi_request).order_by("pk").first()
        if obj is not None:
            url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            pages["change"] = client.get(url)
        for page, response in pages.items():
            for code in _raw_codes(_text(response)):
                problems.append(f"{meta.label} {page}: {code!r}")
    assert not problems, "\n".join(problems)


def test_the_incident_page_names_the_status_change_and_impact_in_indonesian(world, supervisor):  # noqa: F811
    incident = world["incident"]
    client = staff_client(supervisor)
    text = _text(client.get(reverse("admin:incidents_incident_change", args=[incident.pk])))
    assert "(baru) → Draf" in text and "Draf → Terkirim" in text
    assert "Pilih salah satu" in text


def test_the_operators_incident_page_spells_out_the_impact(client_for, world):  # noqa: F811
    from portal.accounts.models import Membership, Role

    incident = world["incident"]
    member = Membership.objects.filter(operator=incident.operator, role=Role.REPORTER).first().user
    page = client_for(member).get(incident.get_absolute_url())
    text = _text(page)
    assert "Kerahasiaan / Integritas / Ketersediaan" in text
    assert not _raw_codes(text)


def test_times_in_admin_lists_carry_their_zone(world, supervisor):  # noqa: F811
    client = staff_client(supervisor)
    for name in ("audit_auditevent", "alerts_alert", "alerts_notice", "cases_caseflag"):
        text = _text(client.get(reverse(f"admin:{name}_changelist")))
        assert re.search(r"\d{1,2}[.:]\d{2} WIB", text), name
