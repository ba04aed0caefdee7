"""Receipts anyone can verify: Kantara fields, schema, keys URL, public page, command, docs verifier."""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone, translation
from jsonschema import Draft202012Validator, FormatChecker

from consent import services
from consent.models import Purpose
from portal import transparency
from tests.consent.helpers import PURPOSES, draft_version, give

pytestmark = pytest.mark.django_db

DOCS = Path(settings.BASE_DIR) / "docs"
SCHEMA = json.loads((DOCS / "schemas" / "consent.receipt.schema.json").read_text())


def download(client, event) -> dict:
    response = client.get(event.get_receipt_url())
    assert response.status_code == 200
    return json.loads(response.content)


def validate(receipt: dict) -> None:
    Draft202012Validator(SCHEMA, format_checker=FormatChecker()).validate(receipt)


@pytest.fixture
def receipt(client_for, viewer, operator):
    return download(client_for(viewer), give(operator, "customer-7"))


@pytest.fixture
def published_keys(client):
    return client.get(reverse("checkpoint_keys")).json()


def test_every_kind_of_receipt_validates_against_the_schema(client_for, viewer, operator):
    Draft202012Validator.check_schema(SCHEMA)
    client = client_for(viewer)
    version = draft_version(operator)
    Purpose.objects.create(
        version=version, code="health-research", description="Research", legal_basis="contract",
        data_categories="health records", specific_data=["health", "children"], retention="5 years",
        recipients="", withdrawal_method="",
    )  # fmt: skip
    version = services.publish_version(version=version, actor=None)
    events = [
        give(operator, "customer-1"),
        give(operator, "customer-1", state="withdrawn"),
        give(operator, "customer-2", "health-research", expires_at=timezone.now() + timedelta(days=30)),
        give(operator, "customer-3", PURPOSES[1], state="refused"),
    ]
    operator.address = "Jl. Medan Merdeka Barat 9, Jakarta Pusat 10110"
    operator.save()
    receipts = [download(client, e) for e in events]
    for receipt in receipts:
        validate(receipt)
    sensitive = receipts[2]
    assert sensitive["sensitive"] is True and sensitive["spiCat"] == ["Health", "Children's data"]
    purpose = sensitive["services"][0]["purposes"][0]
    assert purpose["primaryPurpose"] is True and purpose["thirdPartyDisclosure"] is False
    assert purpose["consentType"] == "EXPLICIT" and purpose["purposeCategory"] == ["Contracted Service"]
    shared = receipts[0]["services"][0]["purposes"][0]
    assert shared["thirdPartyDisclosure"] is True and shared["thirdPartyName"] == "Ministry of Health"
    controller = receipts[3]["piiControllers"][0]
    assert (
        controller["address"].startswith("Jl. Medan Merdeka")
        and controller["email"] == operator.contact_email
    )
    # Every receipt carries a checkpoint covering its event.
    assert all(r["ledger"]["checkpoint"]["size"] >= r["integrity"]["ledger_sequence"] for r in receipts)


def test_the_keys_are_public_and_keep_a_rotated_key(client, settings):
    first = client.get(reverse("checkpoint_keys")).json()
    [current] = first["keys"]
    assert current["current"] is True
    old_public = current["public_key"]
    settings.CHECKPOINT_SIGNING_KEY = transparency.generate_signing_key()
    settings.CHECKPOINT_VERIFY_KEYS = [old_public]
    keys = client.get(reverse("checkpoint_keys")).json()["keys"]
    assert [k["current"] for k in keys] == [True, False] and keys[1]["public_key"] == old_public


def _docs_verifier():
    text = (DOCS / "consent.md").read_text()
    section = text[text.index("### Checking a receipt") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.splitlines()) <= 40
    namespace: dict = {}
    exec(compile(code, "docs/consent.md", "exec"), namespace)  # noqa: S102  the documented verifier itself
    return namespace["verify"]


def test_the_documented_verifier_accepts_a_receipt_and_refuses_a_changed_one(receipt, published_keys):
    verify = _docs_verifier()
    verify(receipt, published_keys["keys"])
    flipped = json.loads(json.dumps(receipt))
    flipped["state"] = "withdrawn"
    with pytest.raises(AssertionError):
        verify(flipped, published_keys["keys"])
    forged = json.loads(json.dumps(receipt))
    forged["ledger"]["checkpoint"]["size"] += 1
    forged["ledger"]["inclusion_proof"].append("00" * 32)
    with pytest.raises((AssertionError, InvalidSignature)):
        verify(forged, published_keys["keys"])


def test_the_command_checks_a_receipt_without_the_database(
    receipt, published_keys, tmp_path, capsys, django_assert_num_queries
):
    path, keys = tmp_path / "receipt.json", tmp_path / "keys.json"
    path.write_text(json.dumps(receipt))
    keys.write_text(json.dumps(published_keys))
    with django_assert_num_queries(0):
        call_command("verify_receipt", str(path))
        call_command("verify_receipt", str(path), "--keys", str(keys))
    assert capsys.readouterr().out.count("The receipt is valid.") == 2
    receipt["purposes"][0]["purpose_id"] = PURPOSES[1]
    path.write_text(json.dumps(receipt))
    with (
        django_assert_num_queries(0),
        pytest.raises(CommandError, match="invalid"),
        translation.override("en"),
    ):
        call_command("verify_receipt", str(path))
    assert "purpose is not the one in the ledger" in capsys.readouterr().err


def test_anyone_can_check_a_receipt_on_the_public_page(client, receipt):
    url = reverse("receipt_verify")
    page = client.get(url)  # Bahasa Indonesia by default
    assert page.status_code == 200 and "Periksa tanda terima persetujuan" in page.content.decode()
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    valid = client.post(url, {"receipt": json.dumps(receipt)})
    assert valid.status_code == 200 and b"Valid receipt" in valid.content
    receipt["state"] = "given" if receipt["state"] != "given" else "withdrawn"
    upload = tmp_file(json.dumps(receipt))
    invalid = client.post(url, {"file": upload})
    assert b"Invalid receipt" in invalid.content and b"state is not the one in the ledger" in invalid.content
    odd = client.post(url, {"receipt": json.dumps({"ledger": {"checkpoint": [1], "inclusion_proof": "zz"}})})
    assert odd.status_code == 200 and b"Invalid receipt" in odd.content
    garbage = client.post(url, {"receipt": "{not json"})
    assert garbage.status_code == 400 and b"not a JSON document" in garbage.content


def tmp_file(text: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("receipt.json", text.encode(), content_type="application/json")
