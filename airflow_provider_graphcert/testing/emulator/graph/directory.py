"""Users and groups, generated from their index on demand."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

# -- directory ---------------------------------------------------------------------------------

_FIRST_NAMES = (
    "Adele", "Alex", "Diego", "Grady", "Henrietta", "Isaiah", "Johanna", "Joni", "Lee", "Lidia",
    "Lynne", "Megan", "Miriam", "Nestor", "Patti", "Pradeep", "Sakura", "Zoë", "Émile", "Ngozi",
)  # fmt: skip
_LAST_NAMES = (
    "Vance", "Wilber", "Siciliani", "Archie", "Cantrell", "Langer", "Lauer", "Sherman", "Gu", "Holloway",
    "Robbins", "Bowen", "Graham", "Wilke", "Fernandez", "Gupta", "Tanaka", "Müller", "O'Brien", "Okafor",
)  # fmt: skip
_DEPARTMENTS = ("Finance", "Engineering", "Sales", "Marketing", "Operations", "Legal", "HR", "Research")
_CITIES = ("Seattle", "Dublin", "Berlin", "Tokyo", "Lagos", "São Paulo", "Bengaluru", "Paris")


class Directory:
    """Users or groups generated from their index on demand: ``add(1_000_000)`` costs nothing.

    Ids are GUIDs whose low 48 bits are the index, so a lookup by id needs no table either.
    """

    def __init__(self, kind: Literal["user", "group"], domain: str, created: dt.datetime) -> None:
        self.kind = kind
        self.domain = domain
        self.count = 0
        self._base = uuid.uuid4().int & ~((1 << 48) - 1)
        self._created = created

    def add(self, n: int) -> range:
        """Add ``n`` entries; returns their indexes."""
        start = self.count
        self.count += n
        return range(start, self.count)

    def id_of(self, index: int) -> str:
        return str(uuid.UUID(int=self._base | index))

    def index_of(self, object_id: str) -> int | None:
        try:
            value = uuid.UUID(object_id).int
        except ValueError:
            return None
        index = value & ((1 << 48) - 1)
        if value - index != self._base or index >= self.count:
            return None
        return index

    def entry(self, index: int) -> dict[str, Any]:
        return self._user(index) if self.kind == "user" else self._group(index)

    def sample_entry(self) -> dict[str, Any]:
        """An entry with every property, to check property names even in an empty directory."""
        return self.entry(0)

    def entries(self, start: int, stop: int) -> list[dict[str, Any]]:
        return [self.entry(i) for i in range(start, min(stop, self.count))]

    def _user(self, index: int) -> dict[str, Any]:
        given = _FIRST_NAMES[index % len(_FIRST_NAMES)]
        surname = _LAST_NAMES[(index // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
        alias = f"user{index:06d}"
        upn = f"{alias}@{self.domain}"
        return {
            "id": self.id_of(index),
            "businessPhones": [f"+1 425 555 {index % 10000:04d}"],
            "displayName": f"{given} {surname} {index}",
            "givenName": given,
            "jobTitle": "Analyst" if index % 3 else "Engineer",
            "mail": upn,
            "mobilePhone": None,
            "officeLocation": f"{index % 40}/{index % 1000}",
            "preferredLanguage": "en-US",
            "surname": surname,
            "userPrincipalName": upn,
            # Non-default properties, returned only when $select names them.
            "accountEnabled": index % 50 != 0,
            "department": _DEPARTMENTS[index % len(_DEPARTMENTS)],
            "city": _CITIES[index % len(_CITIES)],
            "mailNickname": alias,
            "usageLocation": "US",
            "employeeId": f"E{index:07d}",
            "createdDateTime": _iso(self._created),
        }

    def _group(self, index: int) -> dict[str, Any]:
        nickname = f"group{index:06d}"
        unified = index % 2 == 0
        return {
            "id": self.id_of(index),
            "createdDateTime": _iso(self._created),
            "description": f"{_DEPARTMENTS[index % len(_DEPARTMENTS)]} team {index}",
            "displayName": f"{_DEPARTMENTS[index % len(_DEPARTMENTS)]} {index}",
            "groupTypes": ["Unified"] if unified else [],
            "mail": f"{nickname}@{self.domain}" if unified else None,
            "mailEnabled": unified,
            "mailNickname": nickname,
            "securityEnabled": not unified,
            "visibility": "Private" if unified else None,
        }


USER_DEFAULT_PROPERTIES = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
)  # fmt: skip
GROUP_DEFAULT_PROPERTIES = (
    "id", "createdDateTime", "description", "displayName", "groupTypes", "mail", "mailEnabled",
    "mailNickname", "securityEnabled", "visibility",
)  # fmt: skip


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
