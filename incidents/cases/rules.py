"""Evaluate a case definition's data-driven rule against the facts of a flag.

A rule is a JSON document stored on `CaseDefinition.rule`:

    {
      "symptoms": ["fever", "cough", ...],           # symptom codes the definition knows
      "epidemiological": ["community_transmission"], # epidemiological criterion codes
      "criteria": {                                  # named criteria (order does not matter)
        "clinical": <node>,
        "epidemiological": <node>, ...
      },
      "classes": [                                   # first match is the classification
        {"code": "suspect_a", "when": <node>}, ...
      ]
    }

A node is one of:

- a string: a fact code (a symptom or criterion code, "sari" or "antigen_positive");
- {"all": [node, ...]}, {"any": [node, ...]}, {"not": node};
- {"at_least": n, "of": [fact code, ...] | "symptoms" | "epidemiological"};
- {"criterion": "name"}: another named criterion (no cycles);
- {"onset_within_days": n}: symptom onset at most n days before the evaluation date.

The evaluator never claims "probable" or "confirmed": it only returns the suspect
classes the definition describes, or "does not meet the definition".
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

NONE = "none"
CLASS_CODES = ("suspect_a", "suspect_b", "suspect_c")
# Facts every definition may use besides its own symptom and criterion codes.
BUILTIN_FACTS = ("sari", "antigen_positive")
LIST_ALIASES = ("symptoms", "epidemiological")


@dataclass(frozen=True)
class Facts:
    """What the reporter recorded about the person, in codes."""

    symptoms: frozenset[str] = frozenset()
    epidemiological: frozenset[str] = frozenset()
    sari: bool = False
    antigen_positive: bool = False
    onset_date: date | None = None
    as_of: date | None = None

    def has(self, code: str) -> bool:
        if code == "sari":
            return self.sari
        if code == "antigen_positive":
            return self.antigen_positive
        return code in self.symptoms or code in self.epidemiological


@dataclass
class Evaluation:
    """The classification and why: the criteria that held and the facts behind them."""

    classification: str
    matched_classes: list[str] = field(default_factory=list)
    matched_criteria: list[str] = field(default_factory=list)
    matched_facts: list[str] = field(default_factory=list)
    # For each class not met, in the definition's order: what it still needs (see `missing`).
    unmet: list[tuple[str, list]] = field(default_factory=list)

    @property
    def meets_definition(self) -> bool:
        return self.classification != NONE


class _Evaluator:
    def __init__(self, rule: dict, facts: Facts) -> None:
        self.rule = rule
        self.facts = facts
        self.criteria: dict[str, bool] = {}
        self.used_facts: set[str] = set()

    def criterion(self, name: str) -> bool:
        # Evaluated on first use and remembered: JSON objects (PostgreSQL jsonb) keep no
        # key order, so a criterion may be reached through another before its own turn.
        if name not in self.criteria:
            self.criteria[name] = self.node(self.rule["criteria"][name])
        return self.criteria[name]

    def _codes(self, of) -> list[str]:
        if isinstance(of, str):
            return list(self.rule.get(of, []))
        return list(of)

    def node(self, node) -> bool:
        if isinstance(node, str):
            present = self.facts.has(node)
            if present:
                self.used_facts.add(node)
            return present
        if "all" in node:
            return all([self.node(n) for n in node["all"]])  # noqa: C419  evaluate every branch
        if "any" in node:
            return any([self.node(n) for n in node["any"]])  # noqa: C419  to collect every fact
        if "not" in node:
            return not self.node(node["not"])
        if "at_least" in node:
            present = [c for c in self._codes(node["of"]) if self.facts.has(c)]
            if len(present) >= node["at_least"]:
                self.used_facts.update(present)
                return True
            return False
        if "criterion" in node:
            return self.criterion(node["criterion"])
        if "onset_within_days" in node:
            onset, as_of = self.facts.onset_date, self.facts.as_of
            if onset is None or as_of is None:
                return False
            return 0 <= (as_of - onset).days <= node["onset_within_days"]
        raise ValueError("unknown rule node")  # validate_rule() refuses these first

    def missing(self, node) -> list:
        """Return what `node` still needs to hold, as requirements; [] when it holds.

        A requirement is a fact code, or {"criterion": name}, {"not": node},
        {"at_least": n, "of": codes}, {"onset_within_days": n}, or {"any": [[...], ...]}
        (one of the alternatives, each a list of requirements).
        """
        if self.node(node):
            return []
        if isinstance(node, str):
            return [node]
        if "all" in node:
            return [need for child in node["all"] for need in self.missing(child)]
        if "any" in node:
            alternatives = [self.missing(child) for child in node["any"]]
            return alternatives[0] if len(alternatives) == 1 else [{"any": alternatives}]
        if "at_least" in node:
            return [{"at_least": node["at_least"], "of": self._codes(node["of"])}]
        return [dict(node)]  # criterion, not, onset_within_days: named as they are


def evaluate(rule: dict, facts: Facts) -> Evaluation:
    """Return the classification of `facts` under `rule`, the criteria that matched, and what is missing."""
    evaluator = _Evaluator(rule, facts)
    for name in rule.get("criteria", {}):
        evaluator.criterion(name)
    matched_classes = [c["code"] for c in rule.get("classes", []) if evaluator.node(c["when"])]
    explainer = _Evaluator(rule, facts)  # its own instance: explaining must not add matched facts
    unmet = [
        (c["code"], explainer.missing(c["when"]))
        for c in rule.get("classes", [])
        if c["code"] not in matched_classes
    ]
    return Evaluation(
        classification=matched_classes[0] if matched_classes else NONE,
        matched_classes=matched_classes,
        matched_criteria=sorted(name for name, held in evaluator.criteria.items() if held),
        matched_facts=sorted(evaluator.used_facts) if matched_classes else [],
        unmet=unmet,
    )


def validate_rule(rule, *, known_symptoms: Iterable[str], known_criteria: Iterable[str]) -> None:
    """Raise ValidationError with a readable message if `rule` is not a usable definition."""
    errors: list[str] = []
    if not isinstance(rule, dict):
        raise ValidationError(_("The rule must be a JSON object."))
    symptoms = rule.get("symptoms", [])
    epidemiological = rule.get("epidemiological", [])
    if not isinstance(symptoms, list) or not all(isinstance(s, str) for s in symptoms):
        errors.append(_("“symptoms” must be a list of symptom codes."))
        symptoms = []
    if not isinstance(epidemiological, list) or not all(isinstance(s, str) for s in epidemiological):
        errors.append(_("“epidemiological” must be a list of criterion codes."))
        epidemiological = []
    unknown = sorted(set(symptoms) - set(known_symptoms))
    if unknown:
        errors.append(_("Unknown symptom codes: %(codes)s.") % {"codes": ", ".join(unknown)})
    unknown = sorted(set(epidemiological) - set(known_criteria))
    if unknown:
        errors.append(
            _("Unknown epidemiological criterion codes: %(codes)s.") % {"codes": ", ".join(unknown)}
        )
    facts = set(symptoms) | set(epidemiological) | set(BUILTIN_FACTS)
    criteria = rule.get("criteria", {})
    if not isinstance(criteria, dict):
        errors.append(_("“criteria” must be an object of named conditions."))
        criteria = {}
    visiting: set[str] = set()
    checked: set[str] = set()

    def visit(name: str) -> None:
        visiting.add(name)
        check(criteria[name], name)
        visiting.discard(name)
        checked.add(name)

    def check(node, where: str) -> None:
        if isinstance(node, str):
            if node not in facts:
                errors.append(_("%(where)s: unknown fact “%(code)s”.") % {"where": where, "code": node})
            return
        if not isinstance(node, dict) or len(node) not in (1, 2):
            errors.append(_("%(where)s: each condition is a code or a one-key object.") % {"where": where})
            return
        if "all" in node or "any" in node:
            items = node.get("all", node.get("any"))
            if not isinstance(items, list) or not items:
                errors.append(_("%(where)s: “all”/“any” need a non-empty list.") % {"where": where})
                return
            for item in items:
                check(item, where)
        elif "not" in node:
            check(node["not"], where)
        elif "at_least" in node:
            n, of = node.get("at_least"), node.get("of")
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                errors.append(_("%(where)s: “at_least” must be a positive whole number.") % {"where": where})
            if isinstance(of, str):
                if of not in LIST_ALIASES:
                    errors.append(
                        _("%(where)s: “of” must be a list of codes, “symptoms” or “epidemiological”.")
                        % {"where": where}
                    )
            elif isinstance(of, list) and of:
                for code in of:
                    if isinstance(code, str):
                        check(code, where)
                    else:
                        errors.append(_("%(where)s: “of” lists codes only.") % {"where": where})
            else:
                errors.append(
                    _("%(where)s: “of” must be a list of codes, “symptoms” or “epidemiological”.")
                    % {"where": where}
                )
        elif "criterion" in node:
            name = node["criterion"]
            if name not in criteria:
                errors.append(
                    _("%(where)s: criterion “%(name)s” is not defined.") % {"where": where, "name": name}
                )
            elif name in visiting:
                errors.append(
                    _("%(where)s: criterion “%(name)s” refers to itself.") % {"where": where, "name": name}
                )
            elif name not in checked:
                visit(name)
        elif "onset_within_days" in node:
            days = node["onset_within_days"]
            if not isinstance(days, int) or isinstance(days, bool) or days < 0:
                errors.append(
                    _("%(where)s: “onset_within_days” must be a whole number of days.") % {"where": where}
                )
        else:
            errors.append(
                _("%(where)s: unknown condition %(keys)s.") % {"where": where, "keys": ", ".join(node)}
            )

    for name in criteria:
        if name not in checked:
            visit(name)
    classes = rule.get("classes")
    if not isinstance(classes, list) or not classes:
        errors.append(_("“classes” must list at least one classification."))
        classes = []
    for entry in classes:
        if not isinstance(entry, dict) or entry.get("code") not in CLASS_CODES or "when" not in entry:
            errors.append(
                _("Each class needs a “code” (one of %(codes)s) and a “when” condition.")
                % {"codes": ", ".join(CLASS_CODES)}
            )
            continue
        check(entry["when"], entry["code"])
    if errors:
        raise ValidationError(errors)
