"""Hypothesis fuzzing of every operator form and every admin action.

Forms are discovered, not listed: every operator page (from the isolation sweep's route
list) is opened as an organisation admin, and each POST form on it is fed generated
input — random and hostile text (overlong strings, control characters, HTML, SQL and
template fragments, invalid dates, wrong types), random choices, missing fields, random
files. Two layers:

- over HTTP (FUZZ_HTTP_EXAMPLES, default 1,000 across the forms, plus admin actions):
  nothing answers 500, and a request that was refused (no redirect) saved nothing;
- on the very form objects those pages render (FUZZ_FORM_EXAMPLES, default 10,000 across
  the forms): validation never raises, and what a valid ModelForm would save passes the
  model's own validation. A page request costs this machine ~0.1 s, so the 10,000-input
  budget runs at this layer and the HTTP layer proves the end-to-end properties.
"""

import copy
import math
import os
from functools import partial
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from portal.accounts.models import Membership, Role, Sector, User
from tests.conftest import make_operator
from tests.test_isolation import _make_objects, _operator_routes, _url

HTTP_EXAMPLES = int(os.environ.get("FUZZ_HTTP_EXAMPLES", "1000"))
FORM_EXAMPLES = int(os.environ.get("FUZZ_FORM_EXAMPLES", "10000"))
ADMIN_EXAMPLES = int(os.environ.get("FUZZ_ADMIN_EXAMPLES", "500"))
# Models whose rows legitimately appear on a refused request (logs of the attempt).
LOG_MODELS = {
    "audit.auditevent",
    "audit.auditstream",
    "axes.accessattempt",
    "axes.accesslog",
    "axes.accessfailurelog",
    "sessions.session",
    "admin.logentry",
}

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' OR '1'='1' --",
    "Robert'); DROP TABLE accounts_user;--",
    "{{ 7*7 }}",
    "{% debug %}",
    "%(name)s %s %d",
    "\x00",
    "a\x00b",
    "\x1b[31m",
    "\u202eevil",
    "\ufeff",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧪",
    "../../etc/passwd",
    "9999-99-99",
    "2026-02-30",
    "2026-13-01T25:61",
    "0000-00-00 00:00",
    "-1",
    "0",
    "1e309",
    "NaN",
    "99999999999999999999999",
    "true",
    "null",
    "[]",
    "{}",
    "   ",
    "\n\r\t",
    "a" * 10_000,
]
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=20),
    # Overlong strings, built cheaply (generating 5,000 random characters is slow).
    st.tuples(st.text(min_size=1, max_size=8), st.integers(300, 6000)).map(lambda t: (t[0] * t[1])[: t[1]]),
    st.integers().map(str),
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
)


class _FormParser(HTMLParser):
    """Collect POST forms: action and their fields (name -> (kind, options))."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form = None
        self._select = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._form = {
                "action": a.get("action") or "",
                "fields": {},
                "multipart": "multipart" in (a.get("enctype") or ""),
            }
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset"):
                return
            field = self._form["fields"].setdefault(a["name"], (kind, []))
            if kind in ("checkbox", "radio") and a.get("value") is not None:
                field[1].append(a["value"])
        elif tag == "textarea" and a.get("name"):
            self._form["fields"][a["name"]] = ("textarea", [])
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self._form["fields"][a["name"]] = ("select-multiple" if "multiple" in a else "select", [])
        elif tag == "option" and self._select and a.get("value") is not None:
            self._form["fields"][self._select][1].append(a["value"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def _value(kind: str, options: list[str]):
    if kind == "file":
        return st.builds(
            lambda data, name: SimpleUploadedFile(name, data),
            st.binary(max_size=4096),
            st.sampled_from(
                ["a.pdf", "x.exe.pdf", "evil.html", "../../x.png", "data.csv", "\x00.txt", "n" * 300]
            ),
        )
    if kind in ("checkbox", "select-multiple"):
        return st.lists(st.one_of(st.sampled_from(options or ["on"]), hostile_text), max_size=4)
    if kind in ("select", "radio") and options:
        return st.one_of(st.sampled_from(options), hostile_text)
    return hostile_text


def _payload(fields: dict):
    """Return a strategy for a POST body: each field present (random value) or missing."""
    if not fields:
        return st.just({})
    parts = {name: st.one_of(st.none(), _value(kind, options)) for name, (kind, options) in fields.items()}
    return st.fixed_dictionaries(parts).map(lambda d: {k: v for k, v in d.items() if v is not None})


def _counts() -> dict[str, int]:
    """Return the row count of every table that must not change on a refused request (one query)."""
    models = [
        m
        for m in apps.get_models()
        if m._meta.managed and not m._meta.proxy and m._meta.label_lower not in LOG_MODELS
    ]
    qn = connection.ops.quote_name
    # Table names come from model metadata, not from input.
    sql = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {qn(m._meta.db_table)})" for m in models)  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(zip((m._meta.label_lower for m in models), cursor.fetchone(), strict=True))


def _check(response, before: dict[str, int], label: str) -> None:
    assert response.status_code < 500, f"{label}: {response.status_code}"
    after = _counts()
    changed = {k: (before[k], after[k]) for k in before if after.get(k) != before[k]}
    if response.status_code not in (301, 302, 303):
        assert not changed, f"{label}: refused request ({response.status_code}) still saved {changed}"


def _fuzz(strategy, check, examples: int) -> int:
    """Run `check` on `examples` values drawn from `strategy`; return how many ran."""
    count = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        # Generate only: replaying and shrinking re-run requests against a database that
        # earlier examples changed, which Hypothesis reports as a flaky strategy.
        phases=[Phase.generate],
        report_multiple_bugs=False,
    )
    @given(value=strategy)
    def run(value):
        nonlocal count
        count += 1
        check(value)

    run()
    return count


def _post_and_check(client, name: str, action: str, body: dict) -> None:
    before = _counts()
    _check(client.post(action, body), before, f"{name} {action} {sorted(body)}")


def _post_action_and_check(client, label: str, url: str, action_name: str, value: dict) -> None:
    before = _counts()
    body = {"action": action_name, "_selected_action": value["selected"], "index": "0", **value["params"]}
    _check(client.post(url, body), before, f"admin {label} {action_name}")


def _validate_form(form, body: dict) -> None:
    bound = _rebind(form, body)
    if bound.is_valid() and hasattr(bound, "instance"):
        # What this ModelForm would save must satisfy the model's own rules.
        bound.instance.full_clean(validate_unique=False, validate_constraints=False)


def _discover_forms(user, *, with_form_objects: bool = False) -> list[tuple]:
    """Return (route name, action path, fields[, rendered Django forms]) per distinct POST form."""
    client = Client()
    client.force_login(user)
    found: dict[tuple, tuple] = {}
    for i, (name, view) in enumerate(sorted(_operator_routes())):
        # A fresh organisation per route, as the isolation sweep does, so the route's
        # factories never collide with objects another route created.
        sectors = getattr(view, "operator_sectors", None)
        operator = make_operator(f"fuzz-{i}", sector=sorted(sectors)[0] if sectors else Sector.ECOMMERCE)
        Membership.objects.create(user=user, operator=operator, role=Role.ADMIN)
        try:
            objects = _make_objects(name, operator, user)
        except KeyError:
            continue  # no factory yet: test_every_url_pattern_is_classified reports it
        url = _url(name, operator, objects)
        response = client.get(url)
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        parser = _FormParser()
        parser.feed(response.content.decode())
        rendered = _django_forms(response)
        for form in parser.forms:
            action = urlparse(urljoin(url, form["action"])).path
            if action.startswith(("/i18n/", "/logout/")):
                continue  # the language switcher and sign-out are on every page
            found.setdefault((action, tuple(sorted(form["fields"]))), (name, action, form, rendered))
    if with_form_objects:
        seen, result = set(), []
        for name, _action, _form, rendered in found.values():
            for form in rendered:
                if type(form) not in seen:
                    seen.add(type(form))
                    result.append((name, form))
        return result
    return [(name, action, form["fields"]) for name, action, form, _rendered in found.values()]


def _django_forms(response) -> list:
    """Return the Django form objects in the page's template context."""
    from django import forms as django_forms

    found = []
    for context in response.context or []:
        for value in context.flatten().values():
            if isinstance(value, django_forms.BaseForm) and value not in found:
                found.append(value)
    return found


@pytest.mark.slow
@pytest.mark.django_db
def test_no_operator_form_breaks_or_half_saves_on_hostile_input():
    user = User.objects.create_user("fuzzer@fuzz.example", None, full_name="Fuzzer")
    forms = _discover_forms(user)
    assert len(forms) >= 5, forms
    per_form = max(10, math.ceil(HTTP_EXAMPLES / len(forms)))
    client = Client()
    client.force_login(user)
    total = 0
    for name, action, fields in forms:
        total += _fuzz(_payload(fields), partial(_post_and_check, client, name, action), per_form)
    print(f"fuzzed {len(forms)} operator forms with {total} generated inputs")
    assert total >= HTTP_EXAMPLES * 0.5  # Hypothesis may stop early on small input spaces


def _admin_actions() -> list[tuple[str, str, list[str]]]:
    result = []
    for model, model_admin in admin.site._registry.items():
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for action_name in model_admin.get_actions(_FakeRequest()):
            result.append((model._meta.label_lower, url, action_name))
    return sorted(result)


class _FakeRequest:
    """Enough of a request for ModelAdmin.get_actions (a superuser sees every action)."""

    GET: dict = {}
    user = type(
        "U", (), {"has_perm": lambda *a, **k: True, "is_superuser": True, "is_active": True, "is_staff": True}
    )()


@pytest.mark.django_db
def test_no_admin_action_breaks_or_half_saves_on_hostile_input(supervisor, staff_client):
    supervisor.is_superuser = True  # every action of every model, whatever the group
    supervisor.save()
    client = staff_client(supervisor)
    actions = _admin_actions()
    assert actions
    per_action = max(5, math.ceil(ADMIN_EXAMPLES / len(actions)))
    extra = st.dictionaries(
        st.sampled_from(
            [
                "reason",
                "status",
                "assignee",
                "apply",
                "confirm",
                "post",
                "note",
                "outcome",
                "duplicate_of",
                "until",
                "severity",
                "comment",
            ]
        ),
        hostile_text,
        max_size=5,
    )
    selection = st.lists(
        st.one_of(st.integers(min_value=-5, max_value=50).map(str), hostile_text), max_size=5
    )

    strategy = st.fixed_dictionaries({"selected": selection, "params": extra})
    for label, url, action_name in actions:
        _fuzz(strategy, partial(_post_action_and_check, client, label, url, action_name), per_action)


def _form_fields(form) -> dict:
    """Describe a Django form's fields as the HTML parser would (kind, options)."""
    from django import forms as django_forms

    fields = {}
    for name, field in form.fields.items():
        key = form.add_prefix(name)
        if isinstance(field, django_forms.FileField):
            fields[key] = ("file", [])
        elif isinstance(field, django_forms.MultipleChoiceField | django_forms.ModelMultipleChoiceField):
            fields[key] = ("select-multiple", [str(v) for v, _l in getattr(field, "choices", [])][:50])
        elif isinstance(field, django_forms.ChoiceField | django_forms.ModelChoiceField):
            fields[key] = ("select", [str(v) for v, _l in getattr(field, "choices", [])][:50])
        elif isinstance(field, django_forms.BooleanField):
            fields[key] = ("checkbox", ["on"])
        else:
            fields[key] = ("text", [])
    return fields


def _rebind(form, data: dict):
    """Return a copy of a rendered form bound to `data` (same initial state and instance)."""
    from django.utils.datastructures import MultiValueDict

    clone = copy.copy(form)
    clone.fields = copy.deepcopy(form.fields)
    plain, files = MultiValueDict(), MultiValueDict()
    for key, value in data.items():
        target = files if isinstance(value, SimpleUploadedFile) else plain
        target.setlist(key, value if isinstance(value, list) else [value])
    clone.data, clone.files, clone.is_bound, clone._errors = plain, files, True, None
    clone.cleaned_data = {}
    if hasattr(form, "instance"):
        clone.instance = copy.copy(form.instance)
    return clone


@pytest.mark.slow
@pytest.mark.django_db
def test_no_operator_form_raises_on_hostile_input():
    user = User.objects.create_user("formfuzzer@fuzz.example", None, full_name="Fuzzer")
    forms = _discover_forms(user, with_form_objects=True)
    assert len(forms) >= 5, forms
    per_form = max(20, math.ceil(FORM_EXAMPLES / len(forms)))
    total = 0
    for _name, form in forms:
        total += _fuzz(_payload(_form_fields(form)), partial(_validate_form, form), per_form)
    print(f"fuzzed {len(forms)} form classes with {total} generated inputs")
    assert total >= FORM_EXAMPLES * 0.5
