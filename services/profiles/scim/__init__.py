"""SCIM 2.0 provisioning (RFC 7643/7644) at /scim/v2, on the same people as /v1/employees.

The protocol (routing, validation, PUT and PATCH semantics, `attributes` projection,
`If-Match`, the SCIM error schema) is scim2-server's; this package is its storage: people
and groups in this service's database (`storage`, `users`, `groups`, `filters` to SQL),
the identity providers' dialects (`patch`) and the ASGI application (`app`).

How a SCIM User maps onto an employee (the `person` row):
- `id` is the person's id (a UUID the service assigns); `meta.version` is a hash of the
  representation, so it changes whenever the SCIM view changes.
- `externalId` is the identity provider's id for the person: not unique, maybe absent. A
  SCIM-created person's employee `external_id` (the HRIS id keying /v1/employees and
  every event) is their `externalId` when nobody has that HRIS id yet, or when its
  employee is not provisioned (then that employee is taken over, not duplicated);
  otherwise (reused, or absent) it is their SCIM `id`. Afterwards the two are
  independent (the employee is never renamed). People synced through /v1/employees
  start with `externalId` = their HRIS id.
- `userName` (unique per organization, case-insensitive) is stored as given; people who
  were never provisioned show their email, or else their HRIS id.
- Columns win for what they map: `name.givenName`/`name.familyName`, `displayName`,
  `title`, `timezone` (IANA; the schema lists the valid names as canonicalValues),
  the primary (or first) `emails` value = `email`, `active` (false = `inactive`, which
  offboards: `person.deactivated`, enrollments withdrawn; true or unassigned = active,
  `leave` staying `leave`), and the enterprise
  extension's `department`, `division`, `costCenter` and `manager` (its `value` is the
  manager's SCIM id, HRIS id or externalId; stored as their HRIS id; someone not here
  yet is a forward reference, linked when they arrive). Everything else (phone numbers,
  addresses, roles...) is kept as sent, in `person.scim`.
- `DELETE` offboards the person and deprovisions them: the SCIM resource is gone (404),
  the employee stays, inactive, for history.
Groups are SCIM-only (no events): `scim_group` and `scim_group_member` rows.
"""

from services.profiles.scim.app import application

__all__ = ["application"]
