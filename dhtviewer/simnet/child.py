"""SimnetChild: a ``dhtviewer simnet`` child process, as the desktop application runs it.

The simulated network is heavy (a million nodes, tens of thousands of datagrams a second at
full load) and must never share the GUI's interpreter: it runs in its own process, started
with the application's own Python, and is ended with the application. The child is told the
parent's pid (``--parent``) and ends itself within a second if that parent goes away, so a
crashed or killed window never leaves a million-node network behind.

``start`` waits (in a worker thread of the caller's loop: the wait is a blocking read of the
child's one JSON line) until the network is ready and returns that line; ``stop`` sends
SIGTERM and waits, then kills. Both are bounded in time.

After the ready line a daemon thread keeps reading the child's stderr (a pipe nobody reads
fills up, and the child would block on its next write: a stalled network): every line goes to
the application's log as a warning, the last ones are kept (``stderr_tail``), and if the child
ends while nobody asked it to, that is logged as an error with its exit status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Sequence
from typing import IO, Any

__all__ = ["SimnetChild", "SimnetChildError"]

log = logging.getLogger(__name__)
STDERR_TAIL = 50
"""Lines of the child's stderr kept for error messages."""

READY_TIMEOUT = 120.0
"""A million nodes build in a few seconds; a loaded machine may take much longer."""


class SimnetChildError(RuntimeError):
    """The child could not start (its stderr's last line says why) or did not get ready."""


class SimnetChild:
    """One simulated network in a child process."""

    def __init__(
        self,
        nodes: int,
        scenarios: Sequence[str] = (),
        profile: str = "realistic",
        seed: int | None = None,
        member_rate: float | None = None,
    ) -> None:
        self.args = ["--nodes", str(nodes), "--profile", profile, "--parent", str(os.getpid())]
        for spec in scenarios:
            self.args += ["--scenario", spec]
        if seed is not None:
            self.args += ["--seed", str(seed)]
        if member_rate is not None:
            self.args += ["--member-rate", str(member_rate)]
        self.nodes = nodes
        self.doc: dict[str, Any] = {}
        self._proc: subprocess.Popen[str] | None = None
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self._stopping = False
        self._reader: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def routers(self) -> list[tuple[str, int]]:
        out = []
        for text in self.doc.get("routers", []):
            host, port = str(text).rsplit(":", 1)
            out.append((host, int(port)))
        return out

    @property
    def control(self) -> str | None:
        value = self.doc.get("control")
        return str(value) if value else None

    # --- blocking API (worker threads, scripts) ---------------------------------------------
    def start_blocking(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        if self._proc is not None:
            raise RuntimeError("already started")
        self._proc = proc = subprocess.Popen(
            [sys.executable, "-m", "dhtviewer", "simnet", *self.args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None and proc.stderr is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                line = proc.stdout.readline()
                if line:
                    break
            if proc.poll() is not None:
                break
        if not line:
            err = ""
            if proc.poll() is not None:
                lines = proc.stderr.read().strip().splitlines()
                err = lines[-1] if lines else f"exit status {proc.returncode}"
            self.stop_blocking()
            raise SimnetChildError(err or f"the simulated network was not ready in {timeout:g} s")
        try:
            self.doc = json.loads(line)
        except ValueError:
            self.stop_blocking()
            raise SimnetChildError(f"unexpected output: {line[:200]!r}") from None
        self._stopping = False
        self._reader = threading.Thread(target=self._read_stderr, args=(proc, proc.stderr),
                                        name="simnet-stderr", daemon=True)
        self._reader.start()
        return self.doc

    def _read_stderr(self, proc: subprocess.Popen[str], stream: IO[str]) -> None:
        """Drain the child's stderr into the log until it closes (the child ended)."""
        try:
            for line in stream:
                text = line.rstrip()
                if text:
                    self.stderr_tail.append(text)
                    log.warning("simulated Mainline: %s", text)
        except (OSError, ValueError):
            return  # closed by stop_blocking
        try:
            status = proc.wait(5)
        except subprocess.TimeoutExpired:
            return
        if not self._stopping:
            last = self.stderr_tail[-1] if self.stderr_tail else "no message"
            log.error("the simulated Mainline ended unexpectedly (exit status %s): %s",
                      status, last)

    def stop_blocking(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self._stopping = True
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.join(2.0)  # it ends at the pipe's end of file, now that the child is gone
        for stream in (proc.stdout, proc.stderr):
            if stream is not None and (reader is None or not reader.is_alive()):
                stream.close()

    def get(self, path: str, timeout: float = 5.0) -> Any:
        """A control API resource (blocking)."""
        if self.control is None:
            raise SimnetChildError("not started")
        with urllib.request.urlopen(f"http://{self.control}{path}", timeout=timeout) as r:
            return json.load(r)

    # --- asyncio API (the application's loop) ---------------------------------------------
    async def start(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, self.start_blocking,
                                                                 timeout)

    async def stop(self, timeout: float = 10.0) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop_blocking, timeout)

    async def fetch(self, path: str, timeout: float = 5.0) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self.get, path, timeout)
