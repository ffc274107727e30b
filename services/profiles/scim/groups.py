"""SCIM Groups: SCIM-only rows (no events), members are people or groups."""

import asyncio
import copy
import uuid
from typing import Any

from scim2_models import (
    NotFoundException,
    Resource,
)
from sqlalchemy import (
    delete,
    select,
)

from services.profiles.models import Person, ScimGroup, ScimGroupMember
from services.profiles.scim.core import (
    GROUP_SCHEMA,
    as_uuid,
    check_size,
    current,
    provisioned,
    resource_of,
    set_value,
    stored_document,
)
from shared.db import utcnow


async def _group_members(group_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    if not group_ids:
        return {}
    rows = await current().session.execute(
        select(ScimGroupMember.group_id, ScimGroupMember.member_id).where(
            ScimGroupMember.group_id.in_(group_ids)
        )
    )
    found: dict[uuid.UUID, set[str]] = {}
    for group_id, member_id in rows.tuples():
        found.setdefault(group_id, set()).add(str(member_id))
    return found


def group_document(group: ScimGroup, members: set[str]) -> dict[str, Any]:
    """A group's SCIM representation: as written, less members since removed."""
    doc = copy.deepcopy(group.scim)
    doc["id"] = str(group.id)
    doc["schemas"] = [GROUP_SCHEMA]
    doc["displayName"] = group.display_name
    set_value(doc, "externalId", group.external_id)
    set_value(doc, "members", [m for m in doc.get("members") or [] if m.get("value") in members])
    return doc


async def group_resources(
    model: type[Resource[Any]], groups: list[ScimGroup]
) -> list[Resource[Any]]:
    members = await _group_members([g.id for g in groups])

    def render() -> list[Resource[Any]]:
        return [
            resource_of(
                model,
                "Group",
                group_document(g, members.get(g.id, set())),
                g.created_at,
                g.updated_at,
            )
            for g in groups
        ]

    # Off the event loop for a page (see users.user_resources).
    return render() if len(groups) <= 1 else await asyncio.to_thread(render)


async def get_group(resource_id: str | None, *, for_update: bool = False) -> ScimGroup:
    ctx = current()
    group_id = as_uuid(resource_id)
    query = select(ScimGroup).where(ScimGroup.org_id == ctx.org_id, ScimGroup.id == group_id)
    group = (
        await ctx.session.scalar(query.with_for_update() if for_update else query)
        if group_id
        else None
    )
    if group is None:
        raise NotFoundException(detail=f"Group {resource_id!r} not found")
    return group


async def _member_rows(group_id: uuid.UUID, doc: dict[str, Any]) -> list[ScimGroupMember]:
    """The members that are users or groups of the organization. Others (not provisioned
    yet, or not ids at all) are kept in the representation the client wrote but are not
    members, and the group shows without them: identity providers add members in any
    order, and refusing the whole request would lose the known ones too."""
    ctx = current()
    wanted = {m.get("value") for m in doc.get("members") or [] if isinstance(m, dict)}
    ids = {i for i in (as_uuid(v) for v in wanted) if i is not None}
    people = set(
        await ctx.session.scalars(
            select(Person.id).where(provisioned(ctx.org_id), Person.id.in_(ids))
        )
    )
    groups = set(
        await ctx.session.scalars(
            select(ScimGroup.id).where(ScimGroup.org_id == ctx.org_id, ScimGroup.id.in_(ids))
        )
    )
    return [
        ScimGroupMember(
            group_id=group_id, member_id=i, member_type="User" if i in people else "Group"
        )
        for i in ids
        if i in people or i in groups
    ]


async def write_group(group: ScimGroup | None, resource: Resource[Any]) -> ScimGroup:
    ctx = current()
    doc = stored_document(resource)
    check_size(doc, unbounded=("members",))
    if group is None:
        group = ScimGroup(
            id=uuid.uuid4(), org_id=ctx.org_id, display_name=doc.get("displayName"), version=0
        )
        ctx.session.add(group)
        await ctx.session.flush()
    rows = await _member_rows(group.id, doc)
    group.display_name = doc.get("displayName") or ""
    group.external_id = doc.get("externalId")
    group.scim = doc
    group.version += 1
    group.updated_at = utcnow()
    await ctx.session.execute(delete(ScimGroupMember).where(ScimGroupMember.group_id == group.id))
    ctx.session.add_all(rows)
    await ctx.session.flush()
    return group
