"""Observables: operators paste indicators on their incident page, BSSN correlates them in the admin."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from incidents.models import Observable, Status
from incidents.observables import normalise
from portal.audit.models import AuditEvent
from tests.incidents.helpers import file_incident

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for(client_for):
    """Sign in as the fixture does, reading pages in English."""

    def _client(user):
        client = client_for(user)
        client.cookies["django_language"] = "en"
        return client

    return _client


@pytest.fixture
def analyst_client(analyst_client):
    analyst_client.cookies["django_language"] = "en"
    return analyst_client


def _add_url(incident):
    return reverse(
        "incidents:observable_add",
        kwargs={"operator_slug": incident.operator.slug, "reference": incident.reference},
    )


def _detail_url(incident):
    return reverse(
        "incidents:detail", kwargs={"operator_slug": incident.operator.slug, "reference": incident.reference}
    )


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("ipv4", " 192.0.2.7 ", "192.0.2.7"),
        ("ipv6", "2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("domain", "Bücher.Example.", "xn--bcher-kva.example"),
        (
            "url",
            "HTTPS://Bücher.example:443/a/./b/../%7euser?q=1#top",
            "https://xn--bcher-kva.example/a/~user?q=1",
        ),
        ("url", "http://198.51.100.4:8080", "http://198.51.100.4:8080/"),
        ("email", "Phish@Bank-Palsu.EXAMPLE", "Phish@bank-palsu.example"),
        ("md5", "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
        ("sha1", "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ],
)
def test_values_are_normalised_to_one_spelling(kind, raw, expected):
    assert normalise(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("ipv4", "999.1.1.1"),
        ("ipv4", "2001:db8::1"),
        ("domain", "no spaces.example"),
        ("domain", "localhost"),
        ("url", "not a url"),
        ("email", "nobody"),
        ("sha256", "abc"),
        ("md5", "z" * 32),
    ],
)
def test_invalid_values_are_refused(kind, raw):
    with pytest.raises(ValidationError):
        normalise(kind, raw)


def test_a_writer_pastes_indicators_and_they_are_stored_normalised_and_audited(
    client_for, reporter, operator
):
    incident = file_incident(operator, reporter)
    paste = "192.0.2.7\nBücher.example\n\nD41D8CD98F00B204E9800998ECF8427E\nhttp://Evil.example/login\n192.0.2.7\n"
    response = client_for(reporter).post(_add_url(incident), {"values": paste, "tlp": "green", "note": "C2"})
    assert response.status_code == 302
    stored = set(Observable.objects.filter(incident=incident).values_list("kind", "value", "tlp"))
    assert stored == {
        ("ipv4", "192.0.2.7", "green"),
        ("domain", "xn--bcher-kva.example", "green"),
        ("md5", "d41d8cd98f00b204e9800998ecf8427e", "green"),
        ("url", "http://evil.example/login", "green"),
    }
    event = AuditEvent.objects.get(action="observable.attach")
    assert event.changes["count"] == 4 and event.operator == operator
    page = client_for(reporter).get(_detail_url(incident)).content.decode()
    assert "xn--bcher-kva.example" in page


def test_a_paste_with_a_bad_line_saves_nothing_and_says_which_line(client_for, reporter, operator):
    incident = file_incident(operator, reporter)
    response = client_for(reporter).post(
        _add_url(incident), {"values": "192.0.2.7\nnot a domain\n999.0.0.1", "tlp": "amber"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Line 2:" in page and "Line 3:" in page
    assert "192.0.2.7" in page  # the paste is kept for correction
    assert not Observable.objects.exists()
    assert not AuditEvent.objects.filter(action="observable.attach").exists()


def test_a_forced_kind_checks_every_line_against_it(client_for, reporter, operator):
    incident = file_incident(operator, reporter)
    response = client_for(reporter).post(
        _add_url(incident), {"kind": "sha256", "values": "192.0.2.7", "tlp": "amber"}
    )
    assert response.status_code == 400
    assert "hexadecimal" in response.content.decode()
    assert not Observable.objects.exists()


def test_a_viewer_cannot_add_and_another_organisation_gets_a_404(
    client_for, viewer, outsider, reporter, operator
):
    incident = file_incident(operator, reporter)
    assert (
        client_for(viewer).post(_add_url(incident), {"values": "192.0.2.7", "tlp": "amber"}).status_code
        == 403
    )
    url = reverse(
        "incidents:observable_add", kwargs={"operator_slug": outsider.memberships.get().operator.slug,
                                            "reference": incident.reference},
    )  # fmt: skip
    assert client_for(outsider).post(url, {"values": "192.0.2.7", "tlp": "amber"}).status_code == 404
    assert not Observable.objects.exists()


def test_a_closed_incident_takes_no_more_indicators(client_for, reporter, operator):
    incident = file_incident(operator, reporter)
    incident.status = Status.CLOSED
    incident.save(update_fields=["status"])
    response = client_for(reporter).post(_add_url(incident), {"values": "192.0.2.7", "tlp": "amber"})
    assert response.status_code == 302
    assert not Observable.objects.exists()


def _attach(incident, user, values, tlp):
    from incidents import services

    return services.attach_observables(
        incident=incident, actor=user, entries=[(k, v) for k, v in values], tlp=tlp
    )


def test_the_operator_is_told_of_a_shareable_match_elsewhere_but_not_who(
    client_for, reporter, operator, other_operator, other_reporter
):
    mine = file_incident(operator, reporter)
    theirs = file_incident(other_operator, other_reporter, title="Phishing wave at the bank")
    _attach(mine, reporter, [("domain", "phish.example"), ("ipv4", "192.0.2.9")], "amber")
    _attach(theirs, other_reporter, [("domain", "phish.example")], "green")
    _attach(theirs, other_reporter, [("ipv4", "192.0.2.9")], "amber")  # not shareable
    page = client_for(reporter).get(_detail_url(mine)).content.decode()
    assert page.count("This indicator was also reported elsewhere.") == 1
    assert other_operator.name not in page
    assert theirs.reference not in page and "Phishing wave" not in page


def test_bssn_sees_every_incident_sharing_an_indicator(
    analyst_client, reporter, operator, other_operator, other_reporter
):
    mine = file_incident(operator, reporter)
    theirs = file_incident(other_operator, other_reporter)
    draft = file_incident(other_operator, other_reporter, submit=False)
    (observable,) = _attach(mine, reporter, [("domain", "phish.example")], "red")
    _attach(theirs, other_reporter, [("domain", "phish.example")], "red")
    _attach(draft, other_reporter, [("domain", "phish.example")], "red")
    page = analyst_client.get(
        reverse("admin:incidents_observable_change", args=[observable.pk])
    ).content.decode()
    assert theirs.reference in page and other_operator.name in page
    assert draft.reference not in page  # BSSN does not see drafts


def test_the_shared_filter_lists_indicators_at_two_or_more_operators(
    analyst_client, reporter, operator, other_operator, other_reporter
):
    mine = file_incident(operator, reporter)
    theirs = file_incident(other_operator, other_reporter)
    _attach(mine, reporter, [("domain", "phish.example"), ("domain", "only-here.example")], "amber")
    _attach(theirs, other_reporter, [("domain", "phish.example")], "amber")
    response = analyst_client.get(reverse("admin:incidents_observable_changelist") + "?shared=operators")
    page = response.content.decode()
    assert page.count("phish.example") >= 2 and "only-here.example" not in page
    # A search in the spelling a person types finds the normalised value.
    response = analyst_client.get(reverse("admin:incidents_observable_changelist") + "?q=PHISH.example.")
    assert "phish.example" in response.content.decode()


def test_an_analyst_adds_an_indicator_in_the_admin_normalised_and_audited(analyst_client, reporter, operator):
    incident = file_incident(operator, reporter)
    response = analyst_client.post(
        reverse("admin:incidents_observable_add"),
        {"incident": incident.pk, "kind": "", "value": "Bücher.example", "tlp": "amber", "note": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    observable = Observable.objects.get()
    assert (observable.value, observable.kind, observable.added_by_bssn) == (
        "xn--bcher-kva.example",
        "domain",
        True,
    )
    assert AuditEvent.objects.filter(action="observable.attach", changes__by_bssn=True).exists()
    bad = analyst_client.post(
        reverse("admin:incidents_observable_add"),
        {"incident": incident.pk, "kind": "ipv4", "value": "300.1.1.1", "tlp": "amber"},
    )
    assert bad.status_code == 200 and "is not an IPv4 address" in bad.content.decode()
    assert Observable.objects.count() == 1


def test_the_change_page_posted_back_unchanged_keeps_the_indicator(analyst_client, reporter, operator):
    incident = file_incident(operator, reporter)
    (observable,) = _attach(incident, reporter, [("domain", "phish.example")], "amber")
    url = reverse("admin:incidents_observable_change", args=[observable.pk])
    assert analyst_client.get(url).status_code == 200
    response = analyst_client.post(url, {"tlp": "amber", "note": ""})
    assert response.status_code == 302
    observable.refresh_from_db()
    assert (observable.kind, observable.value, observable.tlp) == ("domain", "phish.example", "amber")
    # Tightening the TLP is audited.
    analyst_client.post(url, {"tlp": "red", "note": ""})
    observable.refresh_from_db()
    assert observable.tlp == "red"
    assert AuditEvent.objects.filter(action="observable.change").count() == 1  # the unchanged post is not
    # The same indicator added again to the same incident is a form error, not a second row.
    again = analyst_client.post(
        reverse("admin:incidents_observable_add"),
        {"incident": incident.pk, "kind": "", "value": "PHISH.example", "tlp": "amber", "note": ""},
    )
    assert again.status_code == 200 and Observable.objects.count() == 1
