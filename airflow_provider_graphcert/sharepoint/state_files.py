"""Recognise the provider's own state files in a local folder, whatever name they were written under.

Downloads leave a manifest beside the files and, after a crash, temp files of unfinished writes.
When that folder is later uploaded (a common round trip: pull, transform in place, push), those
must not travel to SharePoint as if they were the user's data. One predicate for every job that
walks a local folder, so a new state name only has to be taught here.
"""

from __future__ import annotations

import re

from airflow_provider_graphcert.sharepoint.manifest import MANIFEST_NAME

# The manifest name of the first releases, kept so folders written by them are recognised too.
LEGACY_MANIFEST_NAME = ".graphcert-manifest.json"
# atomic_writer's temp names: "." + final name + "." + mkstemp's 8 random characters + ".part".
_TEMP_WRITE = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$")
# SharePoint refuses any name containing "_vti_" (it is reserved for its own files), so state kept
# under such a name can never collide with a user's file in either direction.
SHAREPOINT_RESERVED_MARKER = "_vti_"


def is_own_state_file(name: str) -> bool:
    """True for a file (or folder) name that one of our jobs wrote for itself, not for the user."""
    return (
        name in (MANIFEST_NAME, LEGACY_MANIFEST_NAME)
        or _TEMP_WRITE.match(name) is not None
        or SHAREPOINT_RESERVED_MARKER in name.casefold()
    )
