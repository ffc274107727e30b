"""What a program asks of a pair: participants as scoring sees them, a program's criteria
(weights and rules, defaults filled in), and the per-criterion value functions that the
scalar (`explain`) and the vectorized (`scoring`) paths share. Pure module."""

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

LEVELS = 6  # skill level 0 (does not have it) .. 5 (expert)
NEUTRAL = 0.5  # the value of a criterion whose data one side lacks: neither good nor bad
CRITERIA = (
    "skills", "goals", "languages", "time_zone", "department", "seniority", "attributes",
    "previous_mentor", "preferences",
)  # fmt: skip
# A reverse program's tenure gap unless its criteria name one: the mentor joined at least a
# year after the mentee (junior mentors for senior mentees).
REVERSE_GAP = (-40.0, -1.0)
# The same defaults profiles validates programs with (services/profiles/schemas.py).
DEFAULT_WEIGHTS = {
    "skills": 0.35,
    "goals": 0.2,
    "department": 0.1,
    "seniority": 0.1,
    "languages": 0.1,
    "time_zone": 0.1,
    "attributes": 0.05,
    "preferences": 0.1,  # only for mentees who state preferences (Criteria.active)
}
# What a mentee's `preferences` may name: mentor properties (and `attributes.<name>`).
PREFERENCE_KEYS = ("department", "division", "title", "location", "languages")
# Seniority beyond the wanted gap fades out over these many years instead of dropping to 0.
SENIORITY_FADE_BELOW = 3.0
SENIORITY_FADE_ABOVE = 5.0

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Participant:
    """A mentee or mentor as scoring sees them (built from the projection by the caller)."""

    enrollment_id: uuid.UUID
    external_id: str
    person_id: uuid.UUID | None = None
    skills: Mapping[str, int] = field(default_factory=dict)  # canonical skill -> level 1..5
    goals: tuple[str, ...] = ()  # canonical skill keys the mentee's goals ask for
    languages: frozenset[str] = frozenset()  # primary language subtags ("en", "de")
    utc_offset: float | None = None  # hours
    department: str | None = None
    seniority: float | None = None  # years since hire
    managers: frozenset[str] = frozenset()  # external ids of everyone above them
    attributes: Mapping[str, Any] = field(default_factory=dict)
    capacity: int = 0  # places still open (mentors)
    # Mentees: the mentor enrollments of their completed matches in the program.
    previous: frozenset[uuid.UUID] = frozenset()
    # Mentees: the mentor properties they asked for (`preference_targets`), key -> values.
    preferences: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class AttributeRule:
    """Mentor and mentee must have the `same` or a `different` value of an attribute, or
    (a list, e.g. a multi-choice answer) `overlap` in at least one value."""

    attribute: str
    rule: str  # same | different | overlap
    weight: float = 1.0


def _number(value: Any, default: float | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


@dataclass(frozen=True)
class Criteria:
    """A program's matching weights and rules (its `criteria` object, defaults filled in).

    Keys read (the shape profiles validates), each optional:
    - `weights`: {skills, goals, department, seniority, languages, time_zone, attributes},
      floats >= 0, default .35/.2/.1/.1/.1/.1/.05; normalized over the criteria that apply.
    - `department_rule`: same | different | any (default; then department is not scored).
    - `seniority_gap`: {min_years, max_years}: the wanted tenure gap (mentor minus mentee,
      years since hire); 1 inside, fading over 3 years below and 5 above. Default [0, inf).
    - `require_shared_language`: a shared language is always required when both list
      languages; true also refuses pairs where either lists none.
    - `max_time_zone_difference_hours`: a hard rule when set.
    - `attribute_rules`: [{attribute, rule: same | different, weight}] over the person's
      `attributes` (and `division`, `title`); their weighted mean is `attributes`.
    - `prefer_previous_mentor`: the weight of `previous_mentor` (1 for a mentor the mentee
      completed a match with in this program, else 0); default 0: never again.
    - `weights.preferences` (default 0.1): the mentee's own `preferences`, e.g.
      `{"department": "Engineering", "location": ["Berlin", "Remote"], "languages": ["de"]}`:
      each key a mentor property (`PREFERENCE_KEYS`, or `attributes.<name>`), each value one
      wanted value or a list of acceptable ones; unknown keys are ignored. Its value is the
      share of stated preferences the mentor meets. It takes part only for a mentee who
      states preferences: for others the weights are normalized without it, so their
      scores are what they would be without the criterion.
    A `reverse` program without a `seniority_gap` wants junior mentors (`REVERSE_GAP`).
    """

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    department_rule: str = "any"  # same | different | any
    min_seniority_years: float | None = None
    max_seniority_years: float | None = None
    require_shared_language: bool = False
    max_time_zone_hours: float | None = None
    attribute_rules: tuple[AttributeRule, ...] = ()
    # Rules on intake answers (`answers.<key>`): each its own criterion, named after it.
    answer_rules: tuple[AttributeRule, ...] = ()

    @classmethod
    def from_program(cls, raw: Mapping[str, Any] | None, format: str = "one_to_one") -> "Criteria":
        """Read a program's `criteria`; anything missing or malformed takes the default,
        so a program event can never make matching fail."""
        raw = raw or {}
        raw_weights = raw.get("weights") if isinstance(raw.get("weights"), Mapping) else {}
        assert isinstance(raw_weights, Mapping)
        weights = {
            name: max(0.0, _number(raw_weights.get(name), default) or 0.0)
            for name, default in DEFAULT_WEIGHTS.items()
        }
        again = max(0.0, _number(raw.get("prefer_previous_mentor"), 0) or 0)
        if again > 0:
            weights["previous_mentor"] = again
        rule = raw.get("department_rule")
        gap = raw.get("seniority_gap") if isinstance(raw.get("seniority_gap"), Mapping) else {}
        assert isinstance(gap, Mapping)
        low, high = _number(gap.get("min_years"), None), _number(gap.get("max_years"), None)
        if format == "reverse" and low is None and high is None:
            low, high = REVERSE_GAP
        rules: list[AttributeRule] = []
        answers: list[AttributeRule] = []
        for item in raw.get("attribute_rules") or []:
            if (
                isinstance(item, Mapping)
                and isinstance(item.get("attribute"), str)
                and item.get("rule") in ("same", "different", "overlap")
            ):
                weight = max(0.0, _number(item.get("weight"), 1.0) or 0.0)
                parsed = AttributeRule(item["attribute"], item["rule"], weight)
                if parsed.attribute.startswith("answers."):
                    answers.append(parsed)
                    weights[parsed.attribute] = weight
                elif parsed.rule != "overlap":
                    rules.append(parsed)
        return cls(
            weights=weights,
            department_rule=rule if rule in ("same", "different", "any") else "any",
            min_seniority_years=low,
            max_seniority_years=high,
            require_shared_language=raw.get("require_shared_language") is True,
            max_time_zone_hours=_number(raw.get("max_time_zone_difference_hours"), None),
            attribute_rules=tuple(rules),
            answer_rules=tuple(answers),
        )

    def active(self, preferences: bool = False) -> dict[str, float]:
        """The criteria that take part in the score, with their weight normalized to sum 1;
        `preferences` only when the mentee states some (`preferences=True`)."""
        names = CRITERIA + tuple(r.attribute for r in self.answer_rules)
        weights = {name: float(self.weights.get(name, 0.0)) for name in names}
        if not preferences:
            weights["preferences"] = 0.0
        if self.department_rule == "any":
            weights["department"] = 0.0
        if not any(r.weight > 0 for r in self.attribute_rules):
            weights["attributes"] = 0.0
        total = sum(weights.values())
        if total <= 0:  # every weight zero: rank by skills alone rather than divide by zero
            return {"skills": 1.0}
        return {name: w / total for name, w in weights.items() if w > 0}


# --- the per-criterion value functions (shared by the vector and the scalar path) --------


def skill_cover(mentee_level: int, mentor_level: int) -> float:
    """How well a mentor can teach a skill: full from two levels above the mentee."""
    return min(1.0, max(0.0, (mentor_level - mentee_level) / 2.0))


def tz_distance(a: float, b: float) -> float:
    """Hours between two UTC offsets around the clock (UTC-11 and UTC+12 are 1 h apart)."""
    d = abs(a - b) % 24.0
    return min(d, 24.0 - d)


def tz_value(distance: float) -> float:
    """1 in the same time zone, 0 half a day apart."""
    return 1.0 - min(distance, 12.0) / 12.0


def tenure_months(years: float) -> int:
    """Tenure counts in whole months: finer is noise, and it keeps the distinct values few
    (one precomputed row per distinct mentee tenure)."""
    return round(years * 12)


def seniority_gap(mentee_years: float, mentor_years: float) -> float:
    """The mentor's tenure minus the mentee's, in years (of whole months)."""
    return (tenure_months(mentor_years) - tenure_months(mentee_years)) / 12.0


def seniority_value(gap: float, low: float, high: float) -> float:
    """1 inside the wanted gap (mentor's years minus mentee's), fading outside it."""
    if gap < low:
        return max(0.0, 1.0 - (low - gap) / SENIORITY_FADE_BELOW)
    if gap > high:
        return max(0.0, 1.0 - (gap - high) / SENIORITY_FADE_ABOVE)
    return 1.0


def category_key(value: Any) -> str | None:
    """How categorical values compare: trimmed and case-folded; empty means unknown."""
    if value is None:
        return None
    text = str(value).strip().casefold()
    return text or None


def value_set(value: Any) -> frozenset[str]:
    """A value as a set of category keys (a list's items; one value; nothing if unknown)."""
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    return frozenset(k for v in items if (k := category_key(v)) is not None)


def overlap_value(a: Any, b: Any) -> float:
    """1 when two (multi-)values share one, 0 when not, neutral when one is unknown."""
    left, right = value_set(a), value_set(b)
    if not left or not right:
        return NEUTRAL
    return 1.0 if left & right else 0.0


def rule_value(rule: str, a: str | None, b: str | None) -> float:
    if a is None or b is None:
        return NEUTRAL
    return 1.0 if (a == b) == (rule == "same") else 0.0


def seniority_bounds(criteria: Criteria) -> tuple[float, float]:
    low = criteria.min_seniority_years if criteria.min_seniority_years is not None else 0.0
    high = criteria.max_seniority_years
    return low, (high if high is not None else math.inf)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or (
        isinstance(value, int | float) and math.isfinite(value)
    )


def preference_targets(raw: Any) -> dict[str, frozenset[str]]:
    """A mentee's `preferences` as scoring reads them: known keys (`PREFERENCE_KEYS`,
    `attributes.<name>`) with their wanted values as category keys (languages as primary
    subtags). Unknown keys, empty and malformed values are ignored: never an error here."""
    if not isinstance(raw, Mapping):
        return {}
    targets: dict[str, frozenset[str]] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not (
            key in PREFERENCE_KEYS or (key.startswith("attributes.") and len(key) > 11)
        ):
            continue
        items = value if isinstance(value, list) else [value]
        wanted = value_set([v for v in items if _scalar(v)])
        if key == "languages":
            wanted = frozenset(v.split("-")[0] for v in wanted)
        if wanted:
            targets[key] = wanted
    return targets


def mentor_property(mentor: Participant, key: str) -> frozenset[str]:
    """The values a mentor has for a preference key, as category keys."""
    if key == "languages":
        return frozenset(mentor.languages)
    if key == "department":
        return value_set(mentor.department)
    return value_set(mentor.attributes.get(key.removeprefix("attributes.")))


def preferences_met(mentee: Participant, mentor: Participant) -> list[str]:
    """The mentee's stated preferences (keys) that the mentor meets."""
    return [
        key for key, wanted in mentee.preferences.items() if wanted & mentor_property(mentor, key)
    ]


def preferences_value(mentee: Participant, mentor: Participant) -> float:
    """The share of the mentee's stated preferences the mentor meets (0 when none stated)."""
    if not mentee.preferences:
        return 0.0
    return len(preferences_met(mentee, mentor)) / len(mentee.preferences)
