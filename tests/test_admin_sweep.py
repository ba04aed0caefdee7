"""The admin sweep: every registered ModelAdmin, as a BSSN analyst and as a supervisor.

For each admin of the site's registry (so a new ModelAdmin is swept without being
listed here) it opens what a person can open: the changelist, every filter link the
changelist renders (and date-hierarchy links), a search, the add page, the change page
of a real object, the unchanged change form posted back (it must redirect and keep the
data), each action on a selection, each custom URL of `get_urls`, and nonsense ids and
filter values. Nothing may answer 5xx; a nonsense object id is a 404.

`world` creates one object of every registered model through the services and factories
the rest of the suite uses; a new model needs a line there (the sweep fails until it has one).
"""

import datetime
import uuid
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import models
from django.urls import NoReverseMatch, URLPattern, reverse

from portal.accounts.models import Role
from tests.admin_html import as_post_data, parse
from tests.conftest import make_member, make_operator
from tests.incidents.conftest import staff_client

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

MODEL_ADMINS = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
STANDARD_VIEWS = {"changelist", "add", "history", "delete", "change"}
NONSENSE_IDS = ["abc", "%00", str(uuid.UUID(int=7)), "99999999999999999999"]


# --- One object of every model ----------------------------------------------------------


@pytest.fixture
def world(db, analyst, supervisor, settings, tmp_path):
    """Create one real object of every model the admin shows, through services where they exist."""
    from django_otp.plugins.otp_static.models import StaticDevice

    from incidents import services as incident_services
    from incidents.cases.models import CaseIdentity, Disclosure
    from incidents.cases.seed import seed_case_definitions
    from incidents.models import CommentKind
    from incidents.seed import seed_deadline_rules
    from portal.accounts.services import invite_member
    from portal.alerts.models import Delivery, DeliveryStatus, Notice, NoticeStatus
    from portal.alerts.seed import seed_authorities
    from portal.crypto import Kind, blind_index
    from tests.factories import cases_make_flag, consent_event, consent_import
    from tests.incidents.helpers import file_incident, pdf_upload

    settings.PRIVATE_STORAGE_ROOT = tmp_path / "private"
    settings.BSSN_NOTIFY_EMAILS = ["csirt@bssn.example"]
    seed_deadline_rules()
    seed_authorities()
    seed_case_definitions()
    operator = make_operator("acme")
    admin_user = make_member(operator, Role.ADMIN)
    reporter = make_member(operator, Role.REPORTER)
    incident = file_incident(
        operator,
        reporter,
        personal_data_involved=True,
        personal_data_categories=["identity", "contact"],
        data_subjects_count=40,
    )
    incident_services.add_evidence(incident=incident, actor=reporter, upload=pdf_upload("logs.pdf"))
    incident_services.add_bssn_comment(incident=incident, actor=analyst, kind=CommentKind.NOTE, body="Note")
    incident_services.add_operator_comment(incident=incident, actor=reporter, body="Any news?")
    incident_services.attach_observables(
        incident=incident, actor=reporter, entries=[("domain", "phish.example")], tlp="amber"
    )
    Delivery.objects.filter(pk=Delivery.objects.order_by("pk").values("pk")[:1]).update(
        status=DeliveryStatus.DEAD, last_error="timeout"
    )
    Notice.objects.filter(pk=Notice.objects.order_by("pk").values("pk")[:1]).update(status=NoticeStatus.DEAD)
    flag = cases_make_flag(operator, admin_user)
    CaseIdentity.objects.create(
        flag=flag,
        nik="3171011001900001",
        full_name="Budi Contoh",
        phone="081200000000",
        nik_index=blind_index(Kind.NIK, "3171011001900001"),
    )
    Disclosure.objects.create(flag=flag, event_type="suspected_case.flagged", fields=["province"])
    consent_event(operator, admin_user)
    consent_import(operator, admin_user)
    invite_member(operator=operator, actor=admin_user, email="new@acme.example", role=Role.VIEWER)
    StaticDevice.objects.create(user=supervisor, name="backup")
    return {"incident": incident, "operator": operator}


# --- The sweep --------------------------------------------------------------------------


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _snapshot(obj: models.Model) -> dict:
    """Return the stored values of `obj` as the form shows them (datetimes to the second)."""
    values = {}
    for field in obj._meta.concrete_fields:
        if getattr(field, "auto_now", False):
            continue
        value = getattr(obj, field.attname)
        if isinstance(value, datetime.datetime):
            value = value.replace(microsecond=0)
        values[field.attname] = value
    return values


class Sweep:
    def __init__(self, client, model, model_admin, request_user):
        self.client = client
        self.model = model
        self.model_admin = model_admin
        self.user = request_user
        self.failures: list[str] = []
        self.visited = 0

    def check(self, response, what: str, expect: tuple[int, ...] | None = None) -> None:
        self.visited += 1
        if response.status_code >= 500 or (expect and response.status_code not in expect):
            self.failures.append(f"{what}: HTTP {response.status_code}")

    def get(self, url: str, what: str, expect=None):
        response = self.client.get(url)
        self.check(response, f"GET {what} {url}", expect)
        return response


def _fake_request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _sweep_changelist(sweep: Sweep) -> None:
    model, model_admin = sweep.model, sweep.model_admin
    changelist = _url(model, "changelist")
    response = sweep.get(changelist, "changelist", expect=(200,))
    if response.status_code != 200:
        return
    parser = parse(response)
    links = sorted(set(parser.filter_links))
    assert links or not (model_admin.list_filter or model_admin.date_hierarchy), "no filter links found"
    for link in links:
        sweep.get(urljoin(changelist, link), "filter")
    # Tampered filter values: a NUL byte in every parameter a filter link uses, far-off years.
    params = {key for link in links for key, _ in parse_qsl(urlsplit(link).query)}
    for key in sorted(params):
        sweep.get(f"{changelist}?{urlencode({key: 'x\x00y'})}", "filter with NUL")
    if model_admin.date_hierarchy:
        for year in ("2147483648", "0", "-1", "99999", "\u00b2"):
            sweep.get(f"{changelist}?{model_admin.date_hierarchy}__year={year}", "date hierarchy")
        sweep.get(
            f"{changelist}?{model_admin.date_hierarchy}__year=2026&{model_admin.date_hierarchy}__month=13",
            "month",
        )
    if model_admin.get_search_fields(_fake_request(sweep.user)):
        sweep.get(f"{changelist}?q=acme", "search", expect=(200,))
        sweep.get(f"{changelist}?q=a%00b", "search with NUL")
    sweep.get(f"{changelist}?p=abc", "page")
    sweep.get(f"{changelist}?o=99", "ordering")


def _sweep_object(sweep: Sweep, obj: models.Model) -> None:
    model, model_admin = sweep.model, sweep.model_admin
    request = _fake_request(sweep.user)
    if model_admin.has_add_permission(request):
        add = _url(model, "add")
        sweep.get(add, "add", expect=(200,))
        # The add page takes initial values from the query string, related ids included.
        for field in model._meta.concrete_fields:
            if field.is_relation:
                sweep.get(f"{add}?{field.name}=abc", f"add with a non-numeric {field.name}")
    change = _url(model, "change", obj.pk)
    response = sweep.get(change, "change", expect=(200,))
    sweep.get(_url(model, "history", obj.pk), "history", expect=(200,))
    if response.status_code == 200 and model_admin.has_change_permission(request, obj):
        form = parse(response).forms.get(f"{model._meta.model_name}_form")
        assert form is not None, f"{model._meta.label}: no change form rendered"
        before = _snapshot(obj)
        data = as_post_data(form) | {"_save": ["Save"]}
        posted = sweep.client.post(change, data)
        sweep.check(posted, f"POST unchanged {change}", expect=(302,))
        if posted.status_code == 200 and posted.context and "adminform" in posted.context:
            sweep.failures.append(f"form errors: {posted.context['adminform'].form.errors.as_data()}")
        obj.refresh_from_db()
        after = _snapshot(obj)
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        if changed:
            sweep.failures.append(f"unchanged form changed {changed}")
    for nonsense in NONSENSE_IDS:
        url = change.replace(f"/{obj.pk}/", f"/{nonsense}/")
        # A NUL byte is refused before any lookup (400); every other nonsense id names nothing (404).
        expected = (400,) if nonsense == "%00" else (404,)
        sweep.check(sweep.client.get(url), f"GET nonsense id {url}", expect=expected)
        sweep.check(sweep.client.post(url, {}), f"POST nonsense id {url}", expect=(*expected, 403))
    _sweep_actions(sweep, obj, request)
    _sweep_custom_urls(sweep, obj)


def _sweep_actions(sweep: Sweep, obj: models.Model, request) -> None:
    changelist = _url(sweep.model, "changelist")
    for name in sweep.model_admin.get_actions(request):
        response = sweep.client.post(changelist, {"action": name, ACTION_CHECKBOX_NAME: [str(obj.pk)]})
        sweep.check(response, f"action {name}")
        response = sweep.client.post(changelist, {"action": name, ACTION_CHECKBOX_NAME: ["abc", "\x00"]})
        sweep.check(response, f"action {name} on a bad selection")


def _custom_patterns(model_admin) -> list[URLPattern]:
    return [
        p
        for p in model_admin.get_urls()
        if isinstance(p, URLPattern)
        and p.name
        and p.name.rsplit("_", 1)[-1] not in STANDARD_VIEWS
        and p.name.startswith(f"{model_admin.opts.app_label}_{model_admin.opts.model_name}_")
    ]


def _related_id(obj, keyword: str):
    """Return the id of `obj`'s first related object a keyword like `obligation_id` names."""
    related = {"obligation_id": "obligations", "evidence_id": "evidence"}.get(keyword)
    if related and hasattr(obj, related):
        first = getattr(obj, related).order_by("pk").first()
        return first.pk if first else 1
    return obj.pk


def _sweep_custom_urls(sweep: Sweep, obj: models.Model) -> None:
    for pattern in _custom_patterns(sweep.model_admin):
        keywords = list(pattern.pattern.converters)
        kwargs = {k: (obj.pk if k in ("pk", "object_id") else _related_id(obj, k)) for k in keywords}
        try:
            url = reverse(f"admin:{pattern.name}", kwargs=kwargs)
        except NoReverseMatch:
            sweep.failures.append(f"custom URL {pattern.name} cannot be reversed with {kwargs}")
            continue
        sweep.get(url, f"custom URL {pattern.name}")
        sweep.check(sweep.client.post(url, {}), f"POST custom URL {pattern.name} {url}")
        for key in keywords:
            bad = reverse(f"admin:{pattern.name}", kwargs={**kwargs, key: 0}).replace("/0/", "/abc/")
            # The admin's catch-all sends /<id>/anything/ on to /<id>/change/, which must 404.
            response = sweep.client.get(bad, follow=True)
            sweep.check(response, f"custom URL {pattern.name} nonsense id {bad}", expect=(404,))


@pytest.mark.parametrize("persona", ["analyst", "supervisor"])
@pytest.mark.parametrize(
    ("model", "model_admin"), MODEL_ADMINS, ids=lambda v: getattr(v, "_meta", None) and v._meta.label
)
def test_every_admin_page_answers_without_a_server_error(request, world, persona, model, model_admin):
    user = request.getfixturevalue(persona)
    client = staff_client(user)
    client.raise_request_exception = False  # a server error is a finding, listed with the others
    sweep = Sweep(client, model, model_admin, user)
    if model_admin.has_view_permission(_fake_request(user)):
        _sweep_changelist(sweep)
        obj = model_admin.get_queryset(_fake_request(user)).order_by("pk").first()
        assert obj is not None, f"world() creates no {model._meta.label}: add one there"
        _sweep_object(sweep, obj)
    else:
        sweep.get(_url(model, "changelist"), "changelist without permission", expect=(403,))
        sweep.get(_url(model, "change", 1), "change without permission", expect=(403, 404))
    assert not sweep.failures, "\n".join(sweep.failures)
    assert sweep.visited >= 2


def test_the_sweep_covers_every_registered_admin():
    """A ModelAdmin registered anywhere in the project is in the sweep's parameters."""
    assert {m._meta.label for m, _ in MODEL_ADMINS} >= {
        "incidents.Incident",
        "alerts.RoutingRule",
        "auth.Group",
    }
    assert len(MODEL_ADMINS) == len(admin.site._registry)


def test_the_routing_rule_autocomplete_refuses_a_non_numeric_id(world, analyst):
    client = staff_client(analyst)
    url = reverse("admin:autocomplete")
    query = {"app_label": "alerts", "model_name": "routingrule", "field_name": "authority"}
    assert client.get(url, query | {"term": "a"}).status_code == 200
    for bad in ("abc", "\x00", "1.5"):
        response = client.get(url, query | {"term": bad, "page": bad})
        assert response.status_code < 500, bad
