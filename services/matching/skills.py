"""Skill names and free-text goals reduced to canonical skill keys.

HR systems and people spell the same skill many ways ("Python 3", "py", "PostgreSQL",
"public speaker"). Scoring compares keys, so everything passes through `normalize_skill`;
free-text goals are read for known skill phrases with `goal_skills`. Pure functions, no I/O.
"""

import re
from collections.abc import Collection, Iterable
from functools import lru_cache

# Variant -> canonical key. Both sides of every comparison go through this table, so a
# mentor's "Postgres" meets a mentee's "PostgreSQL"; extend it as real data shows variants.
SYNONYMS: dict[str, str] = {
    # languages and platforms
    "py": "python", "python3": "python", "python 3": "python", "python programming": "python",
    "js": "javascript", "ecmascript": "javascript", "node": "node.js", "nodejs": "node.js",
    "node js": "node.js", "ts": "typescript", "golang": "go", "go lang": "go",
    "c sharp": "c#", "csharp": "c#", "dotnet": ".net", "dot net": ".net", "cpp": "c++",
    "c plus plus": "c++", "react.js": "react", "reactjs": "react", "react js": "react",
    "vue.js": "vue", "vuejs": "vue", "k8s": "kubernetes", "kube": "kubernetes",
    "postgres": "postgresql", "psql": "postgresql", "structured query language": "sql",
    "aws": "cloud", "amazon web services": "cloud", "gcp": "cloud", "azure": "cloud",
    "cloud computing": "cloud", "ml": "machine learning", "machine-learning": "machine learning",
    "deep learning": "machine learning", "ai": "artificial intelligence",
    "genai": "artificial intelligence", "llm": "artificial intelligence",
    "llms": "artificial intelligence", "data analysis": "data analytics",
    "analytics": "data analytics", "data viz": "data visualization",
    "dataviz": "data visualization", "stats": "statistics", "devops": "devops",
    "ci/cd": "devops", "cicd": "devops", "continuous delivery": "devops",
    "infosec": "security", "cybersecurity": "security", "cyber security": "security",
    "appsec": "security", "system design": "architecture",
    "systems design": "architecture", "software architecture": "architecture",
    "distributed systems": "architecture", "microservices": "architecture",
    "ux": "user experience", "ux design": "user experience", "ui": "user interface",
    "ui design": "user interface", "product": "product management",
    "pm": "product management", "product manager": "product management",
    "project management": "project management", "agile": "agile", "scrum": "agile",
    "kanban": "agile",
    # people skills
    "public speaker": "public speaking", "presenting": "public speaking",
    "presentations": "public speaking", "presentation skills": "public speaking",
    "presentation": "public speaking", "speaking": "public speaking",
    "leading teams": "leadership", "team leadership": "leadership", "leader": "leadership",
    "lead": "leadership", "leading": "leadership",
    "people management": "people management", "managing people": "people management",
    "line management": "people management", "managing teams": "people management",
    "manager": "people management", "management": "people management",
    "negotiating": "negotiation", "negotiations": "negotiation",
    "communicating": "communication", "communication skills": "communication",
    "writing": "communication", "feedback": "communication",
    "stakeholders": "stakeholder management", "stakeholder": "stakeholder management",
    "mentoring": "coaching", "coach": "coaching", "career": "career development",
    "career growth": "career development", "promotion": "career development",
    "strategy": "strategic thinking", "strategic planning": "strategic thinking",
    "finance": "finance", "budgeting": "finance", "accounting": "finance",
    "sales": "sales", "selling": "sales", "marketing": "marketing",
    "hiring": "recruiting", "interviewing": "recruiting", "recruitment": "recruiting",
}  # fmt: skip

# Words that carry no skill on their own; dropped before a goal is looked up as a whole.
_FILLER = frozenset({
    "a", "an", "the", "to", "at", "in", "on", "of", "for", "with", "and", "or", "my", "me",
    "i", "get", "got", "be", "become", "better", "more", "improve", "improving", "learn",
    "learning", "grow", "growing", "develop", "developing", "skills", "skill", "how", "good",
    "great", "want", "would", "like", "about", "into", "from",
})  # fmt: skip
_NON_WORD = re.compile(r"[^\w#+.]+")
_SPACES = re.compile(r"\s+")
_MAX_PHRASE_WORDS = 4
_CANONICAL = frozenset(SYNONYMS.values())


@lru_cache(maxsize=65_536)
def normalize_skill(name: str) -> str:
    """The canonical key of a skill name: case-folded, punctuation-trimmed, synonyms merged."""
    text = _SPACES.sub(" ", _NON_WORD.sub(" ", name.casefold())).strip(" .")
    return SYNONYMS.get(text, text)


def normalize_skills(skills: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Canonical key -> level; two spellings of one skill keep the higher level."""
    out: dict[str, int] = {}
    for name, level in skills:
        key = normalize_skill(name)
        if key:
            out[key] = max(level, out.get(key, 0))
    return out


def goal_skills(goal: str, vocabulary: Collection[str]) -> list[str]:
    """The skill keys a free-text goal asks for, in order of appearance.

    Phrases of up to four words are looked up longest first among the known skills
    (`vocabulary`, typically every mentor's skills) and the synonyms, so "get better at
    public speaking and SQL" yields ["public speaking", "sql"]. A goal that names no known
    skill is kept as one key of its own: it still counts, uncovered, in the denominator.
    """
    words = _SPACES.sub(" ", _NON_WORD.sub(" ", goal.casefold())).strip(" .").split()
    found: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(_MAX_PHRASE_WORDS, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + size])
            if size == 1 and phrase in _FILLER:
                continue
            key = SYNONYMS.get(phrase, phrase)
            if key in vocabulary or phrase in SYNONYMS or phrase in _CANONICAL:
                if key not in found:
                    found.append(key)
                i += size
                break
        else:
            i += 1
    if found:
        return found
    rest = " ".join(w for w in words if w not in _FILLER)
    whole = normalize_skill(rest) if rest else ""
    return [whole] if whole else []


def names_a_skill(goal: str) -> bool:
    """Whether a goal names a skill the synonyms know, whatever skills mentors have."""
    keys = goal_skills(goal, ())
    return bool(keys) and any(k in _CANONICAL for k in keys)


def goals_to_skills(goals: Iterable[str], vocabulary: Collection[str]) -> tuple[str, ...]:
    """Every skill key a list of goals asks for, each once."""
    keys: dict[str, None] = {}
    for goal in goals:
        for key in goal_skills(goal, vocabulary):
            keys.setdefault(key)
    return tuple(keys)
