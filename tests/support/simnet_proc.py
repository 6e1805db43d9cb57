"""A ``dhtviewer simnet`` child process for tests and benchmarks: started, read (its JSON line
and control API), and always ended. Every wait is bounded. Its stderr is drained by a thread
after the ready line (a full pipe would stall the child) and kept in ``stderr_lines``."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import Any


class SimnetProcess:
    """``with SimnetProcess(["--nodes", "20000", "--profile", "friendly"]) as sn: ...``

    ``sn.doc``: the JSON line; ``sn.routers``: bootstrap addresses as (host, port);
    ``sn.get("/stats")``: a control API resource (JSON; raises for an HTTP error)."""

    def __init__(self, args: list[str], ready_timeout: float = 120.0) -> None:
        self.args = args
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.doc: dict[str, Any] = {}
        self.stderr_lines: list[str] = []
        self._reader: threading.Thread | None = None

    def __enter__(self) -> SimnetProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dhtviewer", "simnet", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            self.doc = json.loads(self._line())
        except BaseException:
            self.close()
            raise
        self._reader = threading.Thread(target=self._drain, args=(self.proc.stderr,),
                                        daemon=True)
        self._reader.start()
        return self

    def _drain(self, stream: Any) -> None:
        try:
            for line in stream:
                self.stderr_lines.append(line.rstrip())
        except (OSError, ValueError):
            pass

    def _line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line:
                    return line
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"simnet exited with {self.proc.returncode}: {err.strip()}")
        raise TimeoutError(f"simnet not ready within {self.ready_timeout:g} s")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit status."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None and (self._reader is None or not self._reader.is_alive()):
                stream.close()
        return proc.returncode

    @property
    def routers(self) -> list[tuple[str, int]]:
        out = []
        for text in self.doc["routers"]:
            host, port = text.rsplit(":", 1)
            out.append((host, int(port)))
        return out

    def get(self, path: str, timeout: float = 10.0) -> Any:
        with urllib.request.urlopen(f"http://{self.doc['control']}{path}", timeout=timeout) as r:
            return json.load(r)

    def get_status(self, path: str, timeout: float = 10.0) -> tuple[int, Any]:
        try:
            return 200, self.get(path, timeout)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)
