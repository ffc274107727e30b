"""SCIM filters translated to SQL."""

from datetime import datetime
from typing import Any

from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import (
    String,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy import cast as sql_cast

from services.profiles.models import Person, ScimGroup, ScimGroupMember
from services.profiles.scim.core import ENTERPRISE, USER_SCHEMA, as_uuid


class Unsupported(Exception):
    """A filter the SQL translation does not cover: the search answers `invalidFilter`."""


_ORDERED = {
    CompareOperator.gt: "__gt__",
    CompareOperator.ge: "__ge__",
    CompareOperator.lt: "__lt__",
    CompareOperator.le: "__le__",
}
# Attributes kept only in the stored representation (`person.scim`), by lower-case name:
# their canonical JSON key, for case-insensitive filters on them.
_SIMPLE = {
    n.lower(): n for n in ("nickName", "profileUrl", "userType", "preferredLanguage", "locale")
}
_COMPLEX = {"name": "name"}
_NAME_PARTS = {
    n.lower(): n for n in ("formatted", "middleName", "honorificPrefix", "honorificSuffix")
}
_MULTI = {
    n.lower(): n
    for n in (
        "emails", "phoneNumbers", "ims", "photos", "addresses", "entitlements", "roles",
        "x509Certificates",
    )
}  # fmt: skip
_SUB = {
    n.lower(): n
    for n in (
        "value", "display", "type", "primary", "formatted", "streetAddress", "locality",
        "region", "postalCode", "country",
    )
}  # fmt: skip
_ENTERPRISE_JSON = {n.lower(): n for n in ("employeeNumber", "organization")}


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise Unsupported("meta dates compare with a date-time string")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Unsupported(f"{value!r} is not a date-time") from None


def _time_match(column: Any, op: CompareOperator, value: Any) -> Any:
    moment = _timestamp(value)
    if op == CompareOperator.eq:
        return column == moment
    if op == CompareOperator.ne:
        return column != moment
    if op in _ORDERED:
        return getattr(column, _ORDERED[op])(moment)
    raise Unsupported(f"{op.value} does not apply to dates")


def _meta_column(entity: Any, name: str) -> Any | None:
    return {"meta.created": entity.created_at, "meta.lastmodified": entity.updated_at}.get(name)


def _string_match(column: Any, op: CompareOperator, value: Any, case_exact: bool) -> Any:
    if not isinstance(value, str):
        raise Unsupported
    left = column if case_exact else func.lower(column)
    right = value if case_exact else value.lower()
    if op == CompareOperator.eq:
        return left == right
    if op == CompareOperator.ne:
        return or_(left != right, column.is_(None))
    escaped = right.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if op == CompareOperator.co:
        return left.like(f"%{escaped}%", escape="\\")
    if op == CompareOperator.sw:
        return left.like(f"{escaped}%", escape="\\")
    if op == CompareOperator.ew:
        return left.like(f"%{escaped}", escape="\\")
    if op in _ORDERED:
        return getattr(left, _ORDERED[op])(right)
    raise Unsupported


def _user_column(path: Any) -> tuple[Any, bool]:
    """The column of a User attribute path, and whether it compares case-exactly."""
    uri = (path.uri or "").lower()
    name = f"{path.attr}.{path.sub_attr}" if path.sub_attr else path.attr
    name = name.lower()
    if uri == ENTERPRISE.lower():
        columns = {"department": Person.department, "division": Person.division}
        columns["costcenter"] = Person.cost_center
        if name in columns:
            return columns[name], False
        if name in _ENTERPRISE_JSON:
            return Person.scim[ENTERPRISE].op("->>")(_ENTERPRISE_JSON[name]), False
        raise Unsupported
    if uri not in ("", USER_SCHEMA.lower()):
        raise Unsupported
    user_name = func.coalesce(Person.user_name, Person.email, Person.external_id)
    columns_ci = {
        "username": user_name,
        "displayname": Person.display_name,
        "title": Person.title,
        "name.givenname": Person.given_name,
        "name.familyname": Person.family_name,
        "emails": Person.email,
        "emails.value": Person.email,
    }
    if name in columns_ci:
        return columns_ci[name], False
    if name == "externalid":
        return Person.scim_external_id, True
    if name == "id":
        return sql_cast(Person.id, String), True
    if name in _SIMPLE:
        return Person.scim.op("->>")(_SIMPLE[name]), False
    first, _, part = name.partition(".")
    if first in _COMPLEX and part in _NAME_PARTS:
        return Person.scim[_COMPLEX[first]].op("->>")(_NAME_PARTS[part]), False
    raise Unsupported(f"no filter on {name}")


def _elements(attribute: str) -> Any:
    """The values of a multi-valued attribute kept in `person.scim`, as rows `value`."""
    values = func.coalesce(Person.scim[_MULTI[attribute]], text("'[]'::jsonb"))
    return func.jsonb_array_elements(values).table_valued("value").alias()


def _element_filter(node: FilterNode, element: Any) -> Any:
    """SQL for a filter on the sub-attributes of one value of a multi-valued attribute."""
    if isinstance(node, LogicalExpr):
        terms = [_element_filter(t, element) for t in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)
    if isinstance(node, Not):
        return not_(_element_filter(node.expr, element))
    sub = str(getattr(node, "attr_path", "")).lower()
    if sub not in _SUB:
        raise Unsupported(f"no filter on {sub}")
    field = element.c.value.op("->>")(_SUB[sub])
    if isinstance(node, Present):
        return field.is_not(None)
    if isinstance(node, Comparison):
        if isinstance(node.value, bool):
            if node.op not in (CompareOperator.eq, CompareOperator.ne):
                raise Unsupported
            matches = field == ("true" if node.value else "false")
            return matches if node.op == CompareOperator.eq else not_(matches)
        return _string_match(field, node.op, node.value, False)
    raise Unsupported


def _multi_valued(attribute: str, inner: FilterNode) -> Any:
    element = _elements(attribute)
    return exists(select(literal(1)).select_from(element).where(_element_filter(inner, element)))


def user_filter(node: FilterNode) -> Any:
    """SQL for a User filter, or Unsupported."""
    if isinstance(node, LogicalExpr):
        terms = [user_filter(t) for t in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)
    if isinstance(node, Not):
        return not_(user_filter(node.expr))
    if isinstance(node, ValuePath):
        attribute = str(node.attr_path).lower()
        inner = node.val_filter
        if (
            attribute == "emails"
            and isinstance(inner, Comparison)
            and str(inner.attr_path).lower() == "value"
        ):
            return or_(
                _string_match(Person.email, inner.op, inner.value, False),
                _multi_valued(attribute, inner),
            )
        if attribute in _MULTI:
            return _multi_valued(attribute, inner)
        raise Unsupported(f"no filter on {attribute}")
    name = str(getattr(node, "attr_path", "")).lower()
    meta = _meta_column(Person, name)
    if isinstance(node, Present):
        if name == "active" or meta is not None:
            return true()
        first, _, sub = name.partition(".")
        if first in _MULTI and first != "emails":
            return _multi_valued(first, Present(attr_path=AttrPath(sub or "value")))
        column, _ = _user_column(node.attr_path)
        return column.is_not(None)
    if isinstance(node, Comparison):
        if meta is not None:
            return _time_match(meta, node.op, node.value)
        first, _, sub = name.partition(".")
        if first in _MULTI and first != "emails":
            inner = Comparison(attr_path=AttrPath(sub or "value"), op=node.op, value=node.value)
            return _multi_valued(first, inner)
        if str(node.attr_path).lower() == "active":
            if node.op not in (CompareOperator.eq, CompareOperator.ne) or not isinstance(
                node.value, bool
            ):
                raise Unsupported
            active = Person.employment_status != "inactive"
            return active if (node.value == (node.op == CompareOperator.eq)) else not_(active)
        column, case_exact = _user_column(node.attr_path)
        if (
            str(node.attr_path).lower() in ("emails", "emails.value")
            and node.op == CompareOperator.eq
        ):
            # Any of the person's addresses, not only the primary one.
            inner = Comparison(attr_path=AttrPath("value"), op=node.op, value=node.value)
            return or_(
                _string_match(column, node.op, node.value, False),
                _multi_valued("emails", inner),
            )
        return _string_match(column, node.op, node.value, case_exact)
    raise Unsupported


def group_filter(node: FilterNode) -> Any:
    """SQL for a Group filter, or Unsupported."""
    if isinstance(node, LogicalExpr):
        terms = [group_filter(t) for t in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)
    if isinstance(node, Not):
        return not_(group_filter(node.expr))
    if isinstance(node, Present):
        name = str(node.attr_path).lower()
        columns = {"displayname": ScimGroup.display_name, "externalid": ScimGroup.external_id}
        if name in columns:
            return columns[name].is_not(None)
        if name in ("meta.created", "meta.lastmodified", "id"):
            return true()
        if name in ("members", "members.value"):
            return ScimGroup.id.in_(select(ScimGroupMember.group_id))
    if isinstance(node, Comparison):
        name = str(node.attr_path).lower()
        meta = _meta_column(ScimGroup, name)
        if meta is not None:
            return _time_match(meta, node.op, node.value)
        if name == "displayname":
            return _string_match(ScimGroup.display_name, node.op, node.value, False)
        if name == "externalid":
            return _string_match(ScimGroup.external_id, node.op, node.value, True)
        if name == "id":
            return _string_match(sql_cast(ScimGroup.id, String), node.op, node.value, True)
        if name in ("members", "members.value") and node.op == CompareOperator.eq:
            member = as_uuid(node.value)
            if member is None:
                return false()
            return ScimGroup.id.in_(
                select(ScimGroupMember.group_id).where(ScimGroupMember.member_id == member)
            )
    raise Unsupported
