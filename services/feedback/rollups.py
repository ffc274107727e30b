"""Daily rollups behind the analytics (see migration 0004): adjusted in the same
transaction as the change they count. No HTTP and no Kafka here."""

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_ADD_ANSWER = text(
    """
    INSERT INTO feedback_daily AS d
        (program_id, day, role, ratings, rating_sum, promoters, passives, detractors)
    VALUES (:program_id, (CAST(:at AS timestamptz) AT TIME ZONE 'UTC')::date, :role, :ratings,
            :rating_sum, :promoters, :passives, :detractors)
    ON CONFLICT (program_id, day, role) DO UPDATE SET
        ratings = d.ratings + excluded.ratings,
        rating_sum = d.rating_sum + excluded.rating_sum,
        promoters = d.promoters + excluded.promoters,
        passives = d.passives + excluded.passives,
        detractors = d.detractors + excluded.detractors
    """
)


_ADD_MATCH_ANSWER = text(
    """
    INSERT INTO match_feedback AS t (match_id, ratings, rating_sum)
    VALUES (:match_id, :ratings, :rating_sum)
    ON CONFLICT (match_id) DO UPDATE SET
        ratings = t.ratings + excluded.ratings, rating_sum = t.rating_sum + excluded.rating_sum
    """
)


async def count_answer(
    session: AsyncSession,
    program_id: uuid.UUID | None,
    match_id: uuid.UUID | None,
    at: datetime,
    role: str | None,
    rating: int,
    nps: int | None,
    sign: int = 1,
) -> None:
    """Add (`sign` 1) or take back (-1) one answer in its program's day and its match's
    running totals."""
    if match_id is not None:
        await session.execute(
            _ADD_MATCH_ANSWER, {"match_id": match_id, "ratings": sign, "rating_sum": sign * rating}
        )
    if program_id is None:
        return
    await session.execute(
        _ADD_ANSWER,
        {
            "program_id": program_id,
            "at": at,
            "role": role or "",
            "ratings": sign,
            "rating_sum": sign * rating,
            "promoters": sign * (nps is not None and nps >= 9),
            "passives": sign * (nps is not None and 7 <= nps <= 8),
            "detractors": sign * (nps is not None and nps <= 6),
        },
    )


_ADD_OCCURRENCE = text(
    """
    INSERT INTO session_daily AS d (program_id, day, status, occurrences)
    VALUES (:program_id, (CAST(:at AS timestamptz) AT TIME ZONE 'UTC')::date, :status, :sign)
    ON CONFLICT (program_id, day, status) DO UPDATE SET occurrences = d.occurrences + :sign
    """
)


async def count_occurrence(
    session: AsyncSession,
    program_id: uuid.UUID | None,
    at: datetime,
    status: str,
    sign: int = 1,
) -> None:
    """Add (`sign` 1) or take back (-1) one occurrence outcome in its program's day."""
    if program_id is None:
        return
    await session.execute(
        _ADD_OCCURRENCE, {"program_id": program_id, "at": at, "status": status, "sign": sign}
    )
