from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from portal.accounts.models import Role, Sector
from tests.conftest import make_member, make_operator

# A plausible NIK: Kota Makassar (73.71), district 01, a woman born 15 Aug 1990 (15 + 40 = 55).
NIK = "7371015508900003"
NAME = "Siti Contoh Rahmawati"
PHONE = "+62 812 5555 0199"
ADDRESS = "Jalan Contoh Nomor 7, Makassar"
NOTE = "Pasien terdengar sangat cemas saat konsultasi"


@pytest.fixture
def cases_seeded(db):
    """The WHO definitions and the seeded authorities (transactional tests flush data migrations)."""
    from incidents.cases.seed import seed_case_definitions
    from portal.alerts.seed import seed_authorities

    seed_case_definitions()
    seed_authorities()


@pytest.fixture
def ht_reporter(healthtech_operator, cases_seeded):
    return make_member(healthtech_operator, Role.REPORTER)


@pytest.fixture
def ht_viewer(healthtech_operator, cases_seeded):
    return make_member(healthtech_operator, Role.VIEWER)


@pytest.fixture
def ecommerce_admin(db):
    return make_member(make_operator("toko", sector=Sector.ECOMMERCE), Role.ADMIN)


def flag_post(**overrides) -> dict:
    """Form data for a suspect-A flag under WHO 2020.2 (fever + cough + community transmission)."""
    from incidents.cases.models import CaseDefinition
    from incidents.cases.seed import WHO_2020

    data = {
        "definition": CaseDefinition.objects.get(code=WHO_2020).pk,
        "symptoms": ["fever", "cough"],
        "onset_date": (
            timezone.now().astimezone(ZoneInfo("Asia/Jakarta")).date() - timedelta(days=2)
        ).isoformat(),
        "epidemiological": ["community_transmission"],
        "antigen_result": "not_done",
        "province": "ID-SN",
        "regency_code": "73.71",
        "regency_name": "Kota Makassar",
        "age_band": "30-44",
        "sex": "female",
        "consultation_ref": "KONS-2026-0001",
        "legal_basis": "public_task",
        "note": NOTE,
        "full_name": NAME,
        "phone": PHONE,
        "nik": NIK,
        "address": ADDRESS,
        "subject_identifier": "user-4711",
        "share_reason": "",
    }
    data.update(overrides)
    return data
