"""The service description: schemas, resource types and capabilities."""

import zoneinfo

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    Filter,
    Patch,
    ResourceType,
    Schema,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
)
from scim2_server.utils import load_default_resource_types, load_default_schemas

from services.profiles.scim.core import MAX_PAYLOAD, MAX_RESULTS, USER_SCHEMA


def build_provider() -> ScimProvider:
    """RFC 7643's User (with the enterprise extension) and Group, as served here."""
    schemas = load_default_schemas()
    user = schemas[USER_SCHEMA]
    # People authenticate with their identity provider, never with us: no passwords.
    user.attributes = [a for a in user.attributes or [] if a.name != "password"]
    for attribute in user.attributes:
        if attribute.name == "timezone":
            attribute.canonical_values = sorted(zoneinfo.available_timezones())
    discovery = [ServiceProviderConfig.to_schema(), ResourceType.to_schema(), Schema.to_schema()]
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=MAX_PAYLOAD),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="API key",
                description="Authorization: Bearer <Mentorbus API key>",
                primary=True,
            )
        ],
    )
    return ScimProvider.from_discovery(
        [*schemas.values(), *discovery], load_default_resource_types().values(), config=config
    )
