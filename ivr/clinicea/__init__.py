"""The Clinicea client: the only code that speaks HTTP to Clinicea.

```python
client = CliniceaClient.from_settings(settings, base_url=sandbox_url)
patients = client.search_patients(phone)               # list[Patient]
visits = client.past_completed_visits(patients[0].id)  # list[Visit], newest first
```

Errors are drawn in `ivr.clinicea.errors`; the operation table is `ivr.clinicea.endpoints`.
"""

from __future__ import annotations

from ivr.clinicea.auth import DEFAULT_TOKEN_TTL, Credentials, TokenCache
from ivr.clinicea.client import DEFAULT_BUDGET, DEFAULT_TIMEOUT, CliniceaClient, RequestHook
from ivr.clinicea.endpoints import DEFAULT_ENDPOINTS, OPERATIONS, Endpoint, merge_endpoints
from ivr.clinicea.errors import (
    CliniceaAuthError,
    CliniceaError,
    CliniceaOutcomeUnknown,
    CliniceaRejected,
    CliniceaUnavailable,
)
from ivr.clinicea.models import (
    DEFAULT_COMPLETED_STATUSES,
    Appointment,
    AppointmentRequest,
    BookingResult,
    ClinicInfo,
    NewPatientRequest,
    Patient,
    Visit,
)

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_COMPLETED_STATUSES",
    "DEFAULT_ENDPOINTS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOKEN_TTL",
    "OPERATIONS",
    "Appointment",
    "AppointmentRequest",
    "BookingResult",
    "ClinicInfo",
    "CliniceaAuthError",
    "CliniceaClient",
    "CliniceaError",
    "CliniceaOutcomeUnknown",
    "CliniceaRejected",
    "CliniceaUnavailable",
    "Credentials",
    "Endpoint",
    "NewPatientRequest",
    "Patient",
    "RequestHook",
    "TokenCache",
    "Visit",
    "merge_endpoints",
]
