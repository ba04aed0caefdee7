"""NIK validation: 16 digits, plausible region codes and date-of-birth parts (+40 for women)."""

import pytest
from django.core.exceptions import ValidationError

from incidents.cases.nik import clean_nik


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3171011508900001", "3171011508900001"),  # Jakarta, a man born 15 Aug 1990
        ("3171015508900001", "3171015508900001"),  # the same date for a woman: day + 40
        ("7371 0171 1205 0002", "7371017112050002"),  # a woman born 31 Dec 2005, typed with spaces
        ("9471012902000003", "9471012902000003"),  # 29 Feb 2000 (leap year), Papua
        ("1101010101010001", "1101010101010001"),
    ],
)
def test_it_accepts_plausible_niks(value, expected):
    assert clean_nik(value) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("317101150890000", "nik_length"),
        ("31710115089000011", "nik_length"),
        ("3171O11508900001", "nik_digits"),
        ("9971011508900001", "nik_province"),
        ("2071011508900001", "nik_province"),
        ("3100011508900001", "nik_region"),
        ("3171001508900001", "nik_region"),
        ("3171013208900001", "nik_date"),  # day 32
        ("3171017208900001", "nik_date"),  # day 72 = 32 for a woman
        ("3171010013900001", "nik_date"),  # day 00, month 13
        ("3171011513900001", "nik_date"),  # month 13
        ("3171012902010001", "nik_date"),  # 29 Feb in neither 1901 nor 2001
        ("3171011508900000", "nik_serial"),
    ],
)
def test_it_refuses_implausible_niks_with_the_reason(value, code):
    with pytest.raises(ValidationError) as info:
        clean_nik(value)
    assert info.value.code == code
