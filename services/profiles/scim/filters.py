"""SCIM filters translated to SQL."""

from typing import Any

from scim2_models.path import (
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
    false,
    func,
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
    """A filter the SQL translation does not cover; the search then filters in Python."""


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
    raise Unsupported


def user_filter(node: FilterNode) -> Any:
    """SQL for a User filter, or Unsupported."""
    if isinstance(node, LogicalExpr):
        terms = [user_filter(t) for t in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)
    if isinstance(node, Not):
        return not_(user_filter(node.expr))
    if isinstance(node, ValuePath):
        if str(node.attr_path).lower() == "emails" and isinstance(node.val_filter, Comparison):
            inner = node.val_filter
            if str(inner.attr_path).lower() == "value":
                return _string_match(Person.email, inner.op, inner.value, False)
        raise Unsupported
    if isinstance(node, Present):
        if str(node.attr_path).lower() == "active":
            return true()
        column, _ = _user_column(node.attr_path)
        return column.is_not(None)
    if isinstance(node, Comparison):
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
            other = text(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(person.scim->'emails', "
                "'[]'::jsonb)) AS e WHERE lower(e->>'value') = :scim_email)"
            ).bindparams(scim_email=str(node.value).lower())
            return or_(_string_match(column, node.op, node.value, False), other)
        return _string_match(column, node.op, node.value, case_exact)
    raise Unsupported


def group_filter(node: FilterNode) -> Any:
    """SQL for a Group filter, or Unsupported."""
    if isinstance(node, LogicalExpr):
        terms = [group_filter(t) for t in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)
    if isinstance(node, Not):
        return not_(group_filter(node.expr))
    if isinstance(node, Comparison):
        name = str(node.attr_path).lower()
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
