"""The user import's value formats, where they differ from what ListUsers returns.

Source: the developer guide, "Creating the user import .csv file": birthdate must be mm/dd/yyyy (ListUsers
gives OIDC's YYYY-MM-DD), updated_at epoch time in seconds (pools hold a number, or an ISO 8601 time when an
app wrote one), and a row is at most 16,000 characters. Pure functions; ``stragglers`` builds the file.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime

MAX_ROW_CHARS = 16_000  # Cognito's longest import row


def import_values(attributes: Mapping[str, str], blanked: Counter[str]) -> dict[str, str]:
    """The attributes in the import's format: birthdate mm/dd/yyyy, updated_at epoch seconds. A value that
    has no such form (a birthdate without its year, an unreadable time) is left empty and counted."""
    values = dict(attributes)
    for name, convert in (("birthdate", import_birthdate), ("updated_at", import_updated_at)):
        if values.get(name):
            converted = convert(values[name])
            if not converted:
                blanked[name] += 1
            values[name] = converted
    return values


_OIDC_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
_IMPORT_DATE = re.compile(r"^[0-9]{2}/[0-9]{2}/[0-9]{4}$")


def import_birthdate(value: str) -> str:
    """OIDC's YYYY-MM-DD as mm/dd/yyyy; '' for a date without a year (0000-MM-DD) or in another form."""
    if _IMPORT_DATE.match(value):
        return value
    match = _OIDC_DATE.match(value)
    if not match or match.group(1) == "0000":
        return ""
    year, month, day = match.groups()
    return f"{month}/{day}/{year}"


def import_updated_at(value: str) -> str:
    """Epoch seconds from a number (seconds, or milliseconds when it is that large) or an ISO 8601 time."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return ""
        number = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if number > 1e11:  # milliseconds: seconds would be past the year 5000
        number /= 1000
    return str(int(number)) if number >= 0 else ""
