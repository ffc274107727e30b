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

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.matching.criteria import (
    F32,
    I32,
    LEVELS,
    NEUTRAL,
    SENIORITY_FADE_ABOVE,
    SENIORITY_FADE_BELOW,
    AttributeRule,
    Bools,
    Criteria,
    Participant,
    category_key,
    mentor_property,
    overlap_value,
    seniority_bounds,
    tenure_months,
    value_set,
)
from services.matching.explain import Explanation, explain, skill_targets

# --- the vectorized path --------------------------------------------------------------


def _answer_key(value: Any) -> str | None:
    """An answer as one category (a multi-choice answer: its sorted choices)."""
    keys = sorted(value_set(value))
    return "|".join(keys) if keys else None


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
        for rule in self.criteria.answer_rules:
            if rule.attribute in w:
                self._answer(rule, w[rule.attribute])
        self._exclusions(excluded)
        self._previous(w.get("previous_mentor", 0.0))
        self._preferences()

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
        low, high = seniority_bounds(self.criteria)
        uniques, codes = self._unique(
            [np.nan if p.seniority is None else tenure_months(p.seniority) for p in self.mentees]
        )
        mentee = np.array(uniques, dtype=np.float64).reshape(-1)
        gap = (index.seniority_months[None, :] - mentee[:, None]) / 12.0
        value = np.ones_like(gap)
        with np.errstate(invalid="ignore"):
            below = np.maximum(0.0, 1.0 - (low - gap) / SENIORITY_FADE_BELOW)
            above = np.maximum(0.0, 1.0 - (gap - high) / SENIORITY_FADE_ABOVE)
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

    def _answer(self, rule: AttributeRule, weight: float) -> None:
        """One intake-answer rule: a row per distinct mentee answer over the mentors."""
        theirs = [m.attributes.get(rule.attribute) for m in self.index.mentors]
        keys = [value_set(p.attributes.get(rule.attribute)) for p in self.mentees]
        uniques, codes = self._unique(keys)
        if rule.rule == "overlap":
            sets = [value_set(v) for v in theirs]
            rows = np.array(
                [[overlap_value(list(u), list(s)) for s in sets] for u in uniques], np.float32
            ).reshape(len(uniques), self.index.n)
        else:
            book = _Codebook()
            mentor_codes = np.array([book.add(_answer_key(v)) for v in theirs], np.int32)
            mentee_codes = np.array([book.get(_answer_key(list(u))) for u in uniques], np.int32)
            rows = _category_rows(rule.rule, mentee_codes, mentor_codes)
        self.values.append(_Table(rule.attribute, codes, (rows * weight).astype(np.float32)))

    def _previous(self, weight: float) -> None:
        """Mentors a mentee completed a match with (sparse: a few per mentee at most)."""
        rows: list[int] = []
        cols: list[int] = []
        if weight > 0:
            for i, p in enumerate(self.mentees):
                for mentor in p.previous:
                    j = self.index.column.get(mentor)
                    if j is not None:
                        rows.append(i)
                        cols.append(j)
        self.previous_weight = np.float32(weight)
        self.previous_rows = np.array(rows, dtype=np.int32)
        self.previous_cols = np.array(cols, dtype=np.int32)
        self.previous_ptr = np.searchsorted(self.previous_rows, np.arange(self.m + 1))

    def _preferences(self) -> None:
        """Mentees who state preferences score with the weights normalized over every
        criterion plus `preferences` (`Criteria.active`): the same as their score without
        it times (1 - w), plus w x the share met. One 0/1 row over the mentors per distinct
        stated preference (key and wanted values); each mentee points at theirs (slots,
        padded with the zero row 0), so memory grows with distinct wishes, not mentees."""
        index = self.index
        weight = self.criteria.active(preferences=True).get("preferences", 0.0)
        stated = [p.preferences if weight > 0 else {} for p in self.mentees]
        width = max((len(s) for s in stated), default=0)
        self.pref_any = width > 0
        self.pref_scale = np.ones(self.m, dtype=np.float32)
        self.pref_share = np.zeros(self.m, dtype=np.float32)
        self.pref_slots = np.zeros((self.m, width), dtype=np.int32)
        rows = [np.zeros(index.n, dtype=np.float32)]
        code: dict[tuple[str, frozenset[str]], int] = {}
        have: dict[str, list[frozenset[str]]] = {}  # key -> each mentor's values
        for i, wishes in enumerate(stated):
            if not wishes:
                continue
            for k, (name, wanted) in enumerate(wishes.items()):
                if (name, wanted) not in code:
                    if name not in have:
                        have[name] = [mentor_property(m, name) for m in index.mentors]
                    rows.append(np.array([bool(wanted & h) for h in have[name]], np.float32))
                    code[name, wanted] = len(rows) - 1
                self.pref_slots[i, k] = code[name, wanted]
            self.pref_scale[i] = 1.0 - weight
            self.pref_share[i] = weight / len(wishes)
        self.pref_met = np.stack(rows).reshape(len(rows), index.n)

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
        lo, hi = self.previous_ptr[start], self.previous_ptr[stop]
        if hi > lo:
            score[self.previous_rows[lo:hi] - start, self.previous_cols[lo:hi]] += (
                self.previous_weight
            )
        if self.pref_any:
            score *= self.pref_scale[start:stop, None]
            acc = np.zeros((c, n), dtype=np.float32)
            block = self.pref_slots[start:stop]
            for k in range(block.shape[1]):
                np.take(self.pref_met, block[:, k], axis=0, out=buf)
                acc += buf
            acc *= self.pref_share[start:stop, None]
            score += acc
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
