"""The mirror as a classroom page with Voila, served safely: localhost and a random token.

``voila notebooks/09_mirror.ipynb`` on its own serves the page **without a token** (Voila 0.5's
default, ``Voila.token`` unset): on a shared machine any local user who finds the port can open
it and run code as you through its kernel. ``python -m fercourse mirror serve`` starts the same
page on ``127.0.0.1`` with a random token and prints the one URL that opens it::

    python -m fercourse mirror serve                 # notebooks/09_mirror.ipynb
    python -m fercourse mirror serve --port 8866 path/to/notebook.ipynb

The token travels to Voila in the ``JUPYTER_TOKEN`` environment variable (readable by you and
root only), never on the command line, which every local user can list with ``ps``. Before the
URL is printed, the server is asked for the page without the token: a server that answers is
stopped, not left running. See ``docs/mirror.md`` ("Serving the page").
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from ..utils import PROJECT_ROOT

DEFAULT_NOTEBOOK: Path = PROJECT_ROOT / "notebooks" / "09_mirror.ipynb"
"""The page served by default: the mirror notebook."""

LOCALHOST = "127.0.0.1"


def _free_port(ip: str) -> int:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def _is_loopback(ip: str) -> bool:
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class VoilaServer:
    """Voila serving one notebook on ``ip`` with a token; a context manager.

    Introduced in ``notebooks/09_mirror.ipynb`` (its "classroom page" note).

    Args:
        notebook: the notebook to serve (default :data:`DEFAULT_NOTEBOOK`).
        ip: the address to listen on; ``127.0.0.1`` (default) lets only this machine in. Another
            address makes the page reachable from the network over plain HTTP: anyone who has
            the URL can run code as you.
        port: the port (default: a free one).
        token: the token (default: 32 random bytes, URL-safe).
        log: where Voila's own log goes (default: this process's stderr).
        startup_timeout_s: how long to wait for Voila to answer.

    Example:
        >>> with fc.mirror.VoilaServer() as server:  # doctest: +SKIP
        ...     print(server.url())  # http://127.0.0.1:PORT/?token=...
    """

    def __init__(
        self,
        notebook: str | Path | None = None,
        *,
        ip: str = LOCALHOST,
        port: int | None = None,
        token: str | None = None,
        log: IO[str] | None = None,
        startup_timeout_s: float = 120.0,
    ) -> None:
        self.notebook = Path(notebook).resolve() if notebook is not None else DEFAULT_NOTEBOOK
        if not self.notebook.is_file():
            raise FileNotFoundError(f"{self.notebook}: no such notebook to serve")
        if token is not None and len(token) < 16:
            raise ValueError(f"a token of {len(token)} characters is guessable; use 16 or more")
        self.ip = ip
        self.port = port if port is not None else _free_port(ip)
        self.token = token or secrets.token_urlsafe(32)
        self.log = log
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None

    def url(self, path: str = "") -> str:
        """The URL of ``path`` on the server, with the token (what the browser opens)."""
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        sep = "&" if "?" in path else "?"
        return f"http://{host}:{self.port}/{path.lstrip('/')}{sep}token={self.token}"

    def command(self) -> list[str]:
        """The ``voila`` command line (it holds no token: that goes in the environment)."""
        return [
            sys.executable,
            "-m",
            "voila",
            str(self.notebook),
            "--no-browser",
            f"--port={self.port}",
            "--Voila.port_retries=0",  # the printed URL must be the port it listens on
            f"--Voila.ip={self.ip}",
            # With a token unset, Voila 0.5 turns authentication off; auto_token hands it to
            # jupyter_server's identity provider, which reads JUPYTER_TOKEN.
            "--Voila.auto_token=True",
        ]

    def start(self) -> VoilaServer:
        """Start Voila and wait until it answers, refusing requests without the token.

        Raises:
            RuntimeError: Voila exited, did not answer in time, or served the page without the
                token (it is stopped then).
        """
        env = {**os.environ, "JUPYTER_TOKEN": self.token}
        env.pop("JUPYTER_TOKEN_FILE", None)
        self.proc = subprocess.Popen(
            self.command(),
            env=env,
            stdout=self.log,  # None: Voila logs to this terminal, as `voila` itself would
            stderr=subprocess.STDOUT if self.log is not None else None,
            start_new_session=True,  # its kernels are stopped with it (one process group)
        )
        try:
            status = self._wait_until_up()
        except BaseException:  # also Ctrl-C while waiting: never leave Voila running
            self.stop()
            raise
        if status < 300:
            self.stop()
            raise RuntimeError(
                f"voila served {self.notebook} without a token (HTTP {status}); stopped it"
            )
        return self

    def _wait_until_up(self) -> int:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(
                    f"voila exited with code {code} before serving {self.notebook} "
                    "(its log says why)"
                )
            try:
                return self.status_without_token("/")
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"voila did not answer on {self.ip}:{self.port} within "
                        f"{self.startup_timeout_s:.0f} s"
                    ) from None
                time.sleep(0.2)

    def status_without_token(self, path: str = "/") -> int:
        """The HTTP status of ``path`` requested without the token (redirects not followed)."""
        conn = http.client.HTTPConnection(self.ip, self.port, timeout=10)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop Voila and the kernels it started (its process group)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if not hasattr(os, "killpg"):  # Windows: no process groups; Voila stops its kernels
            self.proc.terminate()
            self.proc.wait(timeout=20)
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass

    def __enter__(self) -> VoilaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    notebook: str | Path | None = None, *, ip: str = LOCALHOST, port: int | None = None
) -> int:
    """Serve ``notebook`` (default: the mirror) with Voila until Ctrl-C; prints the URL.

    Introduced in ``notebooks/09_mirror.ipynb``.

    Returns:
        Voila's exit code (0 after Ctrl-C).
    """
    server = VoilaServer(notebook, ip=ip, port=port)
    if not _is_loopback(ip):
        print(
            f"warning: listening on {ip}: the page is reachable from the network over plain "
            "HTTP; anyone with the URL below can run code as you. Prefer 127.0.0.1 (an SSH "
            "tunnel reaches it from another machine: ssh -L PORT:127.0.0.1:PORT host).",
            file=sys.stderr,
        )
    try:  # `kill PID` stops Voila and its kernels too, like Ctrl-C (main thread only)
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:
        previous = None
    try:
        with server:
            print(f"serving {server.notebook} with Voila; open this URL (its token is the key):")
            print(f"    {server.url()}", flush=True)
            print("Ctrl-C stops it.", flush=True)
            try:
                return int(server.proc.wait()) if server.proc is not None else 1
            except KeyboardInterrupt:
                return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """``python -m fercourse mirror serve [NOTEBOOK] [--port N] [--ip IP]``."""
    parser = argparse.ArgumentParser(
        prog="python -m fercourse mirror",
        description="The mirror as a web page: Voila on localhost with a random token.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("serve", help="serve notebooks/09_mirror.ipynb with Voila, safely")
    cmd.add_argument("notebook", nargs="?", help=f"default: {DEFAULT_NOTEBOOK}")
    cmd.add_argument("--port", type=int, help="default: a free port")
    cmd.add_argument("--ip", default=LOCALHOST, help="default: 127.0.0.1 (this machine only)")
    args = parser.parse_args(argv)
    try:
        return serve(args.notebook, ip=args.ip, port=args.port)
    except (FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
