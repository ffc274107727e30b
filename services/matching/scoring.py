"""Pair scores: hard rules as vectorized masks, weighted criteria, and explanations.

A score is the weighted mean of per-criterion values in [0, 1], so it lies in [0, 1] and
splits exactly into contributions (weight x value / total weight). Two code paths compute
it and must agree: `ScoringModel` scores whole blocks of mentees x mentors with NumPy (for
runs and suggestions) and `explain` scores one pair in plain Python to say why.

Vectorization trick: every criterion compares one mentee value with every mentor, so each
distinct mentee value (a time zone, a department, a skill at a level) maps to one
precomputed row over all mentors. Scoring a block is then a handful of row gathers and adds,
never a Python loop over pairs.

Pure module: no I/O, no HTTP, no Kafka.
"""

import math
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

LEVELS = 6  # skill level 0 (does not have it) .. 5 (expert)
NEUTRAL = 0.5  # the value of a criterion whose data one side lacks: neither good nor bad
CRITERIA = ("skills", "goals", "languages", "time_zone", "department", "seniority", "attributes")
# The same defaults profiles validates programs with (services/profiles/schemas.py).
DEFAULT_WEIGHTS = {
    "skills": 0.35,
    "goals": 0.2,
    "department": 0.1,
    "seniority": 0.1,
    "languages": 0.1,
    "time_zone": 0.1,
    "attributes": 0.05,
}
# Seniority beyond the wanted gap fades out over these many years instead of dropping to 0.
_SENIORITY_FADE_BELOW = 3.0
_SENIORITY_FADE_ABOVE = 5.0

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


@dataclass(frozen=True)
class AttributeRule:
    """Mentor and mentee must have the `same` or a `different` value of an attribute."""

    attribute: str
    rule: str  # same | different
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
    """

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    department_rule: str = "any"  # same | different | any
    min_seniority_years: float | None = None
    max_seniority_years: float | None = None
    require_shared_language: bool = False
    max_time_zone_hours: float | None = None
    attribute_rules: tuple[AttributeRule, ...] = ()

    @classmethod
    def from_program(cls, raw: Mapping[str, Any] | None) -> "Criteria":
        """Read a program's `criteria`; anything missing or malformed takes the default,
        so a program event can never make matching fail."""
        raw = raw or {}
        raw_weights = raw.get("weights") if isinstance(raw.get("weights"), Mapping) else {}
        assert isinstance(raw_weights, Mapping)
        weights = {
            name: max(0.0, _number(raw_weights.get(name), default) or 0.0)
            for name, default in DEFAULT_WEIGHTS.items()
        }
        rule = raw.get("department_rule")
        gap = raw.get("seniority_gap") if isinstance(raw.get("seniority_gap"), Mapping) else {}
        assert isinstance(gap, Mapping)
        rules = []
        for item in raw.get("attribute_rules") or []:
            if (
                isinstance(item, Mapping)
                and isinstance(item.get("attribute"), str)
                and item.get("rule") in ("same", "different")
            ):
                weight = max(0.0, _number(item.get("weight"), 1.0) or 0.0)
                rules.append(AttributeRule(item["attribute"], item["rule"], weight))
        return cls(
            weights=weights,
            department_rule=rule if rule in ("same", "different", "any") else "any",
            min_seniority_years=_number(gap.get("min_years"), None),
            max_seniority_years=_number(gap.get("max_years"), None),
            require_shared_language=raw.get("require_shared_language") is True,
            max_time_zone_hours=_number(raw.get("max_time_zone_difference_hours"), None),
            attribute_rules=tuple(rules),
        )

    def active(self) -> dict[str, float]:
        """The criteria that take part in the score, with their weight normalized to sum 1."""
        weights = {name: float(self.weights.get(name, 0.0)) for name in CRITERIA}
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
        return max(0.0, 1.0 - (low - gap) / _SENIORITY_FADE_BELOW)
    if gap > high:
        return max(0.0, 1.0 - (gap - high) / _SENIORITY_FADE_ABOVE)
    return 1.0


def category_key(value: Any) -> str | None:
    """How categorical values compare: trimmed and case-folded; empty means unknown."""
    if value is None:
        return None
    text = str(value).strip().casefold()
    return text or None


def _rule_value(rule: str, a: str | None, b: str | None) -> float:
    if a is None or b is None:
        return NEUTRAL
    return 1.0 if (a == b) == (rule == "same") else 0.0


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
    weights = criteria.active()
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
        values["department"] = _rule_value(criteria.department_rule, a, b)
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
            values["seniority"] = seniority_value(gap, *_seniority_bounds(criteria))
            more = "more" if gap >= 0 else "less"
            reasons["seniority"] = f"{abs(gap):.1f} years {more} tenure"

    if "attributes" in weights:
        total = sum(r.weight for r in criteria.attribute_rules)
        acc = 0.0
        notes = []
        for rule in criteria.attribute_rules:
            a = category_key(mentee.attributes.get(rule.attribute))
            b = category_key(mentor.attributes.get(rule.attribute))
            v = _rule_value(rule.rule, a, b)
            acc += rule.weight * v
            if a is not None and b is not None:
                kind = "same" if a == b else "different"
                notes.append(f"{kind} {rule.attribute} ({mentor.attributes.get(rule.attribute)})")
        values["attributes"] = acc / total if total else 0.0
        reasons["attributes"] = "; ".join(notes) if notes else "attributes not on record"

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


def _seniority_bounds(criteria: Criteria) -> tuple[float, float]:
    low = criteria.min_seniority_years if criteria.min_seniority_years is not None else 0.0
    high = criteria.max_seniority_years
    return low, (high if high is not None else math.inf)


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


# --- the vectorized path --------------------------------------------------------------


class _Codebook:
    """Category -> small int; -1 unknown, -2 a value no mentor has."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def add(self, value: Any) -> int:
        key = category_key(value)
        if key is None:
            return -1
        return self.codes.setdefault(key, len(self.codes))

    def get(self, value: Any) -> int:
        key = category_key(value)
        return -1 if key is None else self.codes.get(key, -2)


def _category_rows(rule: str, mentee_codes: I32, mentor_codes: I32) -> F32:
    """Rule values (U mentee values x n mentors) for `same`/`different` rules."""
    equal = mentee_codes[:, None] == mentor_codes[None, :]
    if rule == "different":
        equal = ~equal
    known = (mentee_codes[:, None] != -1) & (mentor_codes[None, :] != -1)
    return np.where(known, equal.astype(np.float32), np.float32(NEUTRAL)).astype(np.float32)


@dataclass(frozen=True)
class Edges:
    """Candidate pairs: parallel arrays of mentee row, mentor column and score."""

    mentee: I32
    mentor: I32
    score: F32

    def __len__(self) -> int:
        return int(self.mentee.shape[0])


_BUCKETS = 256


def top_k(score: F32, ok: Bools, k: int) -> tuple[I32, I32, F32]:
    """Per row, the `k` best allowed columns (all allowed ones if fewer), exactly.

    A full partition of every row is the slow part of candidate generation, so rows are
    first cut down by a histogram: scores (in [0, 1]) fall into 255 buckets, each row keeps
    the buckets from the top down to the one that holds its k-th best, and only those few
    survivors are sorted. Ties at the cut are broken by column, as in `suggest`.
    Returns (row, column, score) sorted by row, then score descending.
    """
    c, n = score.shape
    bucket = np.empty((c, n), dtype=np.int32)
    np.multiply(score, _BUCKETS - 2, out=bucket, casting="unsafe")
    np.clip(bucket, 0, _BUCKETS - 2, out=bucket)
    bucket += 1  # bucket 0 is for pairs the hard rules forbid
    bucket[~ok] = 0
    keyed = bucket + (np.arange(c, dtype=np.int32) * _BUCKETS)[:, None]
    counts = np.bincount(keyed.ravel(), minlength=c * _BUCKETS).reshape(c, _BUCKETS)
    at_least = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]  # [r, b]: how many in >= b
    cut = np.maximum((at_least[:, 1:] >= k).sum(axis=1), 1)
    rows, cols = np.nonzero(bucket >= cut[:, None])
    vals = score[rows, cols]
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    if len(rows):
        first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        rank = np.arange(len(rows)) - np.repeat(first, np.diff(np.r_[first, len(rows)]))
        keep = rank < k
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    return rows.astype(np.int32), cols.astype(np.int32), vals.astype(np.float32)


class MentorIndex:
    """Everything about a program's mentors that scoring needs, as arrays (cacheable)."""

    def __init__(self, criteria: Criteria, mentors: Sequence[Participant]) -> None:
        self.criteria = criteria
        self.weights = criteria.active()
        self.mentors = list(mentors)
        n = self.n = len(self.mentors)
        self.column = {m.enrollment_id: j for j, m in enumerate(self.mentors)}
        self.available = np.array([m.capacity > 0 for m in self.mentors], dtype=np.bool_)

        # Skills: a level matrix over the mentors' vocabulary, expanded to one row per
        # (mentee level, skill): graded cover for `skills`, taught-at-all for `goals`.
        self.vocabulary: dict[str, int] = {}
        for m in self.mentors:
            for key in m.skills:
                self.vocabulary.setdefault(key, len(self.vocabulary))
        v = len(self.vocabulary)
        levels = np.zeros((v, n), dtype=np.int8)
        for j, m in enumerate(self.mentors):
            for key, level in m.skills.items():
                levels[self.vocabulary[key], j] = level
        self.zero_row = LEVELS * v  # padding and skills no mentor has
        graded = np.zeros((LEVELS * v + 1, n), dtype=np.float32)
        taught = np.zeros((LEVELS * v + 1, n), dtype=np.float32)
        for lv in range(LEVELS):
            gap = levels.astype(np.float32) - lv
            graded[lv * v : (lv + 1) * v] = np.clip(gap / 2.0, 0.0, 1.0)
            taught[lv * v : (lv + 1) * v] = gap > 0
        self.graded = graded * np.float32(self.weights.get("skills", 0.0))
        self.taught = taught * np.float32(self.weights.get("goals", 0.0))

        # Languages as bit sets: a shared language is a nonzero AND.
        self.language_bit: dict[str, int] = {}
        for m in self.mentors:
            for lang in m.languages:
                self.language_bit.setdefault(lang, len(self.language_bit))
        self.words = max(1, (len(self.language_bit) + 63) // 64)
        self.language_bits = np.zeros((n, self.words), dtype=np.uint64)
        for j, m in enumerate(self.mentors):
            self.language_bits[j] = self.bits(m.languages)
        self.has_languages = np.array([bool(m.languages) for m in self.mentors], dtype=np.bool_)

        self.utc_offset = np.array(
            [np.nan if m.utc_offset is None else m.utc_offset for m in self.mentors],
            dtype=np.float32,
        )
        self.seniority_months = np.array(
            [np.nan if m.seniority is None else tenure_months(m.seniority) for m in self.mentors],
            dtype=np.float64,
        )
        self.departments = _Codebook()
        self.department = np.array(
            [self.departments.add(m.department) for m in self.mentors], dtype=np.int32
        )
        self.attribute_books = [_Codebook() for _ in criteria.attribute_rules]
        self.attribute = [
            np.array([book.add(m.attributes.get(rule.attribute)) for m in self.mentors], np.int32)
            for rule, book in zip(criteria.attribute_rules, self.attribute_books, strict=True)
        ]

        # Sparse hard rules: who each mentor is (self) and who is above them (chain).
        self.by_identity: dict[str, list[int]] = {}
        self.by_person: dict[uuid.UUID, list[int]] = {}
        self.below: dict[str, list[int]] = {}  # manager external id -> mentor columns
        for j, m in enumerate(self.mentors):
            self.by_identity.setdefault(m.external_id, []).append(j)
            if m.person_id is not None:
                self.by_person.setdefault(m.person_id, []).append(j)
            for boss in m.managers:
                self.below.setdefault(boss, []).append(j)

    def bits(self, languages: Iterable[str]) -> npt.NDArray[np.uint64]:
        """The bit set of the languages mentors speak (others cannot be shared anyway)."""
        words = np.zeros(self.words, dtype=np.uint64)
        for lang in languages:
            bit = self.language_bit.get(lang)
            if bit is not None:
                words[bit // 64] |= np.uint64(1) << np.uint64(bit % 64)
        return words


@dataclass
class _Table:
    """Mentee rows pick one precomputed row (a value over all mentors) by code."""

    name: str
    codes: I32
    rows: npt.NDArray[Any]


class ScoringModel:
    """Mentees against a `MentorIndex`: block scores, hard-rule masks, top-K candidates."""

    def __init__(
        self,
        index: MentorIndex,
        mentees: Sequence[Participant],
        excluded: Iterable[tuple[int, int]] = (),
    ) -> None:
        """`excluded` adds (mentee row, mentor column) pairs that must never pair up:
        earlier matches, forbidden pairs."""
        self.index = index
        self.criteria = index.criteria
        self.mentees = list(mentees)
        self.m = len(self.mentees)
        w = index.weights
        self.values: list[_Table] = []
        self.masks: list[_Table] = []

        self.skill_rows, self.skill_scale = self._slots(
            [skill_targets(p) for p in self.mentees], "skills" in w
        )
        self.goal_rows, self.goal_scale = self._slots(
            [{g: p.skills.get(g, 0) for g in p.goals} for p in self.mentees], "goals" in w
        )
        self._languages(w.get("languages", 0.0))
        self._time_zones(w.get("time_zone", 0.0))
        if "department" in w:
            codes = np.array([index.departments.get(p.department) for p in self.mentees], np.int32)
            self._categorical(
                "department", codes, index.department, self.criteria.department_rule, w
            )
        if "seniority" in w:
            self._seniority(w["seniority"])
        if "attributes" in w:
            self._attributes(w["attributes"])
        self._exclusions(excluded)

    # Building the tables ------------------------------------------------------------

    def _slots(self, targets: list[dict[str, int]], active: bool) -> tuple[I32, F32]:
        """Per mentee, the rows (level x skill) of what they want, padded with zero rows."""
        index = self.index
        width = max((len(t) for t in targets), default=0) if active else 0
        rows = np.full((self.m, max(width, 1)), index.zero_row, dtype=np.int32)
        scale = np.zeros(self.m, dtype=np.float32)
        if not active:
            return rows[:, :0], scale
        v = len(index.vocabulary)
        for i, target in enumerate(targets):
            for k, (key, level) in enumerate(target.items()):
                col = index.vocabulary.get(key)
                if col is not None:
                    rows[i, k] = min(level, LEVELS - 1) * v + col
            scale[i] = 1.0 / len(target) if target else 0.0
        return rows[:, :width], scale

    def _unique(self, keys: list[Any]) -> tuple[list[Any], I32]:
        seen: dict[Any, int] = {}
        codes = np.array([seen.setdefault(k, len(seen)) for k in keys], dtype=np.int32)
        return list(seen), codes

    def _languages(self, weight: float) -> None:
        index = self.index
        uniques, codes = self._unique([p.languages for p in self.mentees])
        share = np.zeros((len(uniques), index.n), dtype=np.bool_)
        for u, langs in enumerate(uniques):
            share[u] = (index.language_bits & index.bits(langs)).any(axis=1)
        known = np.array([bool(u) for u in uniques], dtype=np.bool_)[:, None]
        known = known & index.has_languages[None, :]
        ok = share | ~known
        if self.criteria.require_shared_language:
            ok = share
        self.masks.append(_Table("no_shared_language", codes, ok))
        if weight > 0:
            value = np.where(known, share.astype(np.float32), np.float32(NEUTRAL))
            self.values.append(_Table("languages", codes, (value * weight).astype(np.float32)))

    def _time_zones(self, weight: float) -> None:
        index = self.index
        limit = self.criteria.max_time_zone_hours
        if weight <= 0 and limit is None:
            return
        uniques, codes = self._unique(
            [np.nan if p.utc_offset is None else float(p.utc_offset) for p in self.mentees]
        )
        # Unknown offsets all share the one `np.nan` object, hence one code and one row.
        uniques_arr = np.array(uniques, dtype=np.float32).reshape(-1)
        with np.errstate(invalid="ignore"):
            d = np.abs(uniques_arr[:, None] - index.utc_offset[None, :]) % 24.0
            d = np.minimum(d, 24.0 - d)
        if weight > 0:
            value = np.where(np.isnan(d), np.float32(NEUTRAL), 1.0 - np.minimum(d, 12.0) / 12.0)
            self.values.append(_Table("time_zone", codes, (value * weight).astype(np.float32)))
        if limit is not None:
            with np.errstate(invalid="ignore"):
                ok = ~(d > limit)  # unknown offsets are not excluded
            self.masks.append(_Table("time_zone_too_far", codes, ok))

    def _categorical(
        self, name: str, codes: I32, mentor_codes: I32, rule: str, w: Mapping[str, float]
    ) -> None:
        uniques, local = self._unique(codes.tolist())
        rows = _category_rows(rule, np.array(uniques, dtype=np.int32), mentor_codes)
        self.values.append(_Table(name, local, (rows * w[name]).astype(np.float32)))

    def _seniority(self, weight: float) -> None:
        index = self.index
        low, high = _seniority_bounds(self.criteria)
        uniques, codes = self._unique(
            [np.nan if p.seniority is None else tenure_months(p.seniority) for p in self.mentees]
        )
        mentee = np.array(uniques, dtype=np.float64).reshape(-1)
        gap = (index.seniority_months[None, :] - mentee[:, None]) / 12.0
        value = np.ones_like(gap)
        with np.errstate(invalid="ignore"):
            below = np.maximum(0.0, 1.0 - (low - gap) / _SENIORITY_FADE_BELOW)
            above = np.maximum(0.0, 1.0 - (gap - high) / _SENIORITY_FADE_ABOVE)
            value = np.where(gap < low, below, np.where(gap > high, above, value))
        value = np.where(np.isnan(gap), np.float32(NEUTRAL), value)
        self.values.append(_Table("seniority", codes, (value * weight).astype(np.float32)))

    def _attributes(self, weight: float) -> None:
        index = self.index
        rules = self.criteria.attribute_rules
        total = sum(r.weight for r in rules)
        keys = [
            tuple(
                book.get(p.attributes.get(rule.attribute))
                for rule, book in zip(rules, index.attribute_books, strict=True)
            )
            for p in self.mentees
        ]
        uniques, codes = self._unique(keys)
        rows = np.zeros((len(uniques), index.n), dtype=np.float32)
        for r, rule in enumerate(rules):
            mentee_codes = np.array([u[r] for u in uniques], dtype=np.int32)
            rows += rule.weight * _category_rows(rule.rule, mentee_codes, index.attribute[r])
        self.values.append(
            _Table("attributes", codes, (rows * (weight / total)).astype(np.float32))
        )

    def _exclusions(self, extra: Iterable[tuple[int, int]]) -> None:
        index = self.index
        rows: list[int] = []
        cols: list[int] = []
        for i, j in extra:
            rows.append(i)
            cols.append(j)
        empty: list[int] = []
        for i, p in enumerate(self.mentees):
            found = index.by_identity.get(p.external_id, empty) + index.below.get(
                p.external_id, empty
            )
            if p.person_id is not None:
                found = found + index.by_person.get(p.person_id, empty)
            for boss in p.managers:
                found = found + index.by_identity.get(boss, empty)
            rows.extend([i] * len(found))
            cols.extend(found)
        n = max(index.n, 1)
        keys = np.unique(np.array(rows, dtype=np.int64) * n + np.array(cols, dtype=np.int64))
        self.excluded_rows = (keys // n).astype(np.int32)
        self.excluded_cols = (keys % n).astype(np.int32)
        self.excluded_ptr = np.searchsorted(self.excluded_rows, np.arange(self.m + 1))

    # Scoring ------------------------------------------------------------------------

    def score_block(self, start: int, stop: int) -> tuple[F32, Bools]:
        """Scores and feasibility of mentees [start, stop) against every mentor."""
        index = self.index
        c, n = stop - start, index.n
        score = np.zeros((c, n), dtype=np.float32)
        buf = np.empty((c, n), dtype=np.float32)
        for rows, scale, table in (
            (self.skill_rows, self.skill_scale, index.graded),
            (self.goal_rows, self.goal_scale, index.taught),
        ):
            if rows.shape[1] == 0:
                continue
            acc = np.zeros((c, n), dtype=np.float32)
            block = rows[start:stop]
            # Slots fill from the left, so a block stops after its widest mentee's last one.
            used = int((block != index.zero_row).any(axis=0).nonzero()[0].max(initial=-1)) + 1
            for k in range(used):
                np.take(table, block[:, k], axis=0, out=buf)
                acc += buf
            acc *= scale[start:stop, None]
            score += acc
        for value in self.values:
            np.take(value.rows, value.codes[start:stop], axis=0, out=buf)
            score += buf
        ok = np.empty((c, n), dtype=np.bool_)
        ok[:] = index.available[None, :]
        okbuf = np.empty((c, n), dtype=np.bool_)
        for mask in self.masks:
            np.take(mask.rows, mask.codes[start:stop], axis=0, out=okbuf)
            ok &= okbuf
        lo, hi = self.excluded_ptr[start], self.excluded_ptr[stop]
        if hi > lo:
            ok[self.excluded_rows[lo:hi] - start, self.excluded_cols[lo:hi]] = False
        return score, ok

    def top_candidates(
        self,
        k: int = 50,
        *,
        block: int = 64,
        workers: int = 2,
        progress: Callable[[float], None] | None = None,
    ) -> Edges:
        """The best `k` allowed mentors of every mentee (fewer if fewer are allowed)."""
        starts = list(range(0, self.m, block))
        done = 0
        lock = threading.Lock()

        def run(start: int) -> tuple[I32, I32, F32]:
            nonlocal done
            stop = min(start + block, self.m)
            score, ok = self.score_block(start, stop)
            rows, cols, vals = top_k(score, ok, k)
            result = rows + np.int32(start), cols, vals
            if progress is not None:
                with lock:
                    done += stop - start
                    progress(done / max(self.m, 1))
            return result

        if workers > 1 and len(starts) > 1:
            # NumPy releases the GIL in gathers, adds and partitions: threads use both cores.
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(run, starts))
        else:
            parts = [run(s) for s in starts]
        if not parts:
            empty_i = np.zeros(0, dtype=np.int32)
            return Edges(empty_i, empty_i.copy(), np.zeros(0, dtype=np.float32))
        return Edges(
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )

    def suggest(self, row: int, limit: int) -> list[tuple[int, float]]:
        """The best `limit` allowed mentors of one mentee, best first (ties by column)."""
        score, ok = self.score_block(row, row + 1)
        cols = np.nonzero(ok[0])[0]
        values = score[0, cols]
        if len(cols) > limit:
            part = np.argpartition(-values, limit - 1)[:limit]
            cols, values = cols[part], values[part]
        order = np.lexsort((cols, -values))
        return [(int(cols[o]), float(values[o])) for o in order]

    def blocked_by(self, row: int) -> dict[str, int]:
        """For one mentee: how many mentors each hard rule rules out (for 'why unmatched')."""
        index = self.index
        counts = {"at_capacity": int((~index.available).sum())}
        for table in self.masks:
            counts[table.name] = int((~table.rows[table.codes[row]]).sum())
        lo, hi = self.excluded_ptr[row], self.excluded_ptr[row + 1]
        counts["self_manager_chain_or_already_matched"] = int(hi - lo)
        return {k: v for k, v in counts.items() if v}

    def explain(self, row: int, column: int) -> Explanation:
        """Why mentee `row` and mentor `column` score what they do."""
        return explain(self.criteria, self.mentees[row], self.index.mentors[column])
