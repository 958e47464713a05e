"""Geometric expression features of a pose-normalised face mesh (pure numpy).

Every feature is measured on a mesh already aligned to the canonical frame (``geometry.align``): y up,
z towards the viewer, unit = inter-ocular distance (IOD). Vertical positions are taken relative to the *eye
line* (mean height of the four eye corners), which expression hardly moves, so a feature changes only when the
part it describes moves. Bilateral features average the subject's right and left sides.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

# (right side, left side) MediaPipe indices of each facial part.
EYE_CORNERS = (33, 133, 263, 362)
BROW_INNER = ((107, 66, 55, 65), (336, 296, 285, 295))
BROW_OUTER = ((70, 63, 46, 53), (300, 293, 276, 283))
LID_UPPER = ((159, 158, 160), (386, 385, 387))
LID_LOWER = ((145, 144, 153), (374, 380, 373))
CHEEK = ((50, 101, 118, 117), (280, 330, 347, 346))
NOSE_WING = ((129, 64, 98, 48), (358, 294, 327, 278))
UPPER_LIP_OUTER = (0, 37, 267)
LIP_CORNER = (61, 291)
INNER_UPPER = (13, 82, 312)
INNER_LOWER = (14, 87, 317)
LOWER_LIP_OUTER = 17
CHIN = 152

FEATURE_NAMES: tuple[str, ...] = (
    "brow_inner",  # inner brow height above the eye line
    "brow_outer",  # outer brow height above the eye line
    "brow_gap",  # horizontal distance between the inner brow heads
    "lid_upper",  # upper eyelid height above the eye line
    "lid_lower",  # lower eyelid height (negative: below the eye line)
    "eye_open",  # eye aperture: upper minus lower lid
    "cheek",  # cheek height
    "nose_wing",  # nose-wing (alar) height
    "upper_lip",  # outer upper-lip height
    "corner_lift",  # lip-corner height above the mouth's centre line
    "mouth_width",  # lip-corner to lip-corner distance
    "corner_depth",  # lip-corner depth relative to the lip centres (negative: pulled back)
    "lip_gap",  # inner-lip gap (lips parted)
    "lip_thickness",  # upper + lower red-lip height
    "jaw_drop",  # chin depth below the eye line
    "chin_lip",  # distance from lower-lip edge to the chin tip
)
N_FEATURES = len(FEATURE_NAMES)


def _side_mean(pts: F64, pair: tuple[tuple[int, ...], tuple[int, ...]], axis: int) -> float:
    return float(0.5 * (pts[list(pair[0]), axis].mean() + pts[list(pair[1]), axis].mean()))


def mesh_features(aligned: F64) -> F64:
    """The ``FEATURE_NAMES`` values (IOD units) of one aligned mesh (468, 3)."""
    y = 1
    eye_line = float(aligned[list(EYE_CORNERS), y].mean())
    lid_upper = _side_mean(aligned, LID_UPPER, y) - eye_line
    lid_lower = _side_mean(aligned, LID_LOWER, y) - eye_line
    inner_upper = aligned[list(INNER_UPPER)]
    inner_lower = aligned[list(INNER_LOWER)]
    mouth_mid = 0.5 * float(inner_upper[0, y] + inner_lower[0, y])
    corners = aligned[list(LIP_CORNER)]
    lip_centres_z = 0.5 * float(aligned[UPPER_LIP_OUTER[0], 2] + aligned[LOWER_LIP_OUTER, 2])
    thickness = float(aligned[UPPER_LIP_OUTER[0], y] - aligned[INNER_UPPER[0], y]) + float(
        aligned[INNER_LOWER[0], y] - aligned[LOWER_LIP_OUTER, y]
    )
    inner_gap = np.linalg.norm(inner_upper - inner_lower, axis=1).mean()
    brow_gap = 0.5 * (
        np.linalg.norm(aligned[BROW_INNER[0][0]] - aligned[BROW_INNER[1][0]])
        + np.linalg.norm(aligned[BROW_INNER[0][2]] - aligned[BROW_INNER[1][2]])
    )
    return np.array(
        [
            _side_mean(aligned, BROW_INNER, y) - eye_line,
            _side_mean(aligned, BROW_OUTER, y) - eye_line,
            float(brow_gap),
            lid_upper,
            lid_lower,
            lid_upper - lid_lower,
            _side_mean(aligned, CHEEK, y) - eye_line,
            _side_mean(aligned, NOSE_WING, y) - eye_line,
            float(aligned[list(UPPER_LIP_OUTER), y].mean()) - eye_line,
            float(corners[:, y].mean()) - mouth_mid,
            float(np.linalg.norm(corners[0] - corners[1])),
            float(corners[:, 2].mean()) - lip_centres_z,
            float(inner_gap),
            thickness,
            eye_line - float(aligned[CHIN, y]),
            float(np.linalg.norm(aligned[LOWER_LIP_OUTER] - aligned[CHIN])),
        ],
        dtype=np.float64,
    )
