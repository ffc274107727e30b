"""Who may act on a match's track and agreement: its participants, or an admin for them."""

from services.feedback.models import MatchProjection
from shared.errors import Forbidden
from shared.identity import Caller


def acting_participant(
    caller: Caller, match: MatchProjection, employee_external_id: str | None
) -> tuple[str, str]:
    """Who acts, and as which role: a member acts as themselves; an admin (or API key)
    names the participant. Anyone else is refused (403)."""
    actor = employee_external_id
    if caller.is_member:
        if actor is not None and actor != caller.subject:
            raise Forbidden("a member acts only as themselves")
        actor = caller.subject
    if actor is None:
        raise Forbidden("name the participant (employee_external_id) you act for")
    role = match.participants().get(actor)
    if role is None:
        raise Forbidden(f"{actor!r} is not a participant of match {match.id}")
    return actor, role
