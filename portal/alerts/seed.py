"""Seed authorities, their e-mail channels and the default routing rules (placeholder addresses).

Used by the data migration and by tests; running it again changes nothing that exists.
Addresses are on example.org subdomains (RFC 2606): a supervisor replaces them with the
real ones in the admin.
"""

from portal.regions import Province

BSSN = "bssn-csirt"
KEMENKES = "kemenkes"
OJK = "ojk"
BI = "bi"


def dinkes_code(province: str) -> str:
    return "dinkes-" + province.split("-", 1)[1].lower()


def _authorities() -> list[dict]:
    rows = [
        {"code": BSSN, "name": "BSSN — CSIRT Nasional", "email": "csirt@bssn.example.org", "default": True},
        {"code": KEMENKES, "name": "Kementerian Kesehatan", "email": "surveilans@kemkes.example.org"},
        {"code": OJK, "name": "Otoritas Jasa Keuangan (OJK)", "email": "insiden-siber@ojk.example.org"},
        {"code": BI, "name": "Bank Indonesia", "email": "insiden-siber@bi.example.org"},
    ]
    for province in Province:
        suffix = province.value.split("-", 1)[1].lower()
        rows.append(
            {
                "code": dinkes_code(province.value),
                "name": f"Dinas Kesehatan Provinsi {province.label}",
                "province": province.value,
                "email": f"surveilans@dinkes-{suffix}.example.org",
            }
        )
    return rows


def _rules() -> list[tuple[str, str, str, str]]:
    """Return (event pattern, sector, province, authority code) rows."""
    rules = [
        ("incident.*", "", "", BSSN),
        ("incident.*", "fintech_payment", "", OJK),
        ("incident.*", "fintech_payment", "", BI),
        ("incident.*", "fintech_lending", "", OJK),
        ("suspected_case.*", "", "", KEMENKES),
        # BSSN witnesses every signed checkpoint of the consent ledgers and the audit log.
        ("ledger.*", "", "", BSSN),
    ]
    rules += [("suspected_case.*", "", p.value, dinkes_code(p.value)) for p in Province]
    return rules


def seed_authorities(apps=None) -> None:
    """Create the seeded authorities, channels and rules that do not exist yet."""
    if apps is None:
        from django.apps import apps
    Authority = apps.get_model("alerts", "Authority")
    Channel = apps.get_model("alerts", "Channel")
    RoutingRule = apps.get_model("alerts", "RoutingRule")
    by_code = {}
    for row in _authorities():
        authority, created = Authority.objects.get_or_create(
            code=row["code"], defaults={"name": row["name"], "province": row.get("province", "")}
        )
        by_code[row["code"]] = authority
        if created:
            is_default = row.get("default", False) and not Channel.objects.filter(is_default=True).exists()
            Channel.objects.create(
                authority=authority, kind="email", name="E-mail", email=row["email"], is_default=is_default
            )
    for pattern, sector, province, code in _rules():
        RoutingRule.objects.get_or_create(
            event_pattern=pattern, sector=sector, province=province, authority=by_code[code]
        )
