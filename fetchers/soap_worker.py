"""Microsoft's SOAP SDK in a worker process, so its CPU does not hold the refresh's GIL.

The SDK (bingads on suds) is pure Python: importing it and parsing its WSDLs is about 1.5 s of CPU
at a refresh's start, and every SOAP call 4-7 ms of marshalling and parsing. Run in threads of the
refresh's own process, all of it competes with the event loop for the GIL, and every other
platform's paced requests wake late while it runs (bench/RESULTS.md, issue 19's fourth pass).

``RemotePool`` has ``SessionPool.call``'s signature and runs the call in a child process
(``python -m fetchers.soap_worker``) that holds the SDK sessions. Requests and answers cross the
child's stdin/stdout as length-prefixed pickles:

- parent -> child: ``("init", credentials, base_url, size)`` once, then ``("call", id, method,
  token, account_id, args)``. Credentials and tokens travel through the pipe, never its
  command line.
- child -> parent: ``("wire", id)`` when the call's envelope is about to be sent (the SDK's
  ``sending`` hook, as in-process); then ``("ok", id, result)`` with the SDK's answer as plain
  values (``types.SimpleNamespace`` for its objects), ``("verdict", id, Verdict)`` for an error the
  SDK raised (sorted by ``soap_verdict`` where the exception is), or ``("fetcherror", id, kind,
  message)``. The worker reads its credentials from the pipe only, and logs nothing (its stderr
  goes nowhere).

The child builds its SDK sessions as soon as it has its init (``SessionPool.prebuild``), and
``RemotePool.start`` starts it before the first call (``MicrosoftFetcher.warm_up``): the SDK's
import and WSDL parses, about a second, then overlap the refresh's start.

A child that dies fails its calls as a retryable connection error, and the next call starts a new
one. The parent's ``soap_verdict`` reads a ``RemoteVerdict`` as the verdict it carries.
"""

from __future__ import annotations

import atexit
import contextvars
import itertools
import pickle
import struct
import subprocess
import sys
import threading
import types
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, BinaryIO

_HEADER = struct.Struct("!I")
ROOT = Path(__file__).resolve().parents[1]


def _send(stream: BinaryIO, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _recv(stream: BinaryIO) -> tuple:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class RemoteVerdict(Exception):
    """An SDK error sorted in the worker: ``soap_verdict`` returns its verdict as it is."""

    def __init__(self, verdict: Any):
        super().__init__(verdict.message)
        self.verdict = verdict


class WorkerGone(ConnectionError):
    """The worker process ended before it answered (retried as a connection failure)."""


class RemotePool:
    """``SessionPool.call`` run by a worker process holding ``size`` SDK sessions."""

    def __init__(self, credentials: dict, base_url: str, size: int, timeout: float):
        self._init = ("init", dict(credentials), base_url, size)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._proc: subprocess.Popen | None = None
        self._pending: dict[int, tuple[Future, Any, subprocess.Popen]] = {}  # by call id

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fetchers.soap_worker"],  # -m puts its cwd, the project, on sys.path
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # its errors come back as verdicts; nothing of it is logged
            cwd=ROOT,
        )
        _send(proc.stdin, self._init)
        threading.Thread(target=self._read, args=(proc,), name="adspend-soap-reader", daemon=True).start()
        atexit.register(_stop, proc)
        return proc

    def start(self) -> None:
        """Start the worker now if none is running (it builds its sessions as it starts), so the
        first call does not wait for the SDK's import and WSDL parses."""
        with self._lock:
            self._running()

    def _running(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        return self._proc

    def call(self, method: str, token: str, account_id: str, on_wire: Any, *args: Any) -> Any:
        """Blocking, like ``SessionPool.call``; ``on_wire`` runs in this call's context."""
        context = contextvars.copy_context()  # the attempt's budget slot (``wire_marker``)
        future: Future = Future()
        with self._lock:
            proc = self._running()
            call_id = next(self._ids)
            self._pending[call_id] = (future, lambda: context.run(on_wire), proc)
            try:
                _send(proc.stdin, ("call", call_id, method, token, account_id, args))
            except (BrokenPipeError, OSError):
                self._pending.pop(call_id, None)
                raise WorkerGone("the Microsoft SDK worker process is gone") from None
        try:
            return future.result(self._timeout)
        except FutureTimeout:
            self._pending.pop(call_id, None)
            raise TimeoutError(f"no answer from the Microsoft SDK worker within {self._timeout:.0f} s") from None

    def _read(self, proc: subprocess.Popen) -> None:
        from .base import FetchError

        while True:
            try:
                message = _recv(proc.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            kind, call_id = message[0], message[1]
            entry = self._pending.get(call_id)
            if entry is None:
                continue
            future, on_wire, _ = entry
            if kind == "wire":
                on_wire()
                continue
            self._pending.pop(call_id, None)
            if kind == "ok":
                future.set_result(message[2])
            elif kind == "verdict":
                future.set_exception(RemoteVerdict(message[2]))
            else:  # "fetcherror"
                future.set_exception(FetchError(message[2], message[3]))
        with self._lock:  # its calls still waiting fail (a newer worker's calls are not its)
            for cid in [cid for cid, entry in self._pending.items() if entry[2] is proc]:
                future = self._pending.pop(cid)[0]
                if not future.done():
                    future.set_exception(WorkerGone("the Microsoft SDK worker process ended"))
            if self._proc is proc:
                self._proc = None

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.stdin.close()
            proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()


def plain(value: Any) -> Any:
    """An SDK answer as picklable plain values: its objects as ``SimpleNamespace`` (attribute
    access, as the parsers read them), lists as lists, text as ``str``."""
    from suds.sudsobject import Object

    if isinstance(value, Object):
        return types.SimpleNamespace(**{k: plain(v) for k, v in value})
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def main() -> None:
    """The worker: read the init, then calls; answer each from a thread of the session pool."""
    from concurrent.futures import ThreadPoolExecutor

    from .base import FetchError
    from .microsoft import SessionPool, soap_verdict

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    _, credentials, base_url, size = _recv(stdin)
    pool = SessionPool(credentials, base_url, size)
    threading.Thread(target=pool.prebuild, name="adspend-soap-prebuild", daemon=True).start()
    out_lock = threading.Lock()

    def answer(message: tuple) -> None:
        with out_lock:
            _send(stdout, message)

    def run(call_id: int, method: str, token: str, account_id: str, args: tuple) -> None:
        try:
            result = pool.call(method, token, account_id, lambda: answer(("wire", call_id)), *args)
            answer(("ok", call_id, plain(result)))
        except FetchError as exc:
            answer(("fetcherror", call_id, exc.kind.value, exc.message))
        except Exception as exc:  # noqa: BLE001 - every SDK error is sorted, as in-process
            answer(("verdict", call_id, soap_verdict(exc)))

    with ThreadPoolExecutor(max_workers=size, thread_name_prefix="adspend-soap") as executor:
        while True:
            try:
                message = _recv(stdin)
            except EOFError:
                break
            executor.submit(run, *message[1:])


if __name__ == "__main__":
    main()
