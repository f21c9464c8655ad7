"""The mirror's Python side: smoothing, the frame processor, the frame tap, the app, the notebook."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import ipywidgets
import numpy as np
import pytest

import fercourse as fc
from fercourse.inference import UNSURE_EMOJI, EmotionModel
from fercourse.mirror import (
    FaceTracks,
    FrameProcessor,
    FrameTap,
    Mirror,
    browser_frame,
    moving_frames,
    sample_photo,
    snapshot,
)

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "09_mirror.ipynb"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return sample_photo()


@pytest.fixture(scope="module")
def model() -> EmotionModel:
    return EmotionModel(fc.models.create_model("baseline_cnn"))


@pytest.fixture(scope="module")
def clip(photo) -> list[np.ndarray]:
    return [browser_frame(f, 320) for f in moving_frames(photo, n=24)]


# ------------------------------------------------------------------------------------------------
# Smoothing


def test_tracks_follow_faces_by_iou_and_forget_lost_ones():
    tracks = FaceTracks(0.5, max_missed=2)
    a, b = (10, 10, 50, 50), (200, 10, 50, 50)
    first = tracks.match([a, b])
    assert [t.track_id for t in first] == [1, 2]
    # Moved a little, and listed in the other order: same ids.
    second = tracks.match([(205, 12, 50, 50), (14, 8, 50, 50)])
    assert [t.track_id for t in second] == [2, 1]
    for _ in range(3):
        tracks.match([(14, 8, 50, 50)])
    assert [t.track_id for t in tracks.tracks] == [1]
    assert tracks.match([(400, 300, 40, 40)])[0].track_id == 3


def test_ema_of_probabilities_per_face():
    tracks = FaceTracks(0.6)
    one = tracks.match([(0, 0, 10, 10)])
    p0 = np.eye(7, dtype=np.float32)[[0]]
    p1 = np.eye(7, dtype=np.float32)[[3]]
    assert np.allclose(tracks.update(one, p0), p0)
    smoothed = tracks.update(tracks.match([(0, 0, 10, 10)]), p1)
    assert np.allclose(smoothed, 0.6 * p0 + 0.4 * p1)
    tracks.smoothing = 0.0
    assert np.allclose(tracks.update(tracks.match([(0, 0, 10, 10)]), p0), p0)
    with pytest.raises(ValueError, match="smoothing"):
        tracks.smoothing = 1.0


# ------------------------------------------------------------------------------------------------
# FrameProcessor


def test_every_frame_is_classified_and_tracked(model, clip):
    process = FrameProcessor(model, rescan_every=4)
    scans, ids = [], set()
    for frame in clip:
        result = process(frame)
        assert len(result.faces) == 1, f"frame {len(scans)}: {result.faces}"
        face = result.faces[0]
        assert face.probabilities is not None and face.probabilities.shape == (7,)
        assert face.emoji  # an emoji or the "?" below the threshold
        ids.add(face.track_id)
        scans.append(result.scan)
    assert ids == {1}  # one face, followed across the whole clip
    assert scans[0] == "full" and "track" in scans
    assert result.total_ms >= result.detect_ms > 0
    message = result.to_dict()
    json.dumps(message)  # what the browser gets is plain JSON
    assert message["faces"][0]["id"] == 1 and len(message["faces"][0]["probabilities"]) == 7


def test_threshold_detection_switch_and_no_model(model, clip):
    sure = FrameProcessor(model, threshold=0.0)(clip[0]).faces[0]
    assert sure.emotion in fc.EMOTIONS and sure.emoji == fc.EMOJI[sure.emotion]
    unsure = FrameProcessor(model, threshold=1.0)(clip[0]).faces[0]
    assert unsure.emotion is None and unsure.emoji == UNSURE_EMOJI
    whole = FrameProcessor(model, detect_faces=False)(clip[0])
    assert whole.scan == "off" and whole.faces[0].box == (0, 0, 320, 240)
    blind = FrameProcessor(None)(clip[0])
    assert len(blind.faces) == 1 and blind.faces[0].probabilities is None
    assert blind.faces[0].emoji == "" and blind.model is None
    empty = FrameProcessor(model)(np.full((240, 320, 4), 120, np.uint8))
    assert empty.faces == []


def test_several_faces_are_classified_in_one_batch(photo):
    calls = []

    class Spy(EmotionModel):
        def probabilities(self, faces):
            calls.append(len(faces))
            return super().probabilities(faces)

    face = cv2.resize(photo, (256, 300), interpolation=cv2.INTER_AREA)
    frame = np.full((320, 640, 3), 110, np.uint8)
    frame[10:310, 40:296] = face
    frame[10:310, 360:616] = face[:, ::-1]
    result = FrameProcessor(Spy(fc.models.create_model("baseline_cnn")), smoothing=0.0)(frame)
    assert len(result.faces) == 2 and calls == [2]
    assert {f.track_id for f in result.faces} == {1, 2}


# ------------------------------------------------------------------------------------------------
# FrameTap: the widget's message handler


def test_frame_messages_are_answered_with_faces_and_counters(model, clip):
    tap = FrameTap(FrameProcessor(model))
    sent = []
    tap.send = lambda content, buffers=None: sent.append(content)
    for i, frame in enumerate(clip[:5]):
        h, w = frame.shape[:2]
        content = {"type": "frame", "seq": i, "width": w, "height": h, "format": "rgba"}
        tap._on_frame_message(tap, content, [memoryview(frame.tobytes())])
    assert [m["seq"] for m in sent] == [0, 1, 2, 3, 4]
    last = sent[-1]
    assert last["type"] == "result" and len(last["result"]["faces"]) == 1
    assert last["stats"]["frames_received"] == 5 and last["stats"]["frames_classified"] == 5
    tap.sync_counters()
    assert tap.frames_received == 5 and tap.frames_with_faces == 5 and tap.latency_ms > 0
    # A frame whose size does not match its bytes gets an error answer, not an exception.
    tap._on_frame_message(tap, {"type": "frame", "seq": 9, "width": 7, "height": 7}, [b"xx"])
    assert sent[-1]["seq"] == 9 and "error" in sent[-1]
    tap.reset_counters()
    assert tap.frames_received == 0


def test_jpeg_frames_take_the_same_path(model, clip):
    tap = FrameTap(FrameProcessor(model, smoothing=0.0))
    sent = []
    tap.send = lambda content, buffers=None: sent.append(content)
    rgb = np.ascontiguousarray(clip[0][:, :, :3])
    _, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    h, w = rgb.shape[:2]
    content = {"type": "frame", "seq": 1, "width": w, "height": h, "format": "jpeg"}
    tap._on_frame_message(tap, content, [memoryview(jpg.tobytes())])
    assert sent[-1]["format"] == "jpeg" and len(sent[-1]["result"]["faces"]) == 1
    # After decoding, the picture goes through exactly the processor's usual path.
    decoded = fc.mirror.tap.decode_frame(jpg.tobytes(), w, h, "jpeg")
    expected = FrameProcessor(model, smoothing=0.0)(decoded).faces[0]
    assert sent[-1]["result"]["faces"][0]["box"] == list(expected.box)
    with pytest.raises(ValueError, match="not a 10x10 JPEG"):
        fc.mirror.tap.decode_frame(jpg.tobytes(), 10, 10, "jpeg")
    with pytest.raises(ValueError, match="unknown frame format"):
        fc.mirror.tap.decode_frame(b"", 1, 1, "png")


def test_processor_errors_reach_the_browser_not_the_kernel(clip):
    def broken(frame):
        raise RuntimeError("boom")

    tap = FrameTap(broken)
    reply = tap.handle_frame(clip[0])
    assert reply["error"] == "RuntimeError: boom" and reply["result"]["faces"] == []


def test_tap_keeps_ipywidgets_message_dispatcher():
    # Naming a method `_handle_msg` would silently replace ipywidgets' own comm dispatcher.
    assert FrameTap._handle_msg is ipywidgets.Widget._handle_msg
    esm = str(FrameTap._esm)  # anywidget reads the packaged tap.js
    assert "export default" in esm and "NotAllowedError" in esm


# ------------------------------------------------------------------------------------------------
# The app and the snapshot mode


def test_mirror_without_a_model_says_how_to_train(tmp_path, monkeypatch):
    # Nothing trained and no bundled model (a copy of the package without default_model/).
    monkeypatch.setattr(
        fc.inference.emotion_model, "DEFAULT_MODEL_STEM", tmp_path / "none" / "model"
    )
    mirror = Mirror(running=False)
    assert mirror.model is None and mirror.model_dropdown.disabled
    assert "notebooks/02_baseline.ipynb" in mirror.tap.message
    shot = mirror.snapshot(sample_photo())
    assert len(shot.faces) == 1 and shot.faces[0].probabilities is None
    assert "02_baseline" in mirror.snapshot_view.value


def test_mirror_lists_checkpoints_and_wires_its_controls():
    out = fc.utils.outputs_dir()
    for run, acc in (("a", 0.3), ("b", 0.5)):
        fc.checkpoint.save_checkpoint(
            out / run / "baseline_cnn" / "best",
            fc.models.create_model("baseline_cnn"),
            metrics={"val_acc": acc},
        )
    mirror = fc.mirror.launch(running=False, use_ipywebrtc=False, backend="torch")
    assert mirror.camera is None and mirror.tap.camera is None
    values = [v for _, v in mirror.model_dropdown.options]
    assert values[:2] == [
        str(out / "b" / "baseline_cnn" / "best"),
        str(out / "a" / "baseline_cnn" / "best"),
    ]
    assert values[2:] == (["default"] if fc.inference.default_checkpoint() else [])
    assert mirror.model_dropdown.value == values[0] and mirror.tap.message == ""
    mirror.model_dropdown.value = values[1]
    assert mirror.model.source == values[1]
    mirror.threshold_slider.value = 0.8
    mirror.smoothing_slider.value = 0.2
    mirror.detect_toggle.value = False
    mirror.probability_toggle.value = False
    assert mirror.processor.threshold == 0.8 and mirror.processor.smoothing == 0.2
    assert not mirror.processor.detect_faces and not mirror.tap.show_probabilities
    mirror.start_stop.value = True
    assert mirror.tap.running and mirror.start_stop.description == "Stop"
    mirror.tap.running = False  # e.g. the browser's auto-stop
    assert not mirror.start_stop.value
    stats = mirror.stats()
    assert stats["frames_received"] == 0 and stats["model"] == "baseline_cnn"


def test_mirror_uses_ipywebrtc_camera_and_recorder():
    from ipywebrtc import CameraStream, ImageRecorder

    mirror = Mirror(None, running=False)
    assert isinstance(mirror.camera, CameraStream) and mirror.tap.camera is mirror.camera
    assert mirror.camera.constraints["audio"] is False  # never ask for the microphone
    assert isinstance(mirror.recorder, ImageRecorder)
    # A snapshot arriving from ipywebrtc runs the same pipeline.
    _, png = cv2.imencode(".png", cv2.cvtColor(sample_photo(), cv2.COLOR_RGB2BGR))
    mirror.recorder.image.value = png.tobytes()
    assert "<img" in mirror.snapshot_view.value and "1 face found" in mirror.snapshot_view.value


def test_snapshot_of_the_sample_photo(model, photo):
    shot = snapshot(photo, model, threshold=0.0)
    assert len(shot.faces) == 1 and shot.faces[0].emotion in fc.EMOTIONS
    html = shot._repr_html_()
    assert "data:image/png;base64," in html and shot.faces[0].emoji in html
    assert all(name in html for name in fc.EMOTIONS)  # the bars
    assert "no face" in repr(snapshot(np.zeros((120, 160, 3), np.uint8), model))
    drawn = fc.mirror.annotate(photo, shot.result)
    assert drawn.shape == photo.shape and not np.array_equal(drawn, photo)


def test_upload_decoding(photo):
    _, jpg = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    decoded = fc.mirror.decode_image(memoryview(jpg.tobytes()))
    assert decoded.shape == photo.shape
    with pytest.raises(ValueError, match="could not read"):
        fc.mirror.decode_image(b"not an image")


# ------------------------------------------------------------------------------------------------
# The notebook


def test_notebook_is_clean_and_parameterised():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert "".join(code[0]["source"]).strip() == "import fercourse as fc\n\nfc.setup()"
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    for line in "".join(params[0]["source"]).splitlines():
        name, rest = line.split(":", 1)
        assert name.isidentifier() and "=" in rest and "#" in rest, line


@pytest.mark.slow
def test_notebook_runs_headless(tmp_path):
    """No browser: the mirror never gets frames, the snapshot cell still shows a real result."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = {c["id"]: c.get("outputs", []) for c in nb.cells if c.cell_type == "code"}
    html = [
        o["data"]["text/html"]
        for outs in outputs.values()
        for o in outs
        if "text/html" in o.get("data", {})
    ]
    assert any("data:image/png;base64," in h and "face" in h for h in html)
    assert any(
        "application/vnd.jupyter.widget-view+json" in o.get("data", {})
        for outs in outputs.values()
        for o in outs
    )


def test_bench_mirror_prints_the_table(capsys):
    from fercourse.bench import mirror as bench

    assert bench.main(["--frames", "4", "--models", "baseline_cnn", "--backends", "torch"]) == 0
    out = capsys.readouterr().out
    assert "baseline_cnn" in out and "naive port" in out and "4/4" in out
    assert "random init" in out  # no checkpoint in the test's outputs folder: said so


# ------------------------------------------------------------------------------------------------
# Serving the page (issue #15: `voila notebooks/09_mirror.ipynb` serves a kernel without a token)


def _page(path: Path) -> Path:
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# a served page"]},
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": ["print('ran in the kernel')"],
            },
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def _get(url: str) -> tuple[int, str]:
    """(status, body) of a GET, redirects not followed."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_mirror_serve_starts_voila_on_localhost_with_a_token(tmp_path):
    import os
    import queue
    import signal
    import subprocess
    import sys
    import threading

    settings = tmp_path / "jupyter"
    env = {
        **os.environ,
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_CONFIG_DIR": str(settings / "config"),
        "JUPYTER_RUNTIME_DIR": str(settings / "runtime"),
        "IPYTHONDIR": str(settings / "ipython"),
        "MPLBACKEND": "Agg",
    }
    env.pop("JUPYTER_TOKEN", None)
    page = _page(tmp_path / "page.ipynb")
    cmd = [sys.executable, "-m", "fercourse", "mirror", "serve", str(page)]
    with open(tmp_path / "voila.log", "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        url = ""
        while not url.startswith("http"):
            url = lines.get(timeout=120).strip()  # the printed URL, as a user reads it
        base, _, token = url.partition("/?token=")
        assert base.startswith("http://127.0.0.1:") and len(token) >= 40
        # The token is on no command line (`ps` shows those to every local user).
        cmdlines = [p.read_bytes() for p in Path("/proc").glob("[0-9]*/cmdline") if p.exists()]
        assert not any(token.encode() in c for c in cmdlines if c)
        # Without the token: the page redirects to the login form, the API refuses.
        assert _get(base + "/")[0] in (302, 401, 403)
        assert _get(base + "/api/kernels")[0] in (302, 401, 403)
        assert _get(base + "/?token=" + "x" * len(token))[0] in (302, 401, 403)
        # With it: the page is served and its code ran in a kernel.
        status, body = _get(url)
        assert status == 200 and "a served page" in body and "ran in the kernel" in body
    finally:
        proc.send_signal(signal.SIGTERM)  # stops Voila and its kernel, like Ctrl-C
        code = proc.wait(timeout=60)
    assert code == 0
    with pytest.raises(OSError):
        _get(base + "/")  # nothing listens any more
    log = (tmp_path / "voila.log").read_text()
    assert "?token=..." in log and token not in log  # Voila's own log hides it


def test_voila_server_refuses_a_short_token_and_a_missing_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no_such\.ipynb: no such notebook"):
        fc.mirror.VoilaServer(tmp_path / "no_such.ipynb")
    with pytest.raises(ValueError, match="guessable"):
        fc.mirror.VoilaServer(_page(tmp_path / "p.ipynb"), token="1234")
    server = fc.mirror.VoilaServer(_page(tmp_path / "p.ipynb"))
    assert server.token not in " ".join(server.command())
    assert "--Voila.ip=127.0.0.1" in server.command()
