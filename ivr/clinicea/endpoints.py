"""THE table: each logical Clinicea operation mapped to one HTTP request.

Several of Clinicea's real paths and parameter names are not public (see
`../shared/docs/clinicea-api.md` §2 and §6), so everything the client knows about them is here
and nowhere else. A clinic whose Clinicea reference differs overrides entries from its config:

```toml
[endpoints.search]
method = "GET"
path = "/api/v1/patients/searchByMobileNumber"
params = { mobile = "patMobile", country_code = "countryCode" }
```

`params` maps the client's logical parameter names to the names on the wire; an override merges
over the default mapping, so a clinic renames only what differs. `token` is the query parameter
that carries the session token on every operation but `login`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["DEFAULT_ENDPOINTS", "OPERATIONS", "Endpoint", "merge_endpoints"]


@dataclass(frozen=True)
class Endpoint:
    """One HTTP request: method, path under the base URL, and logical -> wire parameter names."""

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only so a shared default table cannot be changed by one client.
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def wire(self, name: str) -> str:
        """The on-the-wire name of logical parameter `name` (itself when not renamed)."""
        return self.params.get(name, name)


_TOKEN = {"token": "api_key"}
_APPOINTMENT = {
    "start": "appointmentDateTime",
    "doctor_id": "staffID",
    "clinic_id": "clinicID",
    "service_id": "serviceID",
    "notes": "notes",
}

DEFAULT_ENDPOINTS: Mapping[str, Endpoint] = MappingProxyType(
    {
        "login": Endpoint(
            "GET",
            "/api/v2/login/getTokenByStaffUsernamePwd",
            {"api_key": "apiKey", "username": "loginUserName", "password": "pwd"},
        ),
        "search": Endpoint(
            "GET",
            "/api/v2/patients/searchPatientByMobileNumber",
            {**_TOKEN, "mobile": "patmobile", "country_code": "countrycode"},
        ),
        "past_visits": Endpoint(
            "GET",
            "/api/v2/appointments/getPatientPastCompletedAppointment",
            {**_TOKEN, "patient_id": "patientID"},
        ),
        "patient_appointments": Endpoint(
            "GET",
            "/api/v2/appointments/getAppointmentsByPatient",
            {**_TOKEN, "patient_id": "patientID", "type": "appointmentType", "page_no": "pageNo",
             "page_size": "pageSize"},
        ),
        "appointments_by_date": Endpoint(
            "GET",
            "/api/v3/appointments/getAppointmentsByDate",
            {**_TOKEN, "date": "appointmentDate", "page_no": "pageNo", "page_size": "pageSize"},
        ),
        "book": Endpoint(
            "POST",
            "/api/v2/appointments/postAppointmentByPatientID",
            {**_TOKEN, "patient_id": "patientID", **_APPOINTMENT},
        ),
        "register_and_book": Endpoint(
            "POST",
            "/api/v2/appointments/postAppointment",
            {
                **_TOKEN,
                "first_name": "firstName",
                "last_name": "lastName",
                "mobile": "mobile",
                "mobile_country_code": "mobileCountryCode",
                **_APPOINTMENT,
            },
        ),
    }
)

OPERATIONS: tuple[str, ...] = tuple(DEFAULT_ENDPOINTS)

_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
_KEYS = {"method", "path", "params"}


def merge_endpoints(
    overrides: Mapping[str, Mapping[str, Any] | Endpoint] | None,
    base: Mapping[str, Endpoint] = DEFAULT_ENDPOINTS,
) -> dict[str, Endpoint]:
    """The endpoint table with a clinic's overrides merged over `base`.

    Each override is an `Endpoint` or a mapping with any of `method`, `path`, `params`.
    Raises ValueError for an unknown operation, an unknown key, a method that is not an HTTP
    method, or a path that does not start with "/": a typo in the clinic's config must stop
    the app at start-up, not fail a caller's booking later. Any method but GET counts as a
    write (never retried, never sent twice).
    """
    table = dict(base)
    for operation, override in (overrides or {}).items():
        if operation not in table:
            known = ", ".join(sorted(table))
            raise ValueError(f"endpoints: unknown operation {operation!r} (known: {known})")
        if isinstance(override, Endpoint):
            table[operation] = override
            continue
        if not isinstance(override, Mapping):
            raise ValueError(f"endpoints.{operation}: expected a table of method/path/params")
        unknown = set(override) - _KEYS
        if unknown:
            raise ValueError(f"endpoints.{operation}: unknown key(s) {sorted(unknown)}")
        current = table[operation]
        method = str(override.get("method", current.method)).upper()
        path = str(override.get("path", current.path))
        params = override.get("params", {})
        if method not in _METHODS:
            raise ValueError(f"endpoints.{operation}.method: {method!r} is not an HTTP method")
        if not path.startswith("/"):
            raise ValueError(f"endpoints.{operation}.path: must start with '/'")
        if not isinstance(params, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in params.items()
        ):
            raise ValueError(f"endpoints.{operation}.params: expected a table of strings")
        table[operation] = Endpoint(method, path, {**current.params, **params})
    return table
