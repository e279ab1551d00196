"""Sort-of-CLEVR: pixels, questions, answers, determinism, the on-disk cache, validation.

Answers are re-derived here question by question with plain Python (``math.dist``
loops) and pixels are re-painted from the geometric definitions of the shapes, both
independently of the module's vectorised code.
"""

from __future__ import annotations

import itertools
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import torchkata.data.sort_of_clevr as soc
from torchkata.data.sort_of_clevr import (
    ANSWERS,
    COLORS,
    QUESTION_TYPES,
    RGB,
    SHAPES,
    SortOfClevr,
    answer_questions,
    generate,
    load_sort_of_clevr,
    question_type,
)

N = 200
FIELDS = ("images", "questions", "answers", "shapes", "centers")


@pytest.fixture(scope="module")
def data() -> SortOfClevr:
    return generate(N, seed=3)


def assert_same(a: SortOfClevr, b: SortOfClevr) -> None:
    for name in FIELDS:
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def decode(q: list[float]) -> tuple[int, bool, int]:
    """(colour, relational, subtype) of one question vector, checking it is well formed."""
    assert all(v in (0.0, 1.0) for v in q)
    assert sum(q[0:6]) == 1 and sum(q[6:8]) == 1 and sum(q[8:11]) == 1
    return q[0:6].index(1.0), q[7] == 1.0, q[8:11].index(1.0)


def reference_answer(color: int, relational: bool, subtype: int, shapes, centers) -> int:
    """The answer by the paper's definitions, one question at a time."""
    me = centers[color]
    if not relational:
        if subtype == 0:
            return 2 + shapes[color]  # square 2, circle 3
        if subtype == 1:
            return 0 if me[0] < 37.5 else 1  # left of the middle: yes 0, no 1
        return 0 if me[1] < 37.5 else 1  # top
    if subtype == 2:
        return 3 + sum(s == shapes[color] for s in shapes)  # count k is class 3 + k
    others = [k for k in range(6) if k != color]
    dists = [math.dist(me, centers[k]) for k in others]
    target = min(dists) if subtype == 0 else max(dists)
    return 2 + shapes[others[dists.index(target)]]  # index(): the first in colour order


def question(color: int, relational: bool, subtype: int) -> torch.Tensor:
    q = torch.zeros(11)
    q[color] = 1
    q[7 if relational else 6] = 1
    q[8 + subtype] = 1
    return q


# --- shapes, dtypes, determinism -----------------------------------------------------


def test_fields_have_documented_shapes_and_dtypes(data):
    assert len(data) == N
    expected = {
        "images": ((N, 3, 75, 75), torch.uint8),
        "questions": ((N, 20, 11), torch.float32),
        "answers": ((N, 20), torch.int64),
        "shapes": ((N, 6), torch.int64),
        "centers": ((N, 6, 2), torch.int64),
    }
    for name, (shape, dtype) in expected.items():
        t = getattr(data, name)
        assert tuple(t.shape) == shape and t.dtype == dtype, name
    assert data.state_descriptions().shape == (N, 6, 9)
    assert data.state_descriptions().dtype == torch.float32


def test_public_tables():
    assert COLORS == ("red", "green", "blue", "orange", "gray", "yellow")
    assert RGB == (
        (255, 0, 0),
        (0, 255, 0),
        (0, 0, 255),
        (255, 156, 0),
        (128, 128, 128),
        (255, 255, 0),
    )
    assert ANSWERS == ("yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6")
    assert QUESTION_TYPES == ("shape", "left", "top", "closest", "furthest", "count")
    assert SHAPES == ("square", "circle")


def test_same_seed_same_data_other_seed_other_data(data):
    assert_same(generate(N, seed=3), data)
    other = generate(N, seed=4)
    for name in FIELDS:
        assert not torch.equal(getattr(other, name), getattr(data, name)), name


def test_train_and_test_come_from_distinct_seeds():
    train, test = load_sort_of_clevr(n_train=30, n_test=30, seed=5)
    assert_same(train, generate(30, 10))
    assert_same(test, generate(30, 11))
    # Seeds 2s and 2s + 1 never collide across values of seed either.
    train6, _ = load_sort_of_clevr(n_train=30, n_test=30, seed=6)
    scenes = {tuple(c.flatten().tolist()) for d in (train, test, train6) for c in d.centers}
    assert len(scenes) == 90


# --- answers ---------------------------------------------------------------------------


def test_every_answer_matches_an_independent_derivation(data):
    questions = data.questions.tolist()
    answers = data.answers.tolist()
    shapes = data.shapes.tolist()
    centers = [[tuple(c) for c in cc] for cc in data.centers.tolist()]
    for i, j in itertools.product(range(N), range(20)):
        color, relational, subtype = decode(questions[i][j])
        expected = reference_answer(color, relational, subtype, shapes[i], centers[i])
        assert answers[i][j] == expected, (i, j, color, relational, subtype)


def test_the_reference_is_never_its_own_closest_when_everything_is_far():
    # Red sits alone in a corner, every other object > sqrt(999) px away: the public
    # generator's squared distance of 999 for the reference would answer "square" here.
    shapes = torch.tensor([[0, 1, 1, 1, 1, 1]])
    centers = torch.tensor([[[5, 5], [69, 69], [69, 5], [5, 69], [40, 60], [60, 40]]])
    q = question(0, relational=True, subtype=0)[None, None]  # (1, 1, 11)
    assert ANSWERS[answer_questions(q, shapes, centers).item()] == "circle"


def test_generated_far_references_get_their_true_nearest_neighbour(data):
    # Cases in the data where the nearest other object is beyond sqrt(999) px, so the
    # squared-distance-999 rule would pick the reference itself.
    centers = data.centers.double()
    d = torch.cdist(centers, centers) + torch.eye(6) * 1e9  # (N, 6, 6)
    kinds = question_type(data.questions)
    ref = data.questions[..., :6].argmax(-1)
    found = differs = 0
    for i, j in zip(*torch.nonzero(kinds == 3, as_tuple=True), strict=True):
        r = ref[i, j]
        if d[i, r].min() ** 2 > 999:
            found += 1
            nearest = int(d[i, r].argmin())
            assert data.answers[i, j] == 2 + data.shapes[i, nearest]
            differs += int(data.shapes[i, nearest] != data.shapes[i, r])
    assert found >= 5 and differs >= 1  # the data exercise the bug's condition


@pytest.mark.parametrize("green, orange", [(0, 1), (1, 0)])
def test_ties_go_to_the_first_colour(green, orange):
    # Gray at (37, 37); green and orange both exactly 10 px away; red, blue and yellow
    # all sqrt(2048) px away at three corners.
    shapes = torch.tensor([[1, green, 0, orange, 0, 0]])
    centers = torch.tensor([[[5, 5], [27, 37], [69, 69], [47, 37], [37, 37], [69, 5]]])
    q = torch.stack((question(4, True, 0), question(4, True, 1)))[None]  # (1, 2, 11)
    closest, furthest = answer_questions(q, shapes, centers)[0].tolist()
    assert closest == 2 + green  # green (1) before orange (3)
    assert furthest == 2 + 1  # red (0), a circle, before blue and yellow, squares


def test_answer_ranges_per_question_type(data):
    kinds = question_type(data.questions)
    allowed = {0: {2, 3}, 1: {0, 1}, 2: {0, 1}, 3: {2, 3}, 4: {2, 3}, 5: set(range(4, 10))}
    for kind, values in allowed.items():
        seen = set(data.answers[kinds == kind].tolist())
        assert seen <= values, QUESTION_TYPES[kind]
    assert set(data.answers.flatten().tolist()) == set(range(10))  # every class occurs
    for kind in (1, 2):  # left / top: yes and no both common
        yes = (data.answers[kinds == kind] == 0).double().mean().item()
        assert 0.35 < yes < 0.65


# --- questions -------------------------------------------------------------------------


def test_question_vectors_are_well_formed_and_ordered(data):
    q = data.questions
    assert set(q.unique().tolist()) == {0.0, 1.0}
    for part in (q[..., 0:6], q[..., 6:8], q[..., 8:11]):
        assert (part.sum(-1) == 1).all()
    assert (q[:, :10, 6] == 1).all() and (q[:, 10:, 7] == 1).all()
    kinds = question_type(q)
    assert ((kinds[:, :10] >= 0) & (kinds[:, :10] <= 2)).all()
    assert ((kinds[:, 10:] >= 3) & (kinds[:, 10:] <= 5)).all()
    assert torch.equal(kinds, q[..., 8:11].argmax(-1) + 3 * q[..., 7].long())


def test_colours_and_subtypes_are_roughly_balanced(data):
    colors = torch.bincount(data.questions[..., :6].argmax(-1).flatten(), minlength=6)
    kinds = torch.bincount(question_type(data.questions).flatten(), minlength=6)
    # 4,000 questions: 667 per colour and per type expected.
    assert colors.min() > 550 and colors.max() < 800, colors
    assert kinds.min() > 550 and kinds.max() < 800, kinds


def test_question_type_rejects_wrong_width():
    with pytest.raises(ValueError, match="questions"):
        question_type(torch.zeros(2, 10))


# --- scenes and pixels -----------------------------------------------------------------


def test_centres_in_range_and_far_apart(data):
    c = data.centers
    assert c.min() >= 5 and c.max() <= 69
    d = torch.cdist(c.double(), c.double()) + torch.eye(6) * 1e9
    assert d.min() >= 10
    assert set(data.shapes.unique().tolist()) == {0, 1}
    assert 0.4 < data.shapes.double().mean().item() < 0.6


def test_pixels_match_an_independent_painting(data):
    rows = torch.arange(75).view(75, 1)
    cols = torch.arange(75).view(1, 75)
    expected = torch.full((N, 3, 75, 75), 255, dtype=torch.uint8)
    for k in range(6):
        x = data.centers[:, k, 0].view(N, 1, 1)
        y = data.centers[:, k, 1].view(N, 1, 1)
        square = ((cols - x).abs() <= 5) & ((rows - y).abs() <= 5)  # (N, 75, 75)
        circle = (cols - x) ** 2 + (rows - y) ** 2 <= 25
        inside = torch.where(data.shapes[:, k].view(N, 1, 1) == 0, square, circle)
        color = torch.tensor(RGB[k], dtype=torch.uint8).view(1, 3, 1, 1)
        expected = torch.where(inside.unsqueeze(1), color, expected)  # later over earlier
    assert torch.equal(data.images, expected)


def test_centres_corners_and_background(data):
    img = data.images.permute(0, 2, 3, 1).tolist()  # (N, 75, 75, 3) as img[n][row][col]
    shapes, centers = data.shapes.tolist(), data.centers.tolist()
    white = [255, 255, 255]
    checked_square = checked_circle = 0
    for n in range(N // 2):

        def covered(c, r, skip, n=n):
            """Whether any object but ``skip`` could paint pixel (column c, row r)."""
            return any(
                k != skip and abs(c - centers[n][k][0]) <= 5 and abs(r - centers[n][k][1]) <= 5
                for k in range(6)
            )

        for k, (x, y) in enumerate(centers[n]):
            assert img[n][y][x] == list(RGB[k])  # centres are never painted over
            for c, r in ((x - 5, y - 5), (x + 5, y - 5), (x - 5, y + 5), (x + 5, y + 5)):
                if covered(c, r, k):
                    continue
                if shapes[n][k] == 0:
                    assert img[n][r][c] == list(RGB[k])
                    checked_square += 1
                else:
                    assert img[n][r][c] == white
                    checked_circle += 1
        # Background: pixels more than 8 px (Chebyshev) from every centre are white.
        for r, c in itertools.product(range(0, 75, 3), range(0, 75, 3)):
            if all(max(abs(c - x), abs(r - y)) > 8 for x, y in centers[n]):
                assert img[n][r][c] == white
    assert checked_square > 250 and checked_circle > 250


def test_scenes_and_state_descriptions_agree_with_fields(data):
    scenes = data.scenes
    assert len(scenes) == N and all(len(s) == 6 for s in scenes)
    sd = data.state_descriptions()
    for n in (0, 1, N - 1):
        for k, obj in enumerate(scenes[n]):
            x, y = data.centers[n, k].tolist()
            assert obj == {"color": k, "shape": SHAPES[data.shapes[n, k]], "center": (x, y)}
            expected = [0.0] * 6 + [float(data.shapes[n, k]), (x - 37) / 32, (y - 37) / 32]
            expected[k] = 1.0
            assert sd[n, k].tolist() == pytest.approx(expected, abs=1e-7)
    assert sd[..., 7:].min() >= -1 and sd[..., 7:].max() <= 1


# --- the cache -------------------------------------------------------------------------


def npz_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.npz"))


def test_cache_round_trip_is_exact(tmp_path):
    train, test = load_sort_of_clevr(n_train=20, n_test=5, seed=2, cache_dir=tmp_path)
    files = npz_files(tmp_path)
    assert [f.name for f in files] == [
        f"sort_of_clevr_v{soc._CACHE_VERSION}_n20_seed4.npz",
        f"sort_of_clevr_v{soc._CACHE_VERSION}_n5_seed5.npz",
    ]
    assert sorted(os.listdir(tmp_path)) == [f.name for f in files]  # no temporary left
    mtimes = [f.stat().st_mtime_ns for f in files]
    train2, test2 = load_sort_of_clevr(n_train=20, n_test=5, seed=2, cache_dir=tmp_path)
    assert [f.stat().st_mtime_ns for f in files] == mtimes  # read, not rewritten
    assert_same(train2, train)
    assert_same(test2, test)
    assert_same(train2, generate(20, 4))


def test_cache_is_a_compact_npz_without_pickles_or_float64(tmp_path):
    load_sort_of_clevr(n_train=20, n_test=5, cache_dir=tmp_path)
    path = npz_files(tmp_path)[0]  # n20
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as f:
        dtypes = {name: f[name].dtype for name in f.files}
    assert dtypes["images"] == np.uint8
    assert all(dt in (np.uint8, np.int8, np.int16) for dt in dtypes.values()), dtypes
    pixels = 20 * 3 * 75 * 75
    assert path.stat().st_size < pixels + 20_000  # the uint8 pixels plus a little
    assert path.stat().st_size < pixels * 8 / 7  # far below float64 pixels


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "empty"])
def test_a_damaged_cache_file_is_regenerated(tmp_path, damage):
    train, _ = load_sort_of_clevr(n_train=20, n_test=5, cache_dir=tmp_path)
    path = tmp_path / f"sort_of_clevr_v{soc._CACHE_VERSION}_n20_seed0.npz"
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all" * 100)
    elif damage == "flip":  # one byte inside the image pixels: caught by the CRC-32
        i = len(raw) // 2
        path.write_bytes(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1 :])
    else:
        path.write_bytes(b"")
    again, _ = load_sort_of_clevr(n_train=20, n_test=5, cache_dir=tmp_path)
    assert_same(again, train)
    assert path.read_bytes() == raw  # overwritten with a good file


def test_a_cache_file_with_wrong_contents_is_regenerated(tmp_path):
    train, _ = load_sort_of_clevr(n_train=20, n_test=5, cache_dir=tmp_path)
    path = tmp_path / f"sort_of_clevr_v{soc._CACHE_VERSION}_n20_seed0.npz"
    with np.load(path, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    arrays["centers"] = arrays["centers"].astype(np.float64)  # readable, wrong dtype
    with path.open("wb") as f:
        np.savez(f, **arrays)
    again, _ = load_sort_of_clevr(n_train=20, n_test=5, cache_dir=tmp_path)
    assert_same(again, train)


def test_a_crash_while_writing_leaves_no_cache_file(tmp_path, monkeypatch):
    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(soc.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        load_sort_of_clevr(n_train=20, n_test=5, cache_dir=tmp_path)
    assert os.listdir(tmp_path) == []


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_images": 0, "seed": 0}, "n_images"),
        ({"n_images": 2.0, "seed": 0}, "n_images"),
        ({"n_images": True, "seed": 0}, "n_images"),
        ({"n_images": 2, "seed": -1}, "seed"),
        ({"n_images": 2, "seed": "0"}, "seed"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected an int >= \d+, got"):
        generate(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"n_train": 0}, "n_train"), ({"n_test": -3}, "n_test"), ({"seed": 1.5}, "seed")],
)
def test_load_rejects_bad_arguments(kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=f"^{name}: expected"):
        load_sort_of_clevr(**kwargs, cache_dir=tmp_path)
    assert os.listdir(tmp_path) == []
    with pytest.raises(TypeError, match="cache_dir"):
        load_sort_of_clevr(n_train=2, n_test=2, cache_dir=3)


def test_answer_questions_rejects_mismatched_shapes(data):
    with pytest.raises(ValueError, match="shapes"):
        answer_questions(data.questions, data.shapes[:, :5], data.centers)
    with pytest.raises(ValueError, match="centers"):
        answer_questions(data.questions, data.shapes, data.centers[:5])
    with pytest.raises(ValueError, match="questions"):
        answer_questions(data.questions[..., :10], data.shapes, data.centers)
