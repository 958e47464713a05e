"""Run MediaPipe's own FaceLandmarker over an RGB frame stack; write its landmarks and blendshapes.

Runs inside the isolated venv that holds the mediapipe wheel (it needs numpy < 2), not in streameval's
environment: ``python mediapipe_landmarker_reference.py TASK FRAMES.npy OUT.npz [image|video]``. Image mode
(the default) detects every frame afresh (no tracking state); video mode (frames 1/30 s apart) tracks each face
from its previous landmarks, as MediaPipe does on a video. Landmarks are written in image pixels (MediaPipe's
normalised x, y scaled by the image size, as its blendshape graph does).
"""

import sys

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import FaceLandmarker, FaceLandmarkerOptions, RunningMode


def main(task: str, frames_path: str, out: str, mode: str = "image") -> None:
    frames = np.load(frames_path)
    video = mode == "video"
    options = FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=task),
        running_mode=RunningMode.VIDEO if video else RunningMode.IMAGE,
        num_faces=1,
        output_face_blendshapes=True,
    )
    found, landmarks, scores = [], [], []
    with FaceLandmarker.create_from_options(options) as landmarker:
        for index, frame in enumerate(frames):
            h, w = frame.shape[:2]
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
            result = landmarker.detect_for_video(image, round(index * 1000 / 30)) if video else landmarker.detect(image)
            if not result.face_landmarks:
                found.append(False)
                landmarks.append(np.zeros((478, 3), np.float32))
                scores.append(np.zeros(52, np.float32))
                continue
            found.append(True)
            landmarks.append(np.array([[p.x * w, p.y * h, p.z * w] for p in result.face_landmarks[0]], np.float32))
            scores.append(np.array([c.score for c in result.face_blendshapes[0]], np.float32))
    np.savez(out, found=np.array(found), landmarks=np.stack(landmarks), blendshapes=np.stack(scores))


if __name__ == "__main__":
    main(*sys.argv[1:5])
