"""One pair's score in plain Python, with its breakdown and reasons a person can read, and
the hard rules that forbid a pair. Must agree with the vectorized path (`scoring`). Pure."""

from collections.abc import Sequence
from dataclasses import dataclass

from services.matching.criteria import (
    NEUTRAL,
    Criteria,
    Participant,
    category_key,
    overlap_value,
    preferences_met,
    rule_value,
    seniority_bounds,
    seniority_gap,
    seniority_value,
    skill_cover,
    tz_distance,
    tz_value,
    value_set,
)

# --- explanations ---------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionScore:
    """One line of a breakdown: value in [0, 1], its weight, and its share of the score."""

    criterion: str
    value: float
    weight: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """A pair's score, its breakdown per criterion, and reasons a person can read."""

    score: float
    breakdown: tuple[CriterionScore, ...]
    reasons: tuple[str, ...]


def _listing(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def skill_targets(mentee: Participant) -> dict[str, int]:
    """What a mentee wants to grow, with their current level: their goal skills (level 0
    unless they list it) and every skill they list."""
    targets = {key: mentee.skills.get(key, 0) for key in mentee.goals}
    for key, level in mentee.skills.items():
        targets.setdefault(key, level)
    return targets


def explain(criteria: Criteria, mentee: Participant, mentor: Participant) -> Explanation:
    """Score one pair in plain Python, with its breakdown and reasons."""
    weights = criteria.active(preferences=bool(mentee.preferences))
    values: dict[str, float] = {}
    reasons: dict[str, str] = {}

    if "skills" in weights:
        targets = skill_targets(mentee)
        covers = {k: skill_cover(lv, mentor.skills.get(k, 0)) for k, lv in targets.items()}
        values["skills"] = sum(covers.values()) / len(targets) if targets else 0.0
        stronger = [
            f"{k} ({mentor.skills.get(k, 0)} vs {lv})"
            for k, lv in targets.items()
            if mentor.skills.get(k, 0) > lv
        ]
        if not targets:
            reasons["skills"] = "the mentee lists no skills to grow"
        elif stronger:
            reasons["skills"] = (
                f"knows more in {len(stronger)} of {len(targets)} skills to grow: "
                f"{_listing(stronger)}"
            )
        else:
            reasons["skills"] = "knows no more than the mentee in the skills to grow"

    if "goals" in weights:
        goals = list(mentee.goals)
        covered = [g for g in goals if mentor.skills.get(g, 0) > mentee.skills.get(g, 0)]
        values["goals"] = len(covered) / len(goals) if goals else 0.0
        if not goals:
            reasons["goals"] = "the mentee has no goals on record"
        elif covered:
            reasons["goals"] = (
                f"shares {len(covered)} of {len(goals)} goal skills: {_listing(covered)}"
            )
        else:
            reasons["goals"] = f"covers none of the goal skills ({_listing(goals)})"

    if "languages" in weights:
        shared = sorted(mentee.languages & mentor.languages)
        if not mentee.languages or not mentor.languages:
            values["languages"] = NEUTRAL
            reasons["languages"] = "languages not on record for both"
        else:
            values["languages"] = 1.0 if shared else 0.0
            reasons["languages"] = (
                f"speaks {_listing(shared)} with the mentee" if shared else "no shared language"
            )

    if "time_zone" in weights:
        if mentee.utc_offset is None or mentor.utc_offset is None:
            values["time_zone"] = NEUTRAL
            reasons["time_zone"] = "time zone not on record for both"
        else:
            hours = tz_distance(mentee.utc_offset, mentor.utc_offset)
            values["time_zone"] = tz_value(hours)
            reasons["time_zone"] = (
                "same time zone" if hours == 0 else f"{hours:g} h apart in time zones"
            )

    if "department" in weights:
        a, b = category_key(mentee.department), category_key(mentor.department)
        values["department"] = rule_value(criteria.department_rule, a, b)
        if a is None or b is None:
            reasons["department"] = "department not on record for both"
        else:
            kind = "same" if a == b else "a different"
            wanted = "as wanted" if values["department"] == 1.0 else "not as the program asks"
            reasons["department"] = f"{kind} department ({mentor.department}), {wanted}"

    if "seniority" in weights:
        if mentee.seniority is None or mentor.seniority is None:
            values["seniority"] = NEUTRAL
            reasons["seniority"] = "tenure not on record for both"
        else:
            gap = seniority_gap(mentee.seniority, mentor.seniority)
            values["seniority"] = seniority_value(gap, *seniority_bounds(criteria))
            _, high = seniority_bounds(criteria)
            if high < 0:  # a reverse program: the mentor is meant to be the junior one
                wanted = "as wanted" if values["seniority"] == 1.0 else "not as the program asks"
                side = "junior" if gap < 0 else "senior"
                reasons["seniority"] = (
                    f"reverse mentoring: {side} to the mentee by {abs(gap):.1f} years "
                    f"of tenure, {wanted}"
                )
            else:
                more = "more" if gap >= 0 else "less"
                reasons["seniority"] = f"{abs(gap):.1f} years {more} tenure"

    if "attributes" in weights:
        total = sum(r.weight for r in criteria.attribute_rules)
        acc = 0.0
        notes = []
        for rule in criteria.attribute_rules:
            a = category_key(mentee.attributes.get(rule.attribute))
            b = category_key(mentor.attributes.get(rule.attribute))
            v = rule_value(rule.rule, a, b)
            acc += rule.weight * v
            if a is not None and b is not None:
                kind = "same" if a == b else "different"
                notes.append(f"{kind} {rule.attribute} ({mentor.attributes.get(rule.attribute)})")
        values["attributes"] = acc / total if total else 0.0
        reasons["attributes"] = "; ".join(notes) if notes else "attributes not on record"

    for rule in criteria.answer_rules:
        if rule.attribute not in weights:
            continue
        key = rule.attribute.removeprefix("answers.")
        mine, theirs = mentee.attributes.get(rule.attribute), mentor.attributes.get(rule.attribute)
        if rule.rule == "overlap":
            values[rule.attribute] = overlap_value(mine, theirs)
            shared = sorted(value_set(mine) & value_set(theirs))
            note = f"both answered {_listing(shared)} to {key}" if shared else f"no shared {key}"
        else:
            a, b = category_key(mine), category_key(theirs)
            values[rule.attribute] = rule_value(rule.rule, a, b)
            note = f"{'same' if a == b else 'a different'} answer to {key} ({theirs})"
        if not value_set(mine) or not value_set(theirs):
            note = f"{key} not answered by both"
        reasons[rule.attribute] = note

    if "previous_mentor" in weights:
        again = mentor.enrollment_id in mentee.previous
        values["previous_mentor"] = 1.0 if again else 0.0
        if again:
            reasons["previous_mentor"] = "mentored this mentee before in this program"

    if "preferences" in weights:
        met = sorted(preferences_met(mentee, mentor))  # stored JSON keeps no key order
        stated = len(mentee.preferences)
        values["preferences"] = len(met) / stated
        shown = met or sorted(mentee.preferences)
        share = f"{len(met)} of" if met else "none of"
        reasons["preferences"] = f"meets {share} {stated} stated preferences ({_listing(shown)})"

    breakdown = tuple(
        CriterionScore(name, values[name], criteria.weights.get(name, 0.0), w * values[name])
        for name, w in weights.items()
    )
    order = sorted(breakdown, key=lambda c: -c.contribution)
    return Explanation(
        score=sum(c.contribution for c in breakdown),
        breakdown=breakdown,
        reasons=tuple(reasons[c.criterion] for c in order if c.criterion in reasons),
    )


def explain_peers(criteria: Criteria, a: Participant, b: Participant) -> Explanation:
    """Two peers learn from each other: each criterion is the mean of both directions (a
    learning from b, b from a), so the score is symmetric; reasons say whose they are."""
    ab, ba = explain(criteria, a, b), explain(criteria, b, a)
    # A criterion only one direction has (`preferences`, stated by one peer) counts for
    # that direction alone: the score stays the mean of the two directions' scores.
    left = {c.criterion: c for c in ab.breakdown}
    right = {c.criterion: c for c in ba.breakdown}
    breakdown = tuple(
        CriterionScore(
            name,
            sum(c.value for c in sides) / len(sides),
            sides[0].weight,
            sum(c.contribution for c in sides) / 2,
        )
        for name in {**left, **right}
        if (sides := [c for c in (left.get(name), right.get(name)) if c is not None])
    )
    reasons = tuple(f"for {a.external_id}: {r}" for r in ab.reasons[:3]) + tuple(
        f"for {b.external_id}: {r}" for r in ba.reasons[:3]
    )
    return Explanation(sum(c.contribution for c in breakdown), breakdown, reasons)


# --- hard rules (scalar, for one pair) --------------------------------------------------


def hard_rule_violations(criteria: Criteria, mentee: Participant, mentor: Participant) -> list[str]:
    """Which hard rules forbid this pair (empty: allowed). Capacity and earlier matches
    are the caller's to check: they are state, not profile."""
    broken = []
    if mentee.external_id == mentor.external_id or (
        mentee.person_id is not None and mentee.person_id == mentor.person_id
    ):
        broken.append("self")
    if mentor.external_id in mentee.managers or mentee.external_id in mentor.managers:
        broken.append("manager_chain")
    if mentee.languages and mentor.languages:
        if not mentee.languages & mentor.languages:
            broken.append("no_shared_language")
    elif criteria.require_shared_language:
        broken.append("no_shared_language")
    if (
        criteria.max_time_zone_hours is not None
        and mentee.utc_offset is not None
        and mentor.utc_offset is not None
        and tz_distance(mentee.utc_offset, mentor.utc_offset) > criteria.max_time_zone_hours
    ):
        broken.append("time_zone_too_far")
    return broken
