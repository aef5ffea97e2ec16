"""Trial keys: how a record is named in the store and on the command line.

* A record with an NCT id is keyed by it: ``NCT06518668``.
* A record without one (some registry pages show none) is keyed by the
  organization's own study id: ``ORG-2024-0530`` (upper-cased, every run of
  characters other than letters and digits replaced by one ``-``).
* A record with neither is keyed by its title: ``TITLE-`` and the first ten hex
  digits of the SHA-1 of the title's matching form.
"""

from __future__ import annotations

import hashlib
import re

from monitor.errors import UsageError
from monitor.normalize.text import identity

NCT_ID = re.compile(r"NCT[0-9]{8}")  # ASCII digits only: NCT０６３０２５５６ is not an id
_KEY = re.compile(r"NCT[0-9]{8}|ORG-[A-Z0-9][A-Z0-9-]*|TITLE-[0-9a-f]{10}")


def record_key(nct_id: str | None, org_study_id: str | None, title: str | None) -> str:
    if nct_id:
        return nct_id
    if org_study_id:
        slug = re.sub(r"[^A-Z0-9]+", "-", org_study_id.upper()).strip("-")
        if slug:
            return f"ORG-{slug}"
    digest = hashlib.sha1(identity(title).encode()).hexdigest()[:10]
    return f"TITLE-{digest}"


def check_key(text: str) -> str:
    """A trial key typed by a user, checked; NCT ids are case-insensitive."""
    candidate = text.strip()
    if candidate[:3].upper() == "NCT":
        candidate = candidate.upper()
        if not NCT_ID.fullmatch(candidate):
            raise UsageError(f"{text} is not an NCT id (NCT followed by 8 digits)")
        return candidate
    if _KEY.fullmatch(candidate):
        return candidate
    raise UsageError(
        f"{text} is not a trial key: use an NCT id (NCT followed by 8 digits) "
        "or a key shown by `monitor load` such as ORG-2024-0530"
    )
