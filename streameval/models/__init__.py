"""Model backends: face detection, landmarks, identity embedding, AU estimation, video features."""
