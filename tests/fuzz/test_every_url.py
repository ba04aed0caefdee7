"""Hypothesis walks every URL pattern of the project with hostile input: never a 5xx.

The patterns are enumerated from the URL resolver, the admin's per-model URLs and its
catch-all included, so a new pattern is covered without editing this file. Each
generated request picks a pattern, fills its path parameters with a real object of the
right organisation or a hostile value of the converter's shape, picks a persona
(anonymous, an organisation admin, a BSSN analyst, a BSSN supervisor with a verified
second factor) and sends a GET with a hostile query or a POST of the page's own form
fields (found by reading the page) with hostile values: NUL characters, huge strings,
unicode, overflowing numbers and dates, wrong types, files, UTF-16 and JSON bodies.

Every request runs inside a savepoint that is rolled back afterwards, so one request's
writes (or an aborted PostgreSQL transaction) never change what the next one sees.
FUZZ_URL_REQUESTS sets how many requests are generated (default 10,000).
"""

import copy
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, urlparse

import pytest
from django.apps import apps
from django.contrib.auth.tokens import default_token_generator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import got_request_exception
from django.db import transaction
from django.dispatch import receiver
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from portal.accounts.models import Membership, Role, Sector, User
from tests.conftest import give_totp_device, make_operator
from tests.factories import OBJECT_FACTORIES
from tests.fuzz.test_forms_fuzz import HOSTILE
from tests.test_isolation import _make_objects

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

REQUESTS = int(os.environ.get("FUZZ_URL_REQUESTS", "10000"))
PERSONAS = ("anonymous", "operator", "analyst", "supervisor")

# <conv:name> of a route, or (?P<name>regex) of a regex pattern (the admin's app index).
PARAMETER = re.compile(
    r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>|\(\?P<(?P<rname>\w+)>(?P<regex>(?:[^()]|\([^()]*\))*)\)"
)
# Query keys every list or form may meet: pagination, sorting, search, admin filters.
COMMON_KEYS = [
    "q",
    "page",
    "o",
    "p",
    "e",
    "all",
    "next",
    "status",
    "since",
    "until",
    "created_at__year",
    "created_at__month",
    "created_at__day",
    "created_at__gte",
    "_changelist_filters",
    "_popup",
    "_to_field",
    "action",
    "_selected_action",
    "select_across",
    "index",
    "post",
    "_save",
    "term",
    "app_label",
    "model_name",
    "field_name",
]

overflow_numbers = st.sampled_from(
    ["0", "-1", "2147483648", "9223372036854775808", "9" * 40, "1e309", "NaN", "0x10", "１２"]
)
overflow_dates = st.sampled_from(
    ["9999-12-31", "0001-01-01", "10000-01-01", "2026-02-30", "9999-12-31T23:59:59", "-1-01-01", "2147483648"]
)
hostile = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=10),
    st.tuples(st.text(min_size=1, max_size=4), st.integers(256, 20_000)).map(lambda t: (t[0] * t[1])[: t[1]]),
    overflow_numbers,
    overflow_dates,
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


@dataclass
class Route:
    """One URL pattern: its full pattern text, its parameters and the values known to exist."""

    label: str
    template: str
    parameters: list[tuple[str, str, str]]  # (name, converter, regex)
    view: object = None
    real: dict[str, list[str]] = field(default_factory=dict)
    fields: set[str] = field(default_factory=set)
    field_values: dict[str, list[str]] = field(default_factory=dict)
    requested: int = 0


def _walk(entries, prefix: str = "", namespace: str = ""):
    for entry in entries:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            label = f"{namespace}{entry.name or '<unnamed>'} {prefix}{entry.pattern}"
            yield label, prefix + str(entry.pattern), entry.callback


def every_route() -> list[Route]:
    """Return every URL pattern of the project, as templates to fill."""
    routes = []
    for label, pattern, view in _walk(get_resolver().url_patterns):
        template = pattern.replace("^", "").replace("$", "")
        parameters = []
        for match in PARAMETER.finditer(template):
            if match["rname"]:
                parameters.append((match["rname"], "regex", match["regex"]))
            else:
                parameters.append((match["name"], match["conv"] or "str", ""))
        routes.append(Route(label=label, template=template, parameters=parameters, view=view))
    return routes


def _hostile_parameter(converter: str, regex: str):
    if converter == "int":
        return st.one_of(overflow_numbers.filter(str.isdigit), st.integers(0, 10**25).map(str))
    if converter == "slug":
        return st.one_of(
            st.text(alphabet="abcXYZ019-_", min_size=1, max_size=40),
            st.integers(300, 5000).map(lambda n: "a" * n),
        )
    if converter == "uuid":
        return st.uuids().map(str)
    if converter == "regex":
        return st.from_regex(f"\\A(?:{regex})\\Z") if regex != ".*" else hostile
    return hostile.filter(bool)  # str and path: anything, NUL and slashes included


def _fill(route: Route, draw) -> str:
    url = route.template
    for name, converter, regex in route.parameters:
        real = route.real.get(name)
        if real and draw(st.booleans()):
            value = draw(st.sampled_from(real))
        else:
            value = draw(_hostile_parameter(converter, regex))
        token = f"<{converter}:{name}>" if converter not in ("regex",) else f"(?P<{name}>{regex})"
        if token not in url:
            token = f"<{name}>"
        url = url.replace(token, quote(value, safe=""), 1)
    return "/" + url


class _PageReader(HTMLParser):
    """Collect the names (and offered values) of form fields and of query keys in links."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, set[str]] = {}

    def _add(self, name: str, value: str | None = None):
        values = self.fields.setdefault(name, set())
        if value:
            values.add(value)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("input", "select", "textarea") and a.get("name"):
            self._add(a["name"], a.get("value"))
        elif tag == "option" and a.get("value"):
            self._add("__option__", a["value"])
        elif tag == "a" and a.get("href") and "?" in a["href"]:
            for key, value in parse_qsl(urlparse(a["href"]).query):
                self._add(key, value)


def _read_page(route: Route, response) -> None:
    if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/html"):
        return
    reader = _PageReader()
    reader.feed(response.content.decode(errors="replace"))
    options = reader.fields.pop("__option__", set())
    for name, values in reader.fields.items():
        route.fields.add(name)
        route.field_values.setdefault(name, []).extend(sorted(values | options)[:20])


@dataclass
class World:
    """The objects the routes refer to and the signed-in clients of each persona."""

    clients: dict[str, Client]
    cookies: dict[str, object]


def _tenant_objects(routes: list[Route], op_user: User) -> None:
    """Create, per operator route, an organisation of the right sector and the route's objects."""
    from tests.test_isolation import _route_keywords

    by_name = {route.label.split(" ")[0]: route for route in routes}
    resolver_names = {name for name in by_name if ":" in name and "<unnamed>" not in name}
    for i, name in enumerate(sorted(resolver_names)):
        route = by_name[name]
        keywords = {p[0] for p in route.parameters}
        if "operator_slug" not in keywords:
            continue
        sectors = getattr(route.view, "operator_sectors", None)  # set by tenancy.operator_view
        sector = sorted(sectors)[0] if sectors else Sector.ECOMMERCE
        operator = make_operator(f"fz{i}", sector=sector)
        Membership.objects.create(user=op_user, operator=operator, role=Role.ADMIN)
        route.real["operator_slug"] = [operator.slug]
        if name.startswith("public_policy:"):
            from tests.factories import consent_version

            consent_version(operator, op_user)
            route.real["number"] = ["1"]
            continue
        try:
            objects = _make_objects(name, operator, op_user)
        except KeyError:
            continue  # test_every_url_pattern_is_classified names the missing factory
        assert set(objects) <= set(_route_keywords(name)) | {"operator_slug"}
        for key, value in objects.items():
            route.real[key] = [str(value)]


def _admin_objects(routes: list[Route], op_user: User, shared_objects: dict[str, list[str]]) -> None:
    """Give each admin URL the ids of real rows of its model, and known ids for other keywords."""
    for route in routes:
        match = re.match(r"admin/(\w+)/(\w+)/", route.template)
        if not match:
            continue
        try:
            model = apps.get_model(match[1], match[2])
        except LookupError:
            continue
        pks = [str(pk) for pk in model._default_manager.order_by("-pk").values_list("pk", flat=True)[:3]]
        for name, _converter, _regex in route.parameters:
            if name in ("object_id", "pk"):
                route.real[name] = pks
            elif name in shared_objects:
                route.real[name] = shared_objects[name]


def _discover(routes: list[Route], world: World) -> int:
    """Open every route once with real values, as the persona it serves, and learn its fields.

    Return the number of requests made. Every pattern is thereby requested at least once.
    """
    made = 0
    for route in routes:
        if route.template.startswith("admin/"):
            personas = ["supervisor"]
        elif "operator_slug" in route.real:
            personas = ["operator"]
        else:
            personas = ["anonymous", "operator"]
        for persona in personas:
            url = "/" + route.template
            for name, converter, regex in route.parameters:
                real = route.real.get(name)
                value = real[0] if real else ("1" if converter == "int" else "x")
                if converter == "regex" and not real:
                    value = (regex.split("|")[0] if "|" in regex else "x").strip("()")
                token = f"<{converter}:{name}>" if converter != "regex" else f"(?P<{name}>{regex})"
                if token not in url:
                    token = f"<{name}>"
                url = url.replace(token, quote(value, safe=""), 1)
            response = _send(world, persona, "get", url, {})
            made += 1
            route.requested += 1
            if not isinstance(response, Exception):
                _read_page(route, response)
    return made


def _send(world: World, persona: str, method: str, url: str, data, **extra):
    """Send one request as `persona` inside a rolled-back savepoint; return the response or error."""
    client = world.clients[persona]
    client.cookies = copy.deepcopy(world.cookies[persona])
    savepoint = transaction.savepoint_create()
    _crashes.clear()
    try:
        response = getattr(client, method)(url, data, **extra)
    except Exception as exc:  # noqa: BLE001 - a crash outside the handler is what this test looks for
        return exc
    finally:
        transaction.savepoint_rollback(savepoint)
    if response.status_code >= 500 and _crashes:
        response.crash = _crashes[-1]
    return response


_crashes: list[str] = []


@receiver(got_request_exception)
def _remember_crash(sender, request=None, **kwargs) -> None:
    exc = sys.exc_info()[1]
    if exc is not None:
        _crashes.append(f"{type(exc).__name__}: {str(exc)[:200]}")


def _make_world(op_user: User, analyst: User, supervisor: User) -> World:
    from django_otp import DEVICE_ID_SESSION_KEY

    clients = {persona: Client(raise_request_exception=False) for persona in PERSONAS}
    clients["operator"].force_login(op_user)
    for persona, user in (("analyst", analyst), ("supervisor", supervisor)):
        device = give_totp_device(user)
        clients[persona].force_login(user)
        session = clients[persona].session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return World(clients=clients, cookies={p: copy.deepcopy(c.cookies) for p, c in clients.items()})


def _request_strategy(route: Route):
    keys = sorted(route.fields) + COMMON_KEYS
    key = st.one_of(st.sampled_from(keys), hostile.filter(bool).map(lambda s: s[:50]))

    def value_for(name: str):
        offered = route.field_values.get(name)
        return st.one_of(st.sampled_from(offered), hostile) if offered else hostile

    pairs = st.lists(key.flatmap(lambda k: st.tuples(st.just(k), value_for(k))), max_size=8)
    kinds = st.sampled_from(["get", "get", "post", "post", "multipart", "utf16", "json"])
    return st.tuples(kinds, pairs)


def _build(kind: str, pairs: list[tuple[str, str]]):
    data: dict[str, list] = {}
    for k, v in pairs:
        data.setdefault(k, []).append(v)
    if kind == "get":
        return "get", data, {}
    if kind == "post":
        return "post", data, {}
    if kind == "multipart":
        files = {k: SimpleUploadedFile(f"{v[0][:40]}.pdf", force_bytes(v[0][:4096])) for k, v in data.items()}
        return "post", files or {"file": SimpleUploadedFile("x.pdf", b"%PDF-1.4")}, {}
    body = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    if kind == "utf16":
        return "post", body, {"content_type": "application/x-www-form-urlencoded; charset=utf-16"}
    return (
        "post",
        '{"a": [1, {"b": null}], "' + body[:200].replace('"', "") + '": 1e309}',
        {"content_type": "application/json"},
    )


@pytest.fixture
def _quiet_logs():
    """Keep the thousands of expected 400/403/404 lines out of the output (and its time)."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.slow
@pytest.mark.timeout(900)  # 10,000 requests: about 3 minutes on an idle 2-core machine
def test_no_url_answers_5xx_to_hostile_input(analyst, supervisor, _quiet_logs):
    started = time.monotonic()
    op_user = User.objects.create_user("fuzz-operator@fuzz.example", None, full_name="Fuzz")
    routes = every_route()
    assert len(routes) > 100  # the admin's per-model URLs are in
    _tenant_objects(routes, op_user)
    shared = {}
    for route in routes:
        for name, values in route.real.items():
            if name in OBJECT_FACTORIES or name in ("reference", "number"):
                shared.setdefault(name, []).extend(values)
    _admin_objects(routes, op_user, shared)
    reset = next(r for r in routes if "password_reset_confirm" in r.label)
    reset.real = {
        "uidb64": [urlsafe_base64_encode(force_bytes(op_user.pk))],
        "token": [default_token_generator.make_token(op_user), "set-password"],
    }
    world = _make_world(op_user, analyst, supervisor)
    failures: list[str] = []
    made = _discover(routes, world)
    discovered = time.monotonic()

    @settings(
        max_examples=max(REQUESTS - made, 1),
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],  # replaying needs the same database; every request is rolled back anyway
    )
    @given(data=st.data())
    def one_request(data):
        nonlocal made
        route = data.draw(st.sampled_from(routes))
        persona = data.draw(st.sampled_from(PERSONAS))
        url = _fill(route, data.draw)
        kind, pairs = data.draw(_request_strategy(route))
        method, payload, extra = _build(kind, pairs)
        response = _send(world, persona, method, url, payload, **extra)
        made += 1
        route.requested += 1
        if isinstance(response, Exception):
            failures.append(
                f"{route.label} {persona} {kind} {url[:120]!r}: {type(response).__name__}: {response}"
            )
        elif response.status_code >= 500:
            crash = getattr(response, "crash", "")
            failures.append(f"{route.label} {persona} {kind} {url[:120]!r}: {response.status_code} {crash}")

    one_request()
    elapsed = time.monotonic() - started
    print(
        f"\nfuzzed {len(routes)} URL patterns with {made} requests "
        f"({made / elapsed:.0f}/s, discovery {discovered - started:.1f} s, total {elapsed:.1f} s); "
        f"5xx: {len(failures)}"
    )
    assert all(route.requested for route in routes)
    assert made >= REQUESTS
    unique = sorted(
        {f.split(": ", 1)[0].rsplit(" ", 1)[0] + ": " + f.split(": ", 1)[1][:200] for f in failures}
    )
    assert not failures, f"{len(failures)} requests answered 5xx:\n" + "\n".join(unique[:40])
