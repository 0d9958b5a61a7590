"""Names of registered models, versions and aliases: they appear in lineage keys, URLs and audit
targets, so they are held to one pattern."""

from __future__ import annotations

import re

from core.errors import ApplicationError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


def name_check(value: str, field: str) -> None:
    """Refuse `value` (a 400 naming `field`) unless it matches NAME_PATTERN."""
    if not re.fullmatch(NAME_PATTERN, value):
        raise ApplicationError(
            f"{field} {value[:60]!r} is not a valid name: 1 to 100 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            field=field,
        )
