r"""Sort-of-CLEVR: the visual question answering set of the Relation Network paper.

From Santoro et al., "A simple neural network module for relational reasoning"
(NeurIPS 2017, section 4): small pictures of coloured shapes, and questions about one
object (*non-relational*) or about how it relates to the others (*relational*). This is
an independent generator written from the paper's description:

- **Images**: 75x75 RGB on white ``(255, 255, 255)``. Six objects, one of each colour of
  :data:`COLORS` (red, green, blue, orange, gray, yellow; their values in :data:`RGB`).
  Each is a square (11x11 pixels: columns ``x-5..x+5``, rows ``y-5..y+5``) or a circle
  (radius 5: the pixels with :math:`(c - x)^2 + (r - y)^2 \le 25`), with equal
  probability. Centres are integers ``(x, y)`` in ``[5, 69]`` (``x`` the column, ``y`` the
  row), at least 10 pixels apart (Euclidean): each object's centre is redrawn until it is
  10 or more pixels from every centre placed before it. Objects are painted in colour
  order, later over earlier.
- **Questions**: per image 10 non-relational then 10 relational ones; each picks its
  reference colour uniformly among the 6 and its subtype uniformly among 3. A question
  is an 11-float vector: ``[0:6]`` the one-hot colour of the reference object, ``[6]``
  1 if non-relational, ``[7]`` 1 if relational, ``[8:11]`` the one-hot subtype.
- **Question types** (:data:`QUESTION_TYPES`, :func:`question_type`): non-relational
  subtype 0 ``"shape"`` (its shape), 1 ``"left"`` (is it on the left, ``x < 37.5``?),
  2 ``"top"`` (is it on top, ``y < 37.5``?); relational subtype 0 ``"closest"`` (the
  shape of the object closest to it), 1 ``"furthest"`` (the shape of the object furthest
  from it), 2 ``"count"`` (how many objects have its shape, itself included).
- **Answers**: 10 classes, :data:`ANSWERS`: 0 yes, 1 no, 2 square, 3 circle, 4..9 the
  counts 1..6.

Distances are Euclidean between centres. The reference object is never its own closest
object. (The most used public generator excludes it by giving it a squared distance of
999, so when every other object is more than :math:`\sqrt{999} \approx 31.6` pixels away
it answers with the reference's own shape.) Ties, possible with integer centres, go to
the object that comes first in colour order, for both ``"closest"`` and ``"furthest"``.

:func:`generate` builds a set from a seed; :func:`load_sort_of_clevr` builds the
paper's 9,800 training and 200 test images, optionally cached on disk.
"""

from __future__ import annotations

import dataclasses
import io
import numbers
import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from torchkata.runs import atomic_write_bytes

__all__ = [
    "ANSWERS",
    "COLORS",
    "QUESTION_TYPES",
    "RGB",
    "SHAPES",
    "SortOfClevr",
    "answer_questions",
    "generate",
    "load_sort_of_clevr",
    "question_type",
]

COLORS: tuple[str, ...] = ("red", "green", "blue", "orange", "gray", "yellow")
"""The six object colours, in colour order (the order of painting and of tie-breaking)."""

RGB: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 156, 0),
    (128, 128, 128),
    (255, 255, 0),
)
"""The RGB value of each colour of :data:`COLORS`."""

ANSWERS: tuple[str, ...] = ("yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6")
"""The 10 answer classes, by index."""

QUESTION_TYPES: tuple[str, ...] = ("shape", "left", "top", "closest", "furthest", "count")
"""The six question types: non-relational subtypes 0..2, then relational subtypes 0..2."""

SHAPES: tuple[str, ...] = ("square", "circle")
"""Shape names by code: 0 square, 1 circle."""

IMAGE_SIZE = 75  # pixels, both sides
N_OBJECTS = 6  # one per colour
N_QUESTIONS = 10  # of each kind, non-relational and relational
QUESTION_DIM = 11  # 6 colour + 2 kind + 3 subtype
_HALF = 5  # half side of a square, radius of a circle
_MIN_DIST = 10  # minimum distance between centres, pixels
_LO, _HI = _HALF, IMAGE_SIZE - 1 - _HALF  # centres in [5, 69]
_MID = 37.5  # "left" is x < 37.5, "top" is y < 37.5: the middle of columns 0..74 is 37
_CACHE_VERSION = 1  # bump when the generator or the file layout changes

# The 11x11 stamps: offsets (dr, dc) of the pixels each shape covers around its centre.
_DR, _DC = np.mgrid[-_HALF : _HALF + 1, -_HALF : _HALF + 1]  # (11, 11) each
_STAMPS = (
    np.ones((2 * _HALF + 1,) * 2, dtype=bool),  # square: all 121 pixels
    _DR**2 + _DC**2 <= _HALF**2,  # circle: 81 pixels
)


def _check_int(name: str, value: object, low: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True, eq=False)
class SortOfClevr:
    """A set of Sort-of-CLEVR images, each with 20 questions and their answers.

    Compare two sets field by field with :func:`torch.equal` (``==`` is identity).

    Attributes:
        images: (N, 3, 75, 75) uint8 RGB pixels.
        questions: (N, 20, 11) float32 question vectors, 10 non-relational then 10
            relational (layout in the module docstring).
        answers: (N, 20) int64 answer classes in 0..9, indices into :data:`ANSWERS`.
        shapes: (N, 6) int64 shape of each object in colour order: 0 square, 1 circle.
        centers: (N, 6, 2) int64 centre ``(x, y)`` of each object in colour order,
            ``x`` the column and ``y`` the row, in [5, 69].
    """

    images: Tensor
    questions: Tensor
    answers: Tensor
    shapes: Tensor
    centers: Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def scenes(self) -> list[list[dict]]:
        """Each image's objects as dicts, in colour order, built on each access.

        ``{"color": k, "shape": "square" | "circle", "center": (x, y)}`` with ``k`` an
        index into :data:`COLORS` and integer ``x`` (column), ``y`` (row).
        """
        shapes, centers = self.shapes.tolist(), self.centers.tolist()
        return [
            [
                {"color": k, "shape": SHAPES[s], "center": (c[0], c[1])}
                for k, (s, c) in enumerate(zip(ss, cc, strict=True))
            ]
            for ss, cc in zip(shapes, centers, strict=True)
        ]

    def state_descriptions(self) -> Tensor:
        """The objects as feature vectors, the paper's state-description input.

        Each object is its one-hot colour (6), its shape (0 square, 1 circle) and its
        centre scaled to [-1, 1] by ``(v - 37) / 32`` (x, then y).

        Returns:
            (N, 6, 9) float32, objects in colour order.
        """
        N = len(self)
        colors = torch.eye(N_OBJECTS).expand(N, N_OBJECTS, N_OBJECTS)  # (N, 6, 6)
        shapes = self.shapes.to(torch.float32).unsqueeze(-1)  # (N, 6, 1)
        xy = (self.centers.to(torch.float32) - 37.0) / 32.0  # (N, 6, 2)
        return torch.cat((colors, shapes, xy), dim=-1)  # (N, 6, 9)


def question_type(questions: Tensor) -> Tensor:
    """The type of each question, an index into :data:`QUESTION_TYPES`.

    Non-relational questions get their subtype (0 shape, 1 left, 2 top), relational
    ones 3 plus theirs (3 closest, 4 furthest, 5 count).

    Args:
        questions: (..., 11) question vectors.

    Returns:
        (...) int64 in 0..5.

    Examples:
        >>> q = torch.zeros(2, 11)
        >>> q[0, [0, 6, 9]] = 1  # red, non-relational, subtype 1: "is it on the left?"
        >>> q[1, [2, 7, 10]] = 1  # blue, relational, subtype 2: "how many like it?"
        >>> [QUESTION_TYPES[t] for t in question_type(q).tolist()]
        ['left', 'count']
    """
    if not isinstance(questions, Tensor):
        raise TypeError(f"questions: expected a torch.Tensor, got {type(questions).__name__}")
    if questions.dim() == 0 or questions.shape[-1] != QUESTION_DIM:
        raise ValueError(
            f"questions: expected shape (..., {QUESTION_DIM}), got {tuple(questions.shape)}"
        )
    relational = (questions[..., 7] > 0.5).long()  # (...)
    return questions[..., 8:11].argmax(-1) + 3 * relational


def answer_questions(questions: Tensor, shapes: Tensor, centers: Tensor) -> Tensor:
    """The answer to each question about each scene, as :func:`generate` computes them.

    Useful to ask new questions about generated scenes, or about scenes built by hand.
    The reference object is never its own closest or furthest object; ties go to the
    object first in colour order.

    Args:
        questions: (N, Q, 11) question vectors (layout in the module docstring).
        shapes: (N, 6) integer shapes in colour order, 0 square, 1 circle.
        centers: (N, 6, 2) integer centres ``(x, y)`` in colour order.

    Returns:
        (N, Q) int64 answer classes, indices into :data:`ANSWERS`.

    Examples:
        >>> shapes = torch.tensor([[0, 1, 1, 0, 0, 0]])
        >>> centers = torch.tensor([[[10, 10], [20, 10], [60, 60], [10, 60], [40, 40], [60, 10]]])
        >>> q = torch.zeros(1, 2, 11)
        >>> q[0, 0, [0, 7, 8]] = 1  # red: the shape of the object closest to it?
        >>> q[0, 1, [0, 7, 10]] = 1  # red: how many objects have its shape?
        >>> [ANSWERS[a] for a in answer_questions(q, shapes, centers)[0].tolist()]
        ['circle', '4']
    """
    for name, t, dims in (
        ("questions", questions, 3),
        ("shapes", shapes, 2),
        ("centers", centers, 3),
    ):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.dim() != dims:
            raise ValueError(f"{name}: expected {dims} dimensions, got shape {tuple(t.shape)}")
    N, Q, D = questions.shape
    if D != QUESTION_DIM:
        raise ValueError(f"questions: expected shape (N, Q, {QUESTION_DIM}), got {(N, Q, D)}")
    if tuple(shapes.shape) != (N, N_OBJECTS):
        raise ValueError(f"shapes: expected shape {(N, N_OBJECTS)}, got {tuple(shapes.shape)}")
    if tuple(centers.shape) != (N, N_OBJECTS, 2):
        raise ValueError(f"centers: expected shape {(N, N_OBJECTS, 2)}, got {tuple(centers.shape)}")
    shapes = shapes.long()
    centers = centers.long()
    ref = questions[..., :N_OBJECTS].argmax(-1)  # (N, Q) colour of the reference object
    kind = question_type(questions)  # (N, Q) in 0..5

    # Every answer about every object first, (N, 6 objects, 6 types), then look up each
    # question's (reference, type).
    # Squared distances are exact integers: ties compare equal, as the distances would.
    diff = centers[:, :, None, :] - centers[:, None, :, :]  # (N, 6, 6, 2)
    d2 = (diff**2).sum(-1).to(torch.float64)  # (N, 6, 6)
    eye = torch.eye(N_OBJECTS, dtype=torch.bool, device=centers.device)  # never itself
    # argmin / argmax return the first extreme index: ties go to the first colour.
    closest = d2.masked_fill(eye, float("inf")).argmin(-1)  # (N, 6)
    furthest = d2.masked_fill(eye, float("-inf")).argmax(-1)  # (N, 6)
    count = (shapes[:, :, None] == shapes[:, None, :]).sum(-1)  # (N, 6) in 1..6
    table = torch.stack(
        (
            2 + shapes,  # shape: square 2, circle 3
            (centers[..., 0] >= _MID).long(),  # left: yes 0, no 1
            (centers[..., 1] >= _MID).long(),  # top: yes 0, no 1
            2 + shapes.gather(1, closest),  # closest
            2 + shapes.gather(1, furthest),  # furthest
            3 + count,  # count: "1" is 4 ... "6" is 9
        ),
        dim=-1,
    )  # (N, 6, 6)
    flat = table.reshape(N, N_OBJECTS * len(QUESTION_TYPES))  # (N, 36)
    return flat.gather(1, ref * len(QUESTION_TYPES) + kind)  # (N, Q)


def _draw_centers(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 6, 2) int64 centres, each redrawn until >= 10 px from the ones placed before."""
    centers = np.empty((n, N_OBJECTS, 2), dtype=np.int64)
    for k in range(N_OBJECTS):
        pending = np.arange(n)  # images whose object k is not placed yet
        while pending.size:
            candidate = rng.integers(_LO, _HI + 1, size=(pending.size, 2))  # (m, 2)
            centers[pending, k] = candidate
            d2 = ((centers[pending, :k] - candidate[:, None, :]) ** 2).sum(-1)  # (m, k)
            pending = pending[(d2 < _MIN_DIST**2).any(-1)]
    return centers


def _render(shapes: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(N, 3, 75, 75) uint8 images: the stamps painted in colour order over white."""
    N = shapes.shape[0]
    S = IMAGE_SIZE
    images = np.full((N, 3, S, S), 255, dtype=np.uint8)
    flat = images.reshape(-1)  # a view: writes land in images
    for k in range(N_OBJECTS):  # later colours paint over earlier ones
        for s, stamp in enumerate(_STAMPS):
            idx = np.flatnonzero(shapes[:, k] == s)  # (m,) images with this shape
            offsets = _DR[stamp] * S + _DC[stamp]  # (P,) the stamp's pixels around (0, 0)
            centre = idx * 3 * S * S + centers[idx, k, 1] * S + centers[idx, k, 0]  # (m,)
            pixels = (centre[:, None] + offsets).reshape(-1)  # (m * P,) in channel 0
            for ch in range(3):
                flat[pixels + ch * S * S] = RGB[k][ch]
    return images


def _questions(colors: np.ndarray, subtypes: np.ndarray) -> np.ndarray:
    """(N, 20, 11) float32 question vectors from (N, 20) colours and subtypes."""
    N, Q = colors.shape
    q = np.zeros((N, Q, QUESTION_DIM), dtype=np.float32)
    np.put_along_axis(q, colors[..., None].astype(np.int64), 1.0, axis=-1)
    q[:, :N_QUESTIONS, 6] = 1.0  # non-relational
    q[:, N_QUESTIONS:, 7] = 1.0  # relational
    np.put_along_axis(q, 8 + subtypes[..., None].astype(np.int64), 1.0, axis=-1)
    return q


def _assemble(
    images: np.ndarray,
    colors: np.ndarray,
    subtypes: np.ndarray,
    shapes: np.ndarray,
    centers: np.ndarray,
) -> SortOfClevr:
    questions = torch.from_numpy(_questions(colors, subtypes))
    shapes_t = torch.from_numpy(shapes.astype(np.int64))
    centers_t = torch.from_numpy(centers.astype(np.int64))
    return SortOfClevr(
        images=torch.from_numpy(images),
        questions=questions,
        answers=answer_questions(questions, shapes_t, centers_t),
        shapes=shapes_t,
        centers=centers_t,
    )


def _generate_arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    """The random draws and the images, compact: what the cache stores."""
    rng = np.random.default_rng(seed)
    centers = _draw_centers(rng, n)  # (n, 6, 2)
    shapes = rng.integers(0, 2, size=(n, N_OBJECTS))  # (n, 6)
    colors = rng.integers(0, N_OBJECTS, size=(n, 2 * N_QUESTIONS))  # (n, 20)
    subtypes = rng.integers(0, 3, size=(n, 2 * N_QUESTIONS))  # (n, 20)
    return {
        "images": _render(shapes, centers),
        "colors": colors.astype(np.int8),
        "subtypes": subtypes.astype(np.int8),
        "shapes": shapes.astype(np.int8),
        "centers": centers.astype(np.int8),
    }


def generate(n_images: int, seed: int) -> SortOfClevr:
    """Generate ``n_images`` Sort-of-CLEVR images with their questions and answers.

    Everything is drawn from ``numpy.random.default_rng(seed)``, in blocks over all
    images: the same ``n_images`` and ``seed`` give identical data. (A set is not a
    prefix of a larger one with the same seed.) 10,000 images take about 0.3 s on one
    CPU core (stamps painted with vectorised indexing, no per-pixel loop); they hold
    169 MB of pixels.

    Args:
        n_images: number of images :math:`N`, at least 1.
        seed: seed of the generator, an int >= 0.

    Returns:
        SortOfClevr: ``images`` (N, 3, 75, 75) uint8, ``questions`` (N, 20, 11)
        float32, ``answers`` (N, 20) int64, ``shapes`` (N, 6) int64, ``centers``
        (N, 6, 2) int64.

    Examples:
        >>> data = generate(4, seed=0)
        >>> len(data), tuple(data.images.shape), data.images.dtype
        (4, (4, 3, 75, 75), torch.uint8)
        >>> tuple(data.questions.shape), tuple(data.answers.shape)
        ((4, 20, 11), (4, 20))
        >>> tuple(data.state_descriptions().shape), len(data.scenes[0])
        ((4, 6, 9), 6)
        >>> torch.equal(data.answers, generate(4, seed=0).answers)
        True
    """
    n = _check_int("n_images", n_images, 1)
    s = _check_int("seed", seed, 0)
    return _assemble(**_generate_arrays(n, s))


def _cache_path(cache_dir: Path, n: int, seed: int) -> Path:
    return cache_dir / f"sort_of_clevr_v{_CACHE_VERSION}_n{n}_seed{seed}.npz"


def _read_cache(path: Path, n: int) -> dict[str, np.ndarray] | None:
    """The arrays of a cache file, or ``None`` if it is missing, unreadable or wrong."""
    expected = {
        "images": ((n, 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
        "colors": ((n, 2 * N_QUESTIONS), np.int8),
        "subtypes": ((n, 2 * N_QUESTIONS), np.int8),
        "shapes": ((n, N_OBJECTS), np.int8),
        "centers": ((n, N_OBJECTS, 2), np.int8),
    }
    try:
        # Reading each member to its end checks its CRC-32: a flipped byte raises.
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in expected}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    for name, (shape, dtype) in expected.items():
        if arrays[name].shape != shape or arrays[name].dtype != dtype:
            return None
    a = arrays
    if not (
        ((a["colors"] >= 0) & (a["colors"] < N_OBJECTS)).all()
        and ((a["subtypes"] >= 0) & (a["subtypes"] < 3)).all()
        and ((a["shapes"] == 0) | (a["shapes"] == 1)).all()
        and ((a["centers"] >= _LO) & (a["centers"] <= _HI)).all()
    ):
        return None
    return arrays


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed ``.npz`` atomically (a temporary file renamed over ``path``)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _load_split(n: int, seed: int, cache_dir: Path | None) -> SortOfClevr:
    if cache_dir is None:
        return _assemble(**_generate_arrays(n, seed))
    path = _cache_path(cache_dir, n, seed)
    arrays = _read_cache(path, n) if path.exists() else None
    if arrays is None:  # missing, or corrupt: regenerate and overwrite
        arrays = _generate_arrays(n, seed)
        _write_cache(path, arrays)
    return _assemble(**arrays)


def load_sort_of_clevr(
    n_train: int = 9800,
    n_test: int = 200,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[SortOfClevr, SortOfClevr]:
    """The paper's Sort-of-CLEVR: 9,800 training and 200 test images by default.

    The training set is ``generate(n_train, 2 * seed)`` and the test set
    ``generate(n_test, 2 * seed + 1)``: different seeds, so the two never share a
    random stream, and no two values of ``seed`` share one either.

    With ``cache_dir``, each split is kept there as one uncompressed ``.npz`` named by its
    size, its seed and a format version, holding uint8 images and int8 draws
    (questions are rebuilt from colours and subtypes, answers recomputed); it loads with
    ``allow_pickle=False``. The default sizes take 169 MB (9,800 + 200 images), where
    the most used public generator writes a 1.4 GB pickle of float64 pixels. Loading
    them takes about 0.3 s, about as long as generating them: the cache pins the data on
    disk rather than saving time. A file is written to a temporary name in the same
    folder, then renamed, so a crash never leaves half a cache; an unreadable, truncated
    or inconsistent cache file is regenerated and overwritten.

    Args:
        n_train: number of training images, at least 1. Default: ``9800``.
        n_test: number of test images, at least 1. Default: ``200``.
        seed: seed of the pair of splits, an int >= 0. Default: ``0``.
        cache_dir: folder of the cache files, created if missing; ``None`` generates
            every time and writes nothing. Default: ``None``.

    Returns:
        (train, test): two :class:`SortOfClevr` sets.

    Examples:
        >>> train, test = load_sort_of_clevr(n_train=8, n_test=2, seed=1)
        >>> len(train), len(test)
        (8, 2)
    """
    n_tr = _check_int("n_train", n_train, 1)
    n_te = _check_int("n_test", n_test, 1)
    s = _check_int("seed", seed, 0)
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(
            f"cache_dir: expected a str, an os.PathLike or None, got {type(cache_dir).__name__}"
        )
    folder = None
    if cache_dir is not None:
        folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
    return _load_split(n_tr, 2 * s, folder), _load_split(n_te, 2 * s + 1, folder)
