"""scim2-server's storage: people and groups in this service's database."""

from typing import Any, cast

from scim2_models import (
    InvalidFilterException,
    InvalidValueException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    ScimProvider,
    SearchRequest,
)
from scim2_server.storage import AsyncScimStorage, SearchPage
from sqlalchemy import (
    delete,
    func,
    select,
    true,
)

from services.profiles import domain
from services.profiles.models import Person, ScimGroup, ScimGroupMember
from services.profiles.scim.core import MAX_RESULTS, MAX_START_INDEX, current, provisioned
from services.profiles.scim.filters import Unsupported, group_filter, user_filter
from services.profiles.scim.groups import get_group, group_resources, write_group
from services.profiles.scim.users import get_person, user_resources, write_user
from shared.db import utcnow


class PeopleStorage(AsyncScimStorage):
    """SCIM Users are people (see the module notes); Groups are SCIM-only."""

    def __init__(self, provider: ScimProvider) -> None:
        self.provider = provider

    def _model(self, resource_type: ResourceType) -> type[Resource[Any]]:
        return cast(type[Resource[Any]], self.provider.model_for(resource_type))

    async def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        """One User or Group of the caller's organization."""
        model = self._model(resource_type)
        if resource_type.name == "User":
            return (await user_resources(model, [await get_person(resource_id)]))[0]
        return (await group_resources(model, [await get_group(resource_id)]))[0]

    async def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        """A page of Users or Groups (or of both, for a search at the root), filtered and
        paged in SQL: at most `startIndex + count` rows are read per resource type, and a
        filter outside the SQL translation is refused (`invalidFilter`), never evaluated
        on the whole organization."""
        start = search_request.start_index_0 or 0
        if start > MAX_START_INDEX:
            raise InvalidValueException(detail=f"startIndex must be at most {MAX_START_INDEX}")
        count = (
            MAX_RESULTS if search_request.count is None else min(search_request.count, MAX_RESULTS)
        )
        scim_filter = search_request.filter
        if len(resource_types) == 1:
            return await self._search_one(resource_types[0], scim_filter, start, count)
        # At the root, every type is one collection, oldest first: the page is within the
        # first `start + count` of each type.
        total = 0
        found: list[tuple[Any, str, Resource[Any]]] = []
        refused: list[InvalidFilterException] = []
        for resource_type in resource_types:
            try:
                page = await self._search_one(resource_type, scim_filter, 0, start + count)
            except InvalidFilterException as exc:
                # Attributes of another type (userName on Groups) match nothing there.
                refused.append(exc)
                continue
            total += page.total or 0
            found += [(r.meta.created if r.meta else None, str(r.id), r) for r in page.resources]
        if len(refused) == len(resource_types):
            raise refused[0]
        found.sort(key=lambda item: (item[0], item[1]))
        return SearchPage(total, [r for _, _, r in found[start : start + count]])

    async def _search_one(
        self,
        resource_type: ResourceType,
        scim_filter: ScimFilter[Any] | None,
        start: int,
        count: int,
    ) -> SearchPage:
        model = self._model(resource_type)
        ctx = current()
        is_user = resource_type.name == "User"
        entity: Any = Person if is_user else ScimGroup
        base = provisioned(ctx.org_id) if is_user else ScimGroup.org_id == ctx.org_id
        render = user_resources if is_user else group_resources
        try:
            condition = (
                (user_filter if is_user else group_filter)(scim_filter.ast)
                if scim_filter is not None
                else true()
            )
        except Unsupported as exc:
            raise InvalidFilterException(
                detail=f"filter {str(scim_filter)!r} is not supported on {resource_type.name}s"
                + (f": {exc}" if str(exc) else "")
            ) from None
        order = (entity.created_at, entity.id)
        total = await ctx.session.scalar(
            select(func.count()).select_from(entity).where(base, condition)
        )
        if count <= 0:
            return SearchPage(total or 0, [])
        query = select(entity).where(base, condition).order_by(*order).offset(start)
        rows = list(await ctx.session.scalars(query.limit(count)))
        return SearchPage(total or 0, await render(model, rows))

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        """Provision a User (or take over the HRIS employee it names) or create a Group."""
        if resource_type.name == "User":
            person = await write_user(None, resource)
            return (await user_resources(self._model(resource_type), [person]))[0]
        group = await write_group(None, resource)
        return (await group_resources(self._model(resource_type), [group]))[0]

    async def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        """Replace a User or Group with its whole new state (PUT and PATCH)."""
        model = self._model(resource_type)
        if resource_type.name == "User":
            person = await get_person(resource.id, for_update=True)
            await self._checkversion_of(model, resource_type, resource.id, expected_version)
            person = await write_user(person, resource)
            return (await user_resources(model, [person]))[0]
        group = await get_group(resource.id, for_update=True)
        await self._checkversion_of(model, resource_type, resource.id, expected_version)
        group = await write_group(group, resource)
        return (await group_resources(model, [group]))[0]

    async def _checkversion_of(
        self,
        model: type[Resource[Any]],
        resource_type: ResourceType,
        resource_id: str | None,
        expected_version: str | None,
    ) -> None:
        if expected_version is None:
            return
        current = await self.get(resource_type, cast(str, resource_id))
        if current.meta is None or current.meta.version != expected_version:
            raise PreconditionFailedException(detail="the resource changed meanwhile")

    async def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        """Deprovision a User (offboarding the person) or delete a Group."""
        ctx = current()
        model = self._model(resource_type)
        if resource_type.name == "User":
            person = await get_person(resource_id, for_update=True)
            await self._checkversion_of(model, resource_type, resource_id, expected_version)
            await domain.offboard_employee(ctx.session, ctx.org_id, person.external_id)
            person.scim_deleted_at = utcnow()
            await ctx.session.execute(
                delete(ScimGroupMember).where(ScimGroupMember.member_id == person.id)
            )
            await ctx.session.flush()
            return
        group = await get_group(resource_id, for_update=True)
        await self._checkversion_of(model, resource_type, resource_id, expected_version)
        await ctx.session.execute(
            delete(ScimGroupMember).where(ScimGroupMember.member_id == group.id)
        )
        await ctx.session.delete(group)
        await ctx.session.flush()
