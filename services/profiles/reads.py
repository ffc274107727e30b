"""The hottest read, one employee by HRIS id, as one statement on the plain asyncpg pool:
no ORM session, and the row serialized by the same `EmployeeOut` model as every other
answer. The visibility rules stay in `api.get_employee`."""

import json
import uuid

import asyncpg

from services.profiles.schemas import EmployeeOut

# Exactly the columns the answer shows (EmployeeOut's fields are Person's column names).
_EMPLOYEE = (
    f"SELECT {', '.join(EmployeeOut.model_fields)} FROM person"
    " WHERE org_id = $1 AND external_id = $2"
)


async def employee_json(
    pool: asyncpg.Pool, org_id: uuid.UUID, external_id: str
) -> tuple[bytes, int] | None:
    """An employee of the organization as JSON, and its version (the ETag); None if the
    organization has no such employee."""
    row = await pool.fetchrow(_EMPLOYEE, org_id, external_id)
    if row is None:
        return None
    record = dict(row)
    record["attributes"] = json.loads(record["attributes"])  # jsonb: text from asyncpg
    employee = EmployeeOut.model_validate(record)
    return employee.model_dump_json().encode(), employee.version
