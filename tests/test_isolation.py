"""The isolation sweep: every URL pattern of the project is classified and checked.

Operator URLs (/o/<operator_slug>/...) must use the tenancy helper, send anonymous
users to sign in, answer 404 to members of another organisation — with the victim's
slug and with their own slug around the victim's object — and refuse roles the view
does not allow. A new URL pattern that is neither public nor coverable here fails
`test_every_url_pattern_is_classified`, so no view escapes the sweep.

Apps register how to create an object of theirs for a URL keyword in OBJECT_FACTORIES.
"""

import re
from collections.abc import Callable, Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from portal.accounts.models import Role, Sector
from tests.conftest import make_member, make_operator
from tests.factories import OBJECT_FACTORIES

# Routes anyone may open, signed in or not (by "namespace:name").
PUBLIC = {
    "healthz",
    "favicon",
    "set_language",
    "accounts:home",
    "accounts:login",
    "accounts:logout",
    "accounts:password_reset",
    "accounts:password_reset_done",
    "accounts:password_reset_confirm",
    "accounts:password_reset_complete",
    "accounts:accept_invitation",
    "public_policy:current",
    "public_policy:version",
    "checkpoint_keys",
    "receipt_verify",
}
# Routes about the signed-in user's own account: sign-in required, no tenant objects.
OWN_ACCOUNT = {
    "accounts:two_factor_verify",
    "accounts:two_factor_setup",
}
# Namespaces checked by their own tests (the Django admin requires BSSN staff; the machine API
# authenticates by key, swept in tests/api/test_isolation.py).
OTHER_NAMESPACES = {"admin", "api"}


def _walk(resolvers, prefix_ns: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            ns = entry.namespace
            yield from _walk(entry.url_patterns, f"{prefix_ns}{ns}:" if ns else prefix_ns)
        else:
            yield f"{prefix_ns}{entry.name}", entry


def _all_routes() -> list[tuple[str, URLPattern]]:
    return list(_walk(get_resolver().url_patterns))


def _route_keywords(name: str) -> list[str]:
    """Return the keyword names of a route (from the resolver's reverse dictionary)."""
    resolver = get_resolver()
    ns, _, short = name.rpartition(":")
    keywords: set[str] = set()
    for part in filter(None, ns.split(":")):
        prefix, resolver = resolver.namespace_dict[part]
        keywords.update(re.findall(r"\?P<(\w+)>", prefix))  # e.g. o/<operator_slug>/incidents/
    possibilities = resolver.reverse_dict.getlist(short)
    if possibilities:
        keywords.update(possibilities[0][0][0][1])
    return sorted(keywords)


def _operator_routes() -> list[tuple[str, Callable]]:
    routes = []
    for name, pattern in _all_routes():
        if name in PUBLIC or name in OWN_ACCOUNT or name.split(":")[0] in OTHER_NAMESPACES:
            continue
        if "operator_slug" in _route_keywords(name):
            routes.append((name, pattern.callback))
    return routes


def test_every_url_pattern_is_classified():
    unclassified = []
    for name, pattern in _all_routes():
        if name.split(":")[0] in OTHER_NAMESPACES:
            continue
        if pattern.name is None:
            unclassified.append(f"unnamed pattern {pattern.pattern}")
            continue
        if name in PUBLIC or name in OWN_ACCOUNT:
            continue
        keywords = _route_keywords(name)
        if "operator_slug" not in keywords:
            unclassified.append(f"{name}: neither public nor operator-scoped")
            continue
        if not hasattr(pattern.callback, "operator_roles"):
            unclassified.append(f"{name}: does not use portal.accounts.tenancy.operator_view")
        object_keywords = tuple(k for k in keywords if k != "operator_slug")
        missing = [k for k in object_keywords if k not in OBJECT_FACTORIES]
        if object_keywords and object_keywords not in OBJECT_FACTORIES and missing:
            unclassified.append(
                f"{name}: no factory in tests/factories.py for {missing} "
                f"(or for the combination {object_keywords!r})"
            )
    assert not unclassified, "\n".join(unclassified)


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(OWN_ACCOUNT))
def test_own_account_route_needs_sign_in(name, client):
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/login/" in response["Location"]


def _victim_for(view) -> tuple:
    sectors = getattr(view, "operator_sectors", None)
    sector = sorted(sectors)[0] if sectors else Sector.ECOMMERCE
    victim = make_operator("victim", sector=sector)
    attacker_org = make_operator("attacker", sector=sector)
    return victim, attacker_org


def _make_objects(name: str, operator, admin_user) -> dict:
    """Create the victim's objects a route refers to, with the factories of tests/factories.py.

    A factory keyed by the route's whole keyword tuple (sorted) makes related objects at
    once, e.g. ("number", "reference") for a report of an incident; otherwise each keyword
    has its own factory.
    """
    keywords = tuple(k for k in _route_keywords(name) if k != "operator_slug")
    if not keywords:
        return {}
    if keywords in OBJECT_FACTORIES:
        return dict(OBJECT_FACTORIES[keywords](operator, admin_user))
    return {key: OBJECT_FACTORIES[key](operator, admin_user) for key in keywords}


def _url(name: str, operator, objects: dict) -> str:
    kwargs = {"operator_slug": operator.slug, **objects}
    return reverse(name, kwargs={k: v for k, v in kwargs.items() if k in _route_keywords(name)})


@pytest.mark.django_db
@pytest.mark.parametrize("name", [n for n, _ in _operator_routes()])
def test_operator_route_is_isolated(name, client, client_for):
    view = dict(_operator_routes())[name]
    victim, attacker_org = _victim_for(view)
    victim_admin = make_member(victim, Role.ADMIN, "owner@victim.example")
    objects = _make_objects(name, victim, victim_admin)
    url = _url(name, victim, objects)

    # Anonymous: sent to sign in, for reads and writes alike.
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 302 and "/login/" in response["Location"], (name, response.status_code)

    # A member of another organisation: 404 with the victim's slug...
    attacker = make_member(attacker_org, Role.ADMIN, "admin@attacker.example")
    c = client_for(attacker)
    assert c.get(url).status_code == 404, name
    assert c.post(url).status_code == 404, name
    # ...and 404 with their own slug around the victim's object.
    if objects:
        own_url = _url(name, attacker_org, objects)
        # (405 for a GET on a POST-only action reveals nothing about the object.)
        assert c.get(own_url).status_code in (404, 405), name
        assert c.post(own_url).status_code == 404, name

    # Roles the view does not allow are refused; allowed roles are not.
    for role in Role:
        member = make_member(victim, role, f"{role}-probe@victim.example")
        member_client = client_for(member)
        status = member_client.get(url).status_code
        if status == 405:  # a POST-only action
            status = member_client.post(url).status_code
        if role in view.operator_roles:
            assert status not in (403, 404), (name, role, status)
        else:
            assert status == 403, (name, role, status)

    # Sector-limited features are a 404 for operators of other sectors.
    sectors = getattr(view, "operator_sectors", None)
    if sectors:
        outside = next(s for s in Sector if s not in sectors)
        other_sector_org = make_operator("elsewhere", sector=outside)
        other_admin = make_member(other_sector_org, Role.ADMIN, "admin@elsewhere.example")
        assert client_for(other_admin).get(_url(name, other_sector_org, objects)).status_code == 404, name
