"""What the HTTPS API's function serves with: status lookups, submissions, and who an API key belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailwright.preference_changes import PreferenceAdmin
from mailwright.producers import NoProducers, ProducerDirectory
from mailwright.scheduling import ScheduleDesk
from mailwright.status import StatusService
from mailwright.submission import SubmissionService


@dataclass(frozen=True)
class ApiServices:
    """The services of one API container; `submissions` is None where producers cannot submit (a status-only API)."""

    status: StatusService
    submissions: SubmissionService | None = None
    producers: ProducerDirectory = field(default_factory=NoProducers)
    # Cancels scheduled requests (POST /v1/messages/{request_id}/cancel); None: this API cancels nothing.
    schedules: ScheduleDesk | None = None
    # Users' preferences (GET|PATCH /v1/users/{user_id}/preferences), each change audited; None: not served here.
    preferences: PreferenceAdmin | None = None
