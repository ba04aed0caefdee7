"""Privacy policy versions: drafts, publishing, immutability, diff and the public page."""

import hashlib
import threading

import pytest
from django.contrib.admin.sites import site
from django.db import connection
from django.urls import reverse

from consent.models import ImmutableError, PolicyStatus, PolicyVersion, Purpose
from portal.audit.models import AuditEvent
from tests.consent.helpers import draft_version, published_version

pytestmark = pytest.mark.django_db


def _url(name, operator, **kwargs):
    return reverse(f"consent:{name}", kwargs={"operator_slug": operator.slug, **kwargs})


def _purpose_data(code="newsletter"):
    return {
        "code": code,
        "description": "Newsletter",
        "legal_basis": "consent",
        "data_categories": "e-mail address",
        "specific_data": ["health"],
        "retention": "1 year",
        "recipients": "Mail provider",
        "withdrawal_method": "Unsubscribe link",
    }


def test_admin_creates_a_draft_adds_a_purpose_and_publishes_it(client_for, op_admin, operator):
    c = client_for(op_admin)
    response = c.post(
        _url("policy_create", operator),
        {
            "title": "Kebijakan Privasi",
            "effective_date": "2026-02-01",
            "text_id": "# Halo\n\nTeks.",
            "text_en": "",
            "change_summary": "Awal.",
        },
    )
    version = PolicyVersion.objects.get(operator=operator)
    assert response.status_code == 302 and version.status == PolicyStatus.DRAFT and version.number == 1
    c.post(_url("purpose_add", operator, version_id=version.pk), _purpose_data())
    assert version.purpose_codes() == {"newsletter"}
    c.post(_url("policy_publish", operator, version_id=version.pk))
    version.refresh_from_db()
    assert version.status == PolicyStatus.PUBLISHED
    assert AuditEvent.objects.filter(action="consent.policy.publish", operator_id=operator.pk).exists()
    page = c.get(version.get_absolute_url()).content.decode()
    assert version.sha256 in page and "newsletter" in page


def test_publishing_needs_text_and_a_purpose(client_for, op_admin, operator):
    version = draft_version(operator, codes=())
    response = client_for(op_admin).post(_url("policy_publish", operator, version_id=version.pk), follow=True)
    version.refresh_from_db()
    assert version.is_draft
    assert "purpose" in response.content.decode().lower() or "tujuan" in response.content.decode().lower()


def test_the_sha256_matches_the_published_canonical_text(operator):
    version = published_version(operator)
    assert len(version.sha256) == 64
    assert version.sha256 == hashlib.sha256(version.canonical_text().encode("utf-8")).hexdigest()
    # The canonical text holds the text in both languages and every purpose.
    for part in (version.text_id, version.text_en, "marketing-email", "share-identity-health"):
        assert part.replace("\n", "\\n") in version.canonical_text()


def test_publishing_a_new_version_retires_the_previous_one(operator):
    first = published_version(operator)
    second = published_version(operator)
    first.refresh_from_db()
    assert (first.status, second.status, second.number) == (PolicyStatus.RETIRED, PolicyStatus.PUBLISHED, 2)
    # The new draft started with the previous version's purposes.
    assert second.purpose_codes() == first.purpose_codes()


def test_a_published_version_cannot_be_changed_through_the_orm(operator):
    version = published_version(operator)
    version.text_id = "Changed."
    with pytest.raises(ImmutableError):
        version.save()
    with pytest.raises(ImmutableError):
        PolicyVersion.objects.filter(pk=version.pk).update(title="Changed")
    with pytest.raises(ImmutableError):
        PolicyVersion.objects.filter(pk=version.pk).update(status=PolicyStatus.DRAFT)
    with pytest.raises(ImmutableError):
        PolicyVersion.objects.filter(pk=version.pk).delete()
    with pytest.raises(ImmutableError):
        PolicyVersion.objects.get(pk=version.pk).delete()
    purpose = version.purposes.first()
    purpose.retention = "forever"
    with pytest.raises(ImmutableError):
        purpose.save()
    with pytest.raises(ImmutableError):
        Purpose.objects.filter(version=version).update(retention="forever")
    with pytest.raises(ImmutableError):
        purpose.delete()
    with pytest.raises(ImmutableError):
        Purpose.objects.create(
            version=version,
            code="new",
            description="x",
            legal_basis="consent",
            data_categories="x",
            retention="x",
        )
    fresh = PolicyVersion.objects.get(pk=version.pk)
    assert fresh.text_id != "Changed." and fresh.sha256 == fresh.compute_sha256()


def test_the_operator_ui_refuses_to_edit_a_published_version(client_for, op_admin, operator):
    version = published_version(operator)
    c = client_for(op_admin)
    response = c.post(
        _url("policy_edit", operator, version_id=version.pk),
        {
            "title": "Changed",
            "effective_date": "2026-02-01",
            "text_id": "Changed",
            "text_en": "",
            "change_summary": "",
        },
        follow=True,
    )
    assert (
        "cannot be changed" in response.content.decode() or "tidak dapat diubah" in response.content.decode()
    )
    c.post(_url("purpose_add", operator, version_id=version.pk), _purpose_data("sneaky"))
    c.post(_url("purpose_remove", operator, version_id=version.pk), {"purpose": version.purposes.first().pk})
    fresh = PolicyVersion.objects.get(pk=version.pk)
    assert fresh.title == version.title and fresh.purpose_codes() == version.purpose_codes()
    assert fresh.sha256 == fresh.compute_sha256()


def test_the_admin_shows_policies_read_only(staff_client, supervisor, operator):
    version = published_version(operator)
    model_admin = site._registry[PolicyVersion]
    c = staff_client(supervisor)
    change_url = reverse("admin:consent_policyversion_change", args=[version.pk])
    assert c.get(change_url).status_code == 200  # viewable...
    response = c.post(change_url, {"title": "Changed"})
    assert response.status_code == 403  # ...but not changeable
    assert PolicyVersion.objects.get(pk=version.pk).title == version.title
    assert c.get(reverse("admin:consent_policyversion_add")).status_code == 403
    assert not model_admin.has_delete_permission(None, version)


def test_a_draft_is_edited_and_the_edit_is_audited(client_for, op_admin, operator):
    version = draft_version(operator)
    client_for(op_admin).post(
        _url("policy_edit", operator, version_id=version.pk),
        {
            "title": "Baru",
            "effective_date": "2026-03-01",
            "text_id": "Teks baru.",
            "text_en": "New text.",
            "change_summary": "Ubah.",
        },
    )
    version.refresh_from_db()
    assert version.title == "Baru" and version.text_en == "New text."
    assert AuditEvent.objects.filter(action="consent.policy.update").exists()


def test_reporters_and_viewers_cannot_manage_policies(client_for, reporter, viewer, operator):
    version = draft_version(operator)
    for user in (reporter, viewer):
        c = client_for(user)
        assert c.get(_url("policy_create", operator)).status_code == 403
        assert c.post(_url("policy_publish", operator, version_id=version.pk)).status_code == 403
        assert c.get(_url("policy_detail", operator, version_id=version.pk)).status_code == 200
    assert PolicyVersion.objects.get(pk=version.pk).is_draft


def test_another_operators_version_is_a_404(client_for, outsider, operator):
    version = published_version(operator)
    assert client_for(outsider).get(_url("policy_detail", operator, version_id=version.pk)).status_code == 404


def test_the_diff_shows_both_versions_side_by_side(client_for, viewer, operator):
    first = published_version(operator)
    second = draft_version(operator)
    second.text_en = "# Policy\n\nWe protect your data carefully."
    second.save()
    response = client_for(viewer).get(_url("policy_diff", operator), {"a": first.pk, "b": second.pk})
    page = response.content.decode()
    assert response.status_code == 200
    assert "We protect your data." in page and "We protect your data carefully." in page
    assert "diff--replace" in page


def test_markdown_is_rendered_to_sanitised_html(operator):
    version = draft_version(operator)
    version.text_en = (
        "**Bold** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    html = version.html_for("en")
    assert "<strong>Bold</strong>" in html
    assert "<script" not in html and "javascript:" not in html and "onerror" not in html


def test_the_public_page_shows_the_current_version_without_sign_in(client, operator):
    assert client.get(reverse("public_policy:current", args=[operator.slug])).status_code == 404
    first = published_version(operator)
    second = published_version(operator, title="Kebijakan Privasi 2")
    response = client.get(reverse("public_policy:current", args=[operator.slug]))
    page = response.content.decode()
    assert response.status_code == 200 and "Kebijakan Privasi 2" in page and second.sha256 in page
    # Each version keeps a stable address; drafts are never public.
    old = client.get(first.get_public_url())
    assert old.status_code == 200 and first.sha256 in old.content.decode()
    draft = draft_version(operator)
    assert client.get(reverse("public_policy:version", args=[operator.slug, draft.number])).status_code == 404
    english = client.get(reverse("public_policy:current", args=[operator.slug]) + "?lang=en")
    assert "We protect your data." in english.content.decode()
    assert client.get(reverse("public_policy:current", args=["no-such-operator"])).status_code == 404


def _publish_at_once(versions: list[PolicyVersion]) -> list[Exception | None]:
    """Publish each version from its own connection, all at the same moment; return each outcome."""
    from consent import services

    outcomes: list[Exception | None] = [None] * len(versions)
    barrier = threading.Barrier(len(versions))

    def publish(index: int) -> None:
        try:
            barrier.wait()
            services.publish_version(version=versions[index], actor=None)
        except Exception as exc:  # noqa: BLE001  each outcome is asserted by the caller
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(len(versions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_drafts_published_at_the_same_moment_leave_one_published_and_no_error(operator):
    drafts = [draft_version(operator, title="A"), draft_version(operator, title="B")]
    assert _publish_at_once(drafts) == [None, None]
    statuses = sorted(PolicyVersion.objects.filter(operator=operator).values_list("status", flat=True))
    assert statuses == [PolicyStatus.PUBLISHED, PolicyStatus.RETIRED]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_draft_published_twice_at_once_is_published_once_and_the_other_is_told(operator):
    draft = draft_version(operator)
    twin = PolicyVersion.objects.get(pk=draft.pk)  # the same draft, open in a second browser tab
    outcomes = _publish_at_once([draft, twin])
    assert sorted(type(o).__name__ for o in outcomes) == ["NoneType", "ValidationError"]
    assert PolicyVersion.objects.get(pk=draft.pk).status == PolicyStatus.PUBLISHED
    assert AuditEvent.objects.filter(action="consent.policy.publish").count() == 1
