"""Share incidents in STIX 2.1: the incident, its indicators and observed data, marked with TLP 2.0.

Who the victim is travels only as far as its TLP allows: every bundle names the sector;
the operator is named only on a TLP:CLEAR incident. A caller exports nothing above their
clearance (`clearance`), and the whole export is refused rather than silently trimmed.
"""

from datetime import datetime

import stix2
from django.core.exceptions import PermissionDenied
from django.utils import translation
from django.utils.translation import gettext as _

from portal.accounts.models import Sector, User

from .models import TLP, Incident, Observable
from .observables import ObservableKind
from .permissions import CLOSE, TRIAGE

# TLP 2.0 in STIX 2.1: the marking definitions of the OASIS TLP 2.0 extension, with their fixed ids.
TLP_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP_MARKING_IDS = {
    TLP.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    TLP.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    TLP.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    TLP.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    TLP.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP_ORDER = [TLP.CLEAR, TLP.GREEN, TLP.AMBER, TLP.AMBER_STRICT, TLP.RED]
# A fixed id, so every bundle BSSN exports names the same producer.
BSSN_IDENTITY_ID = "identity--0d4b0a42-3b5e-5d1e-9f44-6a4f2c1b7e10"


def tlp_marking(level: str) -> stix2.v21.MarkingDefinition:
    return stix2.v21.MarkingDefinition(
        id=TLP_MARKING_IDS[level],
        created="2022-10-01T00:00:00.000Z",
        name=TLP(level).label,
        extensions={TLP_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}},
    )


def clearance(user: User) -> str:
    """Return the highest TLP `user` may export: supervisors RED, analysts AMBER+STRICT, else nothing.

    Analysts share what BSSN's own staff may see (AMBER+STRICT keeps it inside BSSN); a RED
    report names its recipients, so only a supervisor, who answers for the disclosure, exports it.
    """
    if not (user.is_active and user.is_staff):
        return ""
    if user.has_perm(CLOSE):
        return TLP.RED
    if user.has_perm(TRIAGE):
        return TLP.AMBER_STRICT
    return ""


def _above(level: str, ceiling: str) -> bool:
    return not ceiling or TLP_ORDER.index(level) > TLP_ORDER.index(ceiling)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


PATTERN_PATHS = {
    ObservableKind.IPV4: "ipv4-addr:value",
    ObservableKind.IPV6: "ipv6-addr:value",
    ObservableKind.DOMAIN: "domain-name:value",
    ObservableKind.URL: "url:value",
    ObservableKind.EMAIL: "email-addr:value",
    ObservableKind.MD5: "file:hashes.MD5",
    ObservableKind.SHA1: "file:hashes.'SHA-1'",
    ObservableKind.SHA256: "file:hashes.'SHA-256'",
}
HASH_NAMES = {ObservableKind.MD5: "MD5", ObservableKind.SHA1: "SHA-1", ObservableKind.SHA256: "SHA-256"}


def pattern_for(observable: Observable) -> str:
    """Return the STIX pattern that matches `observable`."""
    return f"[{PATTERN_PATHS[observable.kind]} = {_quote(observable.value)}]"


def _cyber_observable(observable: Observable, marking: list[str]):
    kind, value = observable.kind, observable.value
    if kind in HASH_NAMES:
        return stix2.v21.File(hashes={HASH_NAMES[kind]: value}, object_marking_refs=marking)
    classes = {
        ObservableKind.IPV4: stix2.v21.IPv4Address,
        ObservableKind.IPV6: stix2.v21.IPv6Address,
        ObservableKind.DOMAIN: stix2.v21.DomainName,
        ObservableKind.URL: stix2.v21.URL,
        ObservableKind.EMAIL: stix2.v21.EmailAddress,
    }
    return classes[kind](value=value, object_marking_refs=marking)


def _timestamp(value: datetime | None, fallback: datetime) -> datetime:
    return value or fallback


def check_clearance(*, user: User, incidents: list[Incident]) -> None:
    """Raise PermissionDenied when any incident or its indicators is marked above `user`'s clearance."""
    ceiling = clearance(user)
    for incident in incidents:
        levels = {incident.tlp, *(o.tlp for o in incident.observables.all())}
        if any(_above(level, ceiling) for level in levels):
            raise PermissionDenied(
                _("%(reference)s is marked above your TLP clearance; nothing was exported.")
                % {"reference": incident.reference}
            )


def build_bundle(*, incidents: list[Incident]) -> stix2.v21.Bundle:
    """Return one STIX 2.1 bundle of `incidents`, their sector identities, indicators and observed data.

    Labels are in English whatever the caller's language: the bundle leaves the portal.
    """
    with translation.override("en"):
        return _build_bundle(incidents)


def _build_bundle(incidents: list[Incident]) -> stix2.v21.Bundle:
    producer = stix2.v21.Identity(
        id=BSSN_IDENTITY_ID,
        created="2024-01-01T00:00:00.000Z",
        modified="2024-01-01T00:00:00.000Z",
        name="Badan Siber dan Sandi Negara (BSSN)",
        identity_class="organization",
        object_marking_refs=[TLP_MARKING_IDS[TLP.CLEAR]],
    )
    objects: list = [producer]
    levels = {TLP.CLEAR}
    sectors: dict[str, stix2.v21.Identity] = {}
    for incident in incidents:
        marking = [TLP_MARKING_IDS[incident.tlp]]
        levels.add(incident.tlp)
        reported = _timestamp(incident.submitted_at, incident.created_at)
        if incident.operator.sector not in sectors:
            sectors[incident.operator.sector] = stix2.v21.Identity(
                name=str(Sector(incident.operator.sector).label),
                identity_class="class",
                created_by_ref=producer.id,
                object_marking_refs=[TLP_MARKING_IDS[TLP.CLEAR]],
            )
            objects.append(sectors[incident.operator.sector])
        stix_incident = stix2.v21.Incident(
            name=f"{incident.reference}: {incident.title}",
            description=incident.description or incident.get_category_display(),
            labels=[incident.category, *filter(None, [incident.bssn_severity or incident.severity])],
            created=reported,
            modified=reported,
            created_by_ref=producer.id,
            external_references=[{"source_name": "bssn-portal", "external_id": incident.reference}],
            object_marking_refs=marking,
        )
        objects.append(stix_incident)
        objects.append(
            stix2.v21.Relationship(
                stix_incident,
                "related-to",
                sectors[incident.operator.sector],
                created_by_ref=producer.id,
                description="victim sector",
                object_marking_refs=marking,
            )  # fmt: skip
        )
        if incident.tlp == TLP.CLEAR:  # only a CLEAR report may name its victim
            victim = stix2.v21.Identity(
                name=incident.operator.name,
                identity_class="organization",
                created_by_ref=producer.id,
                object_marking_refs=marking,
            )
            objects.append(victim)
            objects.append(
                stix2.v21.Relationship(
                    stix_incident,
                    "related-to",
                    victim,
                    created_by_ref=producer.id,
                    description="victim",
                    object_marking_refs=marking,
                )  # fmt: skip
            )
        for observable in incident.observables.all():
            obs_marking = [TLP_MARKING_IDS[observable.tlp]]
            levels.add(observable.tlp)
            cyber = _cyber_observable(observable, obs_marking)
            seen = observable.created_at
            observed = stix2.v21.ObservedData(
                first_observed=seen,
                last_observed=seen,
                number_observed=1,
                object_refs=[cyber.id],
                created_by_ref=producer.id,
                object_marking_refs=obs_marking,
            )
            indicator = stix2.v21.Indicator(
                name=str(observable),
                pattern=pattern_for(observable),
                pattern_type="stix",
                valid_from=seen,
                indicator_types=["malicious-activity"],
                created_by_ref=producer.id,
                object_marking_refs=obs_marking,
            )
            objects += [
                cyber,
                observed,
                indicator,
                stix2.v21.Relationship(
                    indicator,
                    "based-on",
                    observed,
                    created_by_ref=producer.id,
                    object_marking_refs=obs_marking,
                ),
                stix2.v21.Relationship(
                    indicator,
                    "related-to",
                    stix_incident,
                    created_by_ref=producer.id,
                    object_marking_refs=obs_marking,
                ),  # fmt: skip
            ]
    markings = [tlp_marking(level) for level in TLP_ORDER if level in levels]
    return stix2.v21.Bundle(*markings, *objects)
