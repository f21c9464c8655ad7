"""Helpers for the browser tests: a fake-camera video, a JupyterLab server, headless Chromium.

Everything runs on localhost with Debian's ``chromium`` and ``ffmpeg`` (apt packages ``chromium``,
``ffmpeg``, ``fonts-noto-color-emoji``); Playwright only drives the system browser, it never
downloads one (``playwright install`` is not needed and not used).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np

CHROMIUM = os.environ.get("FERCOURSE_CHROMIUM", "/usr/bin/chromium")
FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"

# Flags measured to work for a headless, root, offline Chromium with a fake camera (FACTS.md).
# Playwright adds --headless and --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def missing_tools() -> list[str]:
    """What the browser tests need and this machine lacks (empty when they can run)."""
    missing = []
    if not Path(CHROMIUM).is_file():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not Path(FFMPEG).is_file():
        missing.append("ffmpeg (apt-get install ffmpeg)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package")
    return missing


def make_y4m(path: Path, frames: Iterator[np.ndarray], *, fps: int = 30, size=(640, 480)) -> Path:
    """Encode RGB frames to a ``.y4m`` file with ffmpeg (what Chromium's fake camera plays)."""
    width, height = size
    cmd = [
        FFMPEG,
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "-",
        "-pix_fmt",
        "yuv420p",
        str(path),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for frame in frames:
        proc.stdin.write(np.ascontiguousarray(frame).tobytes())
    proc.stdin.close()
    if proc.wait(timeout=120) != 0:
        raise RuntimeError(f"ffmpeg failed to write {path}")
    return path


def free_port() -> int:
    """A TCP port that is free on localhost right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServer:
    """``jupyter lab`` on 127.0.0.1 with a token, serving ``root``; a context manager.

    Args:
        root: the folder served (holds the notebooks to open).
        env: extra environment variables for the server and the kernels it starts.
        app: ``"lab"`` or ``"voila"`` (then ``notebook`` is the file voila serves).
    """

    def __init__(
        self,
        root: Path,
        *,
        env: dict[str, str] | None = None,
        app: str = "lab",
        notebook: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.port = free_port()
        self.token = "fercourse-test-" + os.urandom(6).hex()
        self.app = app
        self.notebook = notebook
        self.log_path = self.root.parent / f"{app}-{self.port}.log"
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "") -> str:
        """URL of ``path`` on the server, with the token."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def __enter__(self) -> JupyterServer:
        bindir = Path(sys.executable).parent
        settings = self.root.parent / "jupyter-settings"
        env = {
            **os.environ,
            "JUPYTER_PLATFORM_DIRS": "1",
            "MPLBACKEND": "Agg",
            # Keep the user's lab settings and workspaces out of the test, and theirs from ours.
            "JUPYTERLAB_SETTINGS_DIR": str(settings / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(settings / "workspaces"),
            "JUPYTER_CONFIG_DIR": str(settings / "config"),
            "JUPYTER_RUNTIME_DIR": str(settings / "runtime"),
            "IPYTHONDIR": str(settings / "ipython"),
            **self.extra_env,
        }
        if self.app == "lab":
            cmd = [
                str(bindir / "jupyter"),
                "lab",
                "--no-browser",
                f"--port={self.port}",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
                "--LabApp.expose_app_in_browser=True",  # lets the test run JupyterLab commands
                "--ServerApp.open_browser=False",
            ]
            if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root
                cmd.append("--allow-root")
        else:
            cmd = [
                str(bindir / "voila"),
                str(self.root / (self.notebook or "")),
                "--no-browser",
                f"--port={self.port}",
                "--Voila.ip=127.0.0.1",
                f"--token={self.token}",
            ]
        # No "get notified about Jupyter news?" toast over the screenshot.
        news = settings / "settings" / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True, exist_ok=True)
        (news / "notification.jupyterlab-settings").write_text(
            '{"fetchNews": "false", "checkForUpdates": false}'
        )
        # Render every cell: with the default windowing, cells scrolled out of view are hidden,
        # and the widget cell scrolls away while the cells below it run.
        tracker = settings / "settings" / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
        self._log = open(self.log_path, "wb")  # closed in __exit__
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 90.0) -> None:
        probe = self.url("api/status") if self.app == "lab" else self.url("")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.app} exited early:\n{self.log()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(probe, timeout=5) as resp:
                    if resp.status == 200:
                        return
            time.sleep(0.5)
        raise TimeoutError(f"{self.app} did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        """The server's output so far (for failure messages)."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-6000:]
        return ""

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def launch_chromium(playwright, video: Path, user_data_dir: Path):
    """A headless Chromium whose fake camera plays ``video`` (a .y4m file), in its own profile."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=CHROMIUM,
        headless=True,
        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={video}"],
        viewport={"width": 1280, "height": 1000},
        permissions=["camera"],
    )
