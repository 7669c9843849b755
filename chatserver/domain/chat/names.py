"""The namespaces and queue lanes the rules name."""

from __future__ import annotations

from chatserver.domain.model import Role

YOUTH_NS = "/youth"
LIAISON_NS = "/liaison"
STAFF_NS = "/staff"
ROLE_NAMESPACE = {Role.YOUTH: YOUTH_NS, Role.COUNSELLOR: STAFF_NS, Role.LIAISON: LIAISON_NS}
PROFESSIONAL_LANE = "professional"


def personal_lane(staff_id: int) -> str:
    """Where a returning youth waits for the counsellor they came back to."""
    return f"personal:{staff_id}"
