"""Side-by-side comparison of two policy versions (difflib from the standard library)."""

import difflib
from dataclasses import dataclass

from .models import PolicyVersion


@dataclass(frozen=True)
class DiffRow:
    kind: str  # "equal", "replace", "delete", "insert"
    left_no: int | None
    left: str
    right_no: int | None
    right: str


def version_lines(version: PolicyVersion) -> list[str]:
    """Return a version as comparable lines: its fields, texts and purposes."""
    lines = [
        f"# {version.title}",
        f"effective_date: {version.effective_date.isoformat()}",
        f"change_summary: {version.change_summary}",
        "",
        "## Bahasa Indonesia",
        *version.text_id.splitlines(),
        "",
        "## English",
        *version.text_en.splitlines(),
        "",
    ]
    for p in version.purposes.order_by("code"):
        lines += [
            f"## purpose {p.code}",
            f"description: {p.description}",
            f"legal_basis: {p.legal_basis}",
            f"data_categories: {p.data_categories}",
            f"specific_data: {', '.join(sorted(p.specific_data or [])) or '-'}",
            f"retention: {p.retention}",
            f"recipients: {p.recipients}",
            f"withdrawal_method: {p.withdrawal_method}",
            "",
        ]
    return lines


def side_by_side(a: PolicyVersion, b: PolicyVersion) -> list[DiffRow]:
    """Return aligned rows of `a` (left) and `b` (right) with the kind of change of each."""
    left, right = version_lines(a), version_lines(b)
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        span = max(i2 - i1, j2 - j1)
        for k in range(span):
            li, rj = i1 + k, j1 + k
            rows.append(
                DiffRow(
                    kind=tag,
                    left_no=li + 1 if li < i2 else None,
                    left=left[li] if li < i2 else "",
                    right_no=rj + 1 if rj < j2 else None,
                    right=right[rj] if rj < j2 else "",
                )
            )
    return rows
