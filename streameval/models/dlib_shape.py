"""dlib's shape predictor (Kazemi & Sullivan's ensemble of regression trees) in numpy, without dlib.

Reads the ``.dat`` files that ``dlib.shape_predictor`` reads (we use ``shape_predictor_5_face_landmarks.dat``)
and predicts the same landmarks for the same image and ``dlib.rectangle``.

The file is dlib's serialisation of ``shape_predictor``: every value in it is one of dlib's variable-length
integers (a control byte whose low nibble counts the little-endian magnitude bytes after it and whose bit 0x80
marks a negative number); a float is two of them, a mantissa and a power-of-two exponent. The layout is

    int version (1); matrix initial_shape (rows, cols, floats); forests: one list per cascade level of
    trees, each tree a list of splits (idx1, idx2, thresh) and a list of leaf matrices; per level the
    anchor landmark index and the offset (x, y) of every feature pixel.

Prediction follows dlib's loop: start from the mean shape in the box's unit square; at each cascade level
place the feature pixels relative to the current shape (similarity transform from the mean shape), read their
grey values (nearest pixel, (R+G+B)/3 truncated, 0 outside the image), walk every tree of the level by the
sign of pixel differences and add the leaf offsets. Landmarks come back on dlib's integer pixel grid.
Arithmetic follows dlib's precisions (float32 shapes, float64 box mapping), so results match dlib exactly
except in (never observed) exact rounding ties.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from streameval.errors import ModelError
from streameval.models.base import Image
from streameval.models.face_detector import check_image

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Box = tuple[float, float, float, float]

_CHUNK = 4096  # bytes per speculative tokeniser lane
_SPECIAL_EXPONENTS = 32000  # float_details: 32000 inf, 32001 -inf, 32002 nan
# low-byte masks by token size (0..15; sizes 0 and above 8 are invalid anyway)
_SIZE_MASKS = np.array([(1 << (8 * k)) - 1 if k <= 8 else 0 for k in range(16)], np.uint64)


class _Corrupt(Exception):
    """Internal: the byte stream is not a valid shape predictor (turned into ModelError with the path)."""


# ---------------------------------------------------------------------------------------------------------
# dlib integer tokens


def token_starts(buf: npt.NDArray[np.uint8]) -> I64:
    """Start offsets of the chain of dlib integer tokens that begins at byte 0.

    A token is a control byte plus ``ctrl & 15`` bytes, so finding token boundaries is a sequential walk;
    3 million tokens take seconds in Python. Instead one walk per 4 KiB chunk runs in lockstep in numpy,
    each from 512 bytes before its chunk. A walk that starts mid-token falls into step with the true chain
    within a few tokens (in dlib's model files: 99.9% within 150 bytes), and from then on is the true chain.
    Chunk by chunk, a walk is in step if it enters its chunk where the previous chunk's walk leaves it;
    chunks whose walk is not are walked again in Python.
    """
    n = len(buf)
    chunks = -(-n // _CHUNK)
    if chunks == 0:
        return np.zeros(0, np.int64)
    lead = _CHUNK // 8
    padded = np.concatenate([buf, np.zeros(_CHUNK + lead + 16, np.uint8)])  # lanes may run past the end
    begins = np.arange(chunks, dtype=np.int64) * _CHUNK
    ends = np.minimum(begins + _CHUNK, n)
    pos = np.maximum(begins - lead, 0)
    # a lane takes at most one step per byte, and up to 15 more before the every-16-steps check stops it
    trail = np.empty((_CHUNK + lead + 16, chunks), np.int64)
    steps = 0
    while True:
        trail[steps] = pos
        steps += 1
        if steps % 16 == 0 and (pos >= ends).all():
            break
        pos += (padded[pos] & 15) + 1
    trail = trail[:steps]
    first = (trail < begins).sum(axis=0)  # step at which each lane enters its chunk
    last = (trail < ends).sum(axis=0)  # ... and leaves it
    lanes = np.arange(chunks)
    enter, leave = trail[first, lanes], trail[last, lanes]
    if (enter[1:] == leave[:-1]).all():
        spans = zip(first.tolist(), last.tolist(), strict=True)
        return np.concatenate([trail[a:b, j] for j, (a, b) in enumerate(spans)])
    return walk_tokens(buf)


def walk_tokens(buf: npt.NDArray[np.uint8]) -> I64:
    """The token chain by a plain Python walk: for short byte strings, and for files the lanes of
    :func:`token_starts` cannot split (seconds for a model file; in practice not dlib shape predictors)."""
    data = buf.tobytes()
    out = []
    p = 0
    while p < len(data):
        out.append(p)
        p += (data[p] & 15) + 1
    return np.asarray(out, np.int64)


def decode_tokens(buf: npt.NDArray[np.uint8], starts: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
    """Signed values of the tokens at ``starts`` and whether each token is well formed (else a value of 0).

    The 0x80 bit is the sign of signed types; unsigned readers check ``value >= 0`` themselves (dlib's
    unsigned reader would see a size above 8 there and fail too).
    """
    n = len(buf)
    padded = np.concatenate([buf, np.zeros(9, np.uint8)])
    ctrl = padded[starts]
    size = ctrl & 15
    ok = ((ctrl & 0x70) == 0) & (size >= 1) & (size <= 8) & (starts + size < n)
    # the 8 bytes after each control byte as one little-endian integer, cut to the token's size
    window = np.lib.stride_tricks.as_strided(padded[1:], shape=(n, 8), strides=(1, 1), writeable=False)
    mag = window[starts].view("<u8").ravel() & _SIZE_MASKS[size]
    ok &= mag < np.uint64(2**63)
    value = mag.astype(np.int64)
    value[~ok] = 0
    np.negative(value, out=value, where=(ctrl & 0x80) != 0)
    return value, ok


class _Tokens:
    """Cursor over the decoded tokens of one file."""

    def __init__(self, values: I64, ok: npt.NDArray[np.bool_]) -> None:
        self.values = values
        self.ok = ok
        self.pos = 0

    def take(self, count: int) -> I64:
        if count < 0 or self.pos + count > len(self.values):
            raise _Corrupt("the file ends early (truncated?)")
        if not self.ok[self.pos : self.pos + count].all():
            raise _Corrupt(f"malformed integer near token {self.pos}")
        out = self.values[self.pos : self.pos + count]
        self.pos += count
        return out

    def uint(self, what: str, limit: int = 2**31) -> int:
        value = int(self.take(1)[0])
        if not 0 <= value <= limit:
            raise _Corrupt(f"{what} = {value} is out of range")
        return value

    def floats(self, count: int) -> F32:
        return to_float32(self.take(2 * count).reshape(-1, 2))

    def matrix_dims(self) -> tuple[int, int]:
        rows, cols = (int(v) for v in self.take(2))
        if rows < 0 or cols < 0:  # dlib writes (-rows, -cols); older files wrote them positive
            rows, cols = -rows, -cols
        if rows < 0 or cols < 0 or rows * cols > 2**24:
            raise _Corrupt(f"bad matrix size {rows}x{cols}")
        return rows, cols


def to_float32(pairs: I64) -> F32:
    """dlib float_details (mantissa, exponent) pairs -> float32, as ``ldexp((float)mantissa, exponent)``."""
    mantissa, exponent = pairs[..., 0], pairs[..., 1]
    special = exponent >= _SPECIAL_EXPONENTS
    with np.errstate(over="ignore"):
        wide = np.ldexp(mantissa.astype(np.float64), np.where(special, 0, exponent).clip(-1100, 1100))
        out: F32 = wide.astype(np.float32)
    if special.any():
        out[exponent == _SPECIAL_EXPONENTS] = np.inf
        out[exponent == _SPECIAL_EXPONENTS + 1] = -np.inf
        out[exponent >= _SPECIAL_EXPONENTS + 2] = np.nan
    return out


# ---------------------------------------------------------------------------------------------------------
# model


@dataclass(frozen=True)
class _Level:
    """One cascade level: its trees (all of one depth), flattened for a numpy walk, and its feature pixels."""

    idx1: I64  # (trees * splits,) feature pixel read by each split node, tree after tree
    idx2: I64
    thresh: npt.NDArray[np.int16]  # go left when pixel idx1 - pixel idx2 > thresh (see ``integer_thresholds``)
    leaves: F32  # (trees * leaves, 2 * parts) shape increment of each leaf
    depth: int
    roots: I64  # (trees,) flat index of each tree's root node
    step: I64  # (trees,) 2 - root: the left child of flat node r + i is 2 (r + i) + step - 1 = r + 2i + 1
    to_leaf: I64  # (trees,) from the flat index of the node a walk ends on to that leaf's row in ``leaves``
    anchor: I64  # (pixels,) landmark each feature pixel hangs on
    deltas: F32  # (2, pixels) x and y offsets from that landmark in mean-shape units

    @property
    def trees(self) -> int:
        return len(self.roots)

    @classmethod
    def build(cls, idx1: I64, idx2: I64, thresh: F32, leaves: F32, anchor: I64, deltas: F32) -> _Level:
        trees, splits = idx1.shape
        roots = np.arange(trees) * splits
        return cls(
            idx1=np.ascontiguousarray(idx1.ravel()),
            idx2=np.ascontiguousarray(idx2.ravel()),
            thresh=integer_thresholds(thresh.ravel()),
            leaves=np.ascontiguousarray(leaves.reshape(-1, leaves.shape[-1])),
            depth=(splits + 1).bit_length() - 1,
            roots=roots,
            step=2 - roots,
            to_leaf=np.arange(trees) - splits,  # node r + splits + k is leaf k: row (splits + 1) t + k
            anchor=np.ascontiguousarray(anchor),
            deltas=np.ascontiguousarray(deltas.T),
        )


def integer_thresholds(thresh: F32) -> npt.NDArray[np.int16]:
    """Split thresholds for integer pixel differences: for an integer d, d > t exactly when d > floor(t).
    Differences of grey values lie in [-255, 255]; NaN never sends a walk left, as in dlib's float compare."""
    t = np.nan_to_num(np.floor(thresh.astype(np.float64)), nan=np.inf)
    return t.clip(-(2**15), 2**15 - 1).astype(np.int16)


def _read_forest(tok: _Tokens, parts: int) -> tuple[I64, I64, F32, F32]:
    """One cascade level's trees, read as a block: dlib's trained models use one tree shape everywhere."""
    trees = tok.uint("trees per level")
    if trees == 0:
        raise _Corrupt("a cascade level without trees")
    head = tok.pos
    splits = tok.uint("splits per tree", 2**20)
    tok.pos = head + 1 + 4 * splits
    leaves = tok.uint("leaves per tree", 2**21)
    rows, cols = tok.matrix_dims()
    tok.pos = head
    if splits == 0 or leaves != splits + 1 or leaves & (leaves - 1) or (rows, cols) != (2 * parts, 1):
        raise _Corrupt(f"unsupported tree: {splits} splits, {leaves} leaves of {rows}x{cols}")
    width = 1 + 4 * splits + 1 + leaves * (2 + 2 * rows)
    block = tok.take(trees * width).reshape(trees, width)
    split_part = block[:, 1 : 1 + 4 * splits].reshape(trees, splits, 4)
    leaf_part = block[:, 2 + 4 * splits :].reshape(trees, leaves, 2 + 2 * rows)
    same = (
        (block[:, 0] == splits).all()
        and (block[:, 1 + 4 * splits] == leaves).all()
        and (np.abs(leaf_part[:, :, :2]) == (rows, cols)).all()
        and (split_part[:, :, :2] >= 0).all()
    )
    if not same:
        raise _Corrupt("trees of different shapes in one level (not a model dlib trained)")
    thresh = to_float32(split_part[:, :, 2:])
    values = to_float32(leaf_part[:, :, 2:].reshape(trees, leaves, rows, 2))
    return split_part[:, :, 0], split_part[:, :, 1], thresh, values


def _read_header(tok: _Tokens) -> int:
    """Version and size of the mean shape (2 x parts rows, 1 column)."""
    version = int(tok.take(1)[0])
    if version != 1:
        raise _Corrupt(f"unknown version {version} (not a dlib shape predictor?)")
    rows, cols = tok.matrix_dims()
    if cols != 1 or rows == 0 or rows % 2:
        raise _Corrupt(f"the mean shape is {rows}x{cols}, not a column of x, y pairs (another kind of dlib file?)")
    return rows


def parse_shape_predictor(data: bytes) -> tuple[F32, list[_Level]]:
    """``(initial_shape (parts, 2), levels)`` from the bytes of a shape predictor file; _Corrupt if invalid."""
    buf = np.frombuffer(data, np.uint8)
    if buf.size == 0:
        raise _Corrupt("the file is empty")
    head = buf[:64]  # reject other files before tokenising all of them
    _read_header(_Tokens(*decode_tokens(head, walk_tokens(head))))
    tok = _Tokens(*decode_tokens(buf, token_starts(buf)))
    rows = _read_header(tok)
    parts = rows // 2
    initial = tok.floats(rows).reshape(parts, 2)
    forests = [_read_forest(tok, parts) for _ in range(tok.uint("cascade levels", 10_000))]
    anchors = []
    for _ in range(tok.uint("anchor lists", 10_000)):
        anchors.append(tok.take(tok.uint("feature pixels")))
    deltas = []
    for _ in range(tok.uint("delta lists", 10_000)):
        deltas.append(tok.floats(2 * tok.uint("feature pixels")).reshape(-1, 2))
    if not len(forests) == len(anchors) == len(deltas):
        raise _Corrupt(f"{len(forests)} levels but {len(anchors)} anchor and {len(deltas)} delta lists")
    if tok.pos != len(tok.values):
        log.debug("%d trailing tokens after the shape predictor ignored", len(tok.values) - tok.pos)
    levels = []
    for (idx1, idx2, thresh, leaves), anchor, delta in zip(forests, anchors, deltas, strict=True):
        if len(anchor) != len(delta) or (anchor < 0).any() or (anchor >= parts).any():
            raise _Corrupt("feature pixels anchored on landmarks that do not exist")
        if max(int(idx1.max()), int(idx2.max())) >= len(anchor):
            raise _Corrupt("a split reads a feature pixel that does not exist")
        levels.append(_Level.build(idx1, idx2, thresh, leaves, anchor, delta))
    if not levels:
        raise _Corrupt("no cascade levels")
    return initial, levels


# ---------------------------------------------------------------------------------------------------------
# prediction


class _Similarity:
    """Least-squares similarity (scale, rotation) from the mean shape onto a shape, as the 2x2 float32 matrix
    dlib uses (its Umeyama SVD fit in float64, in closed form here; the translation is not needed)."""

    def __init__(self, src: F32) -> None:
        s = src.astype(np.float64)
        s -= s.mean(axis=0)
        self.sx, self.sy = s[:, 0].tolist(), s[:, 1].tolist()
        self.norm = float((s * s).sum())

    def __call__(self, dst: F32) -> F32:
        if len(self.sx) == 1 or self.norm == 0.0:
            return np.eye(2, dtype=np.float32)  # dlib: identity for one landmark, scale 1 for coincident ones
        # a handful of points: Python floats beat numpy's per-call overhead
        xs, ys = dst[:, 0].astype(np.float64).tolist(), dst[:, 1].astype(np.float64).tolist()
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        dot = cross = 0.0
        for sx, sy, x, y in zip(self.sx, self.sy, xs, ys, strict=True):
            dot += sx * (x - mx) + sy * (y - my)
            cross += sx * (y - my) - sy * (x - mx)
        a, b = dot / self.norm, cross / self.norm
        return np.array([[a, -b], [b, a]], np.float32)


def box_rectangle(box: Box) -> tuple[int, int, int, int]:
    """The ``dlib.rectangle`` our embedder builds from a detection box (Python's round, as DlibEmbedder)."""
    x0, y0, x1, y1 = box
    return round(x0), round(y0), round(x1), round(y1)


class ShapePredictor:
    """dlib's ``shape_predictor`` for RGB uint8 images, from the same ``.dat`` file, without dlib.

    Nothing changes after loading, so one instance serves several threads.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read shape predictor {self.path}: {exc}") from exc
        try:
            self._initial, self._levels = parse_shape_predictor(data)
        except _Corrupt as exc:
            raise ModelError(f"{self.path} is not a valid dlib shape predictor: {exc}") from exc
        self._similarity = _Similarity(self._initial)
        self._max_trees = max(level.trees for level in self._levels)
        log.debug(
            "shape predictor %s: %d parts, %d levels of %d trees of depth %d",
            self.path,
            self.num_parts,
            len(self._levels),
            self._levels[0].trees,
            self._levels[0].depth,
        )

    @property
    def num_parts(self) -> int:
        return len(self._initial)

    def predict(self, image: Image, box: Box) -> F64:
        """Landmarks (parts, 2) as x, y pixels, equal to ``dlib.shape_predictor(image, rect)`` with ``rect =
        dlib.rectangle(round(x0), round(y0), round(x1), round(y1))``; integer values, like dlib's points."""
        return self.predict_in_rectangle(image, box_rectangle(box))

    def predict_in_rectangle(self, image: Image, rect: tuple[int, int, int, int]) -> F64:
        """As :meth:`predict` for an integer ``dlib.rectangle(left, top, right, bottom)``."""
        check_image(image)
        pixels = np.ascontiguousarray(image).reshape(-1, 3)
        h, w = image.shape[:2]
        left, top, right, bottom = rect
        # dlib maps the unit square onto the rectangle's corner pixels, (0,0) -> (left, top) and (1,1) ->
        # (right, bottom), and rounds to the nearest pixel as floor(v + 0.5); float32 coordinates times these
        # integers are exact in float64, so is the rounding.
        sx, sy = float(right - left), float(bottom - top)
        scale = np.array([[sx], [sy]])
        offset = np.array([[left + 0.5], [top + 0.5]])
        limit = np.array([[w], [h]], np.uintp)
        shape = self._initial.copy()
        rows = np.empty((self._max_trees + 1, shape.size), np.float32)  # the shape, then one leaf per tree
        for level in self._levels:
            t = self._similarity(shape)
            # float32, in dlib's order: tform * delta + anchor landmark, x and y as rows of (2, pixels)
            xy = t[:, :1] * level.deltas[0] + t[:, 1:] * level.deltas[1]
            xy += shape.T.take(level.anchor, axis=1)
            pos = xy * scale  # float64: float32 times these integers is exact
            pos += offset
            pix = np.floor(pos, out=pos).astype(np.intp)
            out = pix.view(np.uintp) >= limit  # negatives wrap to huge
            outside = out[0] | out[1]
            index = pix[1] * w + pix[0]
            index[outside] = 0
            rgb = pixels.take(index, axis=0).astype(np.int16)  # take: several times faster than [index]
            grey = (rgb[:, 0] + rgb[:, 1] + rgb[:, 2]) // 3  # dlib's grey for RGB: (R+G+B)/3, truncated
            grey[outside] = 0
            shape = _add_leaves(level, grey, shape, rows)
        points: F64 = np.floor(shape.astype(np.float64) * (sx, sy) + (left + 0.5, top + 0.5))
        return points


def _add_leaves(level: _Level, grey: npt.NDArray[np.int16], shape: F32, rows: F32) -> F32:
    """Walk all trees of a level at once and add their leaves to the shape (``rows``: scratch space for the
    shape and one leaf per tree).

    dlib adds the leaves one tree after another in float32. numpy's reduction along the first axis of a
    C-ordered array runs row after row too (pairwise summation only applies along the contiguous axis),
    so the sums agree to the last bit; the exact-match test against dlib keeps it honest.
    """
    left = (grey.take(level.idx1) - grey.take(level.idx2)) > level.thresh
    node = level.roots  # flat index of each tree's current node
    for _ in range(level.depth):
        node = 2 * node + level.step - left.take(node)  # child 2i+1 (left) or 2i+2 (right) within the tree
    rows = rows[: level.trees + 1]
    rows[0] = shape.ravel()
    np.take(level.leaves, node + level.to_leaf, axis=0, out=rows[1:])
    total: F32 = np.add.reduce(rows, axis=0)
    return total.reshape(-1, 2)
