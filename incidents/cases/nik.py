"""Check that a NIK (Nomor Induk Kependudukan) is plausible before it is stored.

A NIK has 16 digits: province (2), regency/city (2), district (2), date of birth as
DDMMYY with 40 added to the day for women, and a 4-digit serial. The check refuses
what cannot be a NIK; it cannot prove that one was issued.
"""

from datetime import date

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from portal.crypto import Kind, NormalisationError, normalise

# Dukcapil province codes (first two digits), including the Papua provinces created in 2022.
PROVINCE_CODES = frozenset(
    {11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63, 64, 65}
    | {71, 72, 73, 74, 75, 76, 81, 82, 91, 92, 93, 94, 95, 96}
)


def _plausible_birth_date(day: int, month: int, year2: int) -> bool:
    if day > 40:
        day -= 40  # women: 40 is added to the day of birth
    for century in (1900, 2000):
        try:
            date(century + year2, month, day)
        except ValueError:
            continue
        return True
    return False


def clean_nik(value: str) -> str:
    """Return the normalised NIK (16 digits) or raise ValidationError saying what is wrong."""
    try:
        nik = normalise(Kind.NIK, value)
    except NormalisationError:
        raise ValidationError(_("A NIK has digits only."), code="nik_digits") from None
    if len(nik) != 16:
        raise ValidationError(_("A NIK has exactly 16 digits."), code="nik_length")
    if int(nik[0:2]) not in PROVINCE_CODES:
        raise ValidationError(_("The NIK's first two digits are not a province code."), code="nik_province")
    if nik[2:4] == "00" or nik[4:6] == "00":
        raise ValidationError(_("The NIK's regency or district code is not valid."), code="nik_region")
    day, month, year2 = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    if not _plausible_birth_date(day, month, year2):
        raise ValidationError(_("The NIK's date-of-birth digits are not a valid date."), code="nik_date")
    if nik[12:16] == "0000":
        raise ValidationError(_("The NIK's serial number is not valid."), code="nik_serial")
    return nik
