"""Trial keys: how a record is named in the store and on the command line.

* A record with an NCT id is keyed by it: ``NCT06518668``.
* A record without one (some registry pages show none) is keyed by the
  organization's own study id: ``ORG-2024-0530`` (upper-cased, every run of
  characters other than letters and digits replaced by one ``-``).
* A record with neither is keyed by its title: ``TITLE-`` and the first ten hex
  digits of the SHA-1 of the title's matching form.

Keys of other registries carry their registry's prefix; the rules of every
registry, and which source a key belongs to, are in :mod:`monitor.sources.registry`
(``check_key`` there reads a key typed by a user).
"""

from __future__ import annotations

import hashlib
import re

from monitor.normalize.text import identity

NCT_ID = re.compile(r"NCT[0-9]{8}")  # ASCII digits only: NCT０６３０２５５６ is not an id
LOCAL_KEY = re.compile(r"ORG-[A-Z0-9][A-Z0-9-]*|TITLE-[0-9a-f]{10}")  # records without an NCT id


def record_key(nct_id: str | None, org_study_id: str | None, title: str | None) -> str:
    if nct_id:
        return nct_id
    if org_study_id:
        slug = re.sub(r"[^A-Z0-9]+", "-", org_study_id.upper()).strip("-")
        if slug:
            return f"ORG-{slug}"
    digest = hashlib.sha1(identity(title).encode()).hexdigest()[:10]
    return f"TITLE-{digest}"
