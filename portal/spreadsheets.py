"""Helpers for files people open in spreadsheet programs."""


def csv_cell(value) -> str:
    """Stringify for CSV and defuse spreadsheet formulas (=, +, -, @, tab, CR at the start)."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
