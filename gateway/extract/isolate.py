"""Containment: run a parser so that its crash or hang cannot take the caller down.

Why a forked child and not only a timer:

* ``signal.setitimer``/``SIGALRM`` can only interrupt Python bytecode.  Parsers
  spend their worst moments in C (zlib, lxml, regex backtracking, Pillow), where
  a pending signal waits until the C call returns, i.e. possibly never; a
  segfault or an allocation storm in C kills the whole process.
* A child created with ``os.fork`` is killed with ``SIGKILL`` at the deadline
  whatever it is doing, runs under ``RLIMIT_AS`` (memory) and ``RLIMIT_CPU``,
  and a segfault only ends the child.  ``os.fork`` is used directly rather than
  ``multiprocessing`` because it needs no pickling of the target, starts in a
  few milliseconds with the parent's modules already imported (copy-on-write),
  and works when the caller is itself a ``ProcessPoolExecutor`` worker
  (``multiprocessing`` refuses children of daemonic processes).

Forking a process that runs other threads can deadlock the child on a lock one
of them held, so :func:`can_fork` is false there and the caller falls back to
:func:`deadline_alarm`: an in-process ``SIGALRM`` timer (main thread only) on
top of the cooperative deadline checks every handler makes between pages,
rows and members.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import pickle
import resource
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gateway.extract.limits import GlobalLimitExceeded

_KILL_GRACE_S = 2.0  # the child's own timer fires first and returns partial results


@dataclass(frozen=True)
class Outcome:
    """How an isolated call ended: ``value`` when ``error`` is empty."""

    value: Any = None
    error: str = ""  # "" | "timeout" | "<ExceptionName>" | "SIGSEGV" …


def can_fork() -> bool:
    """True where forking is safe: POSIX and no other Python thread in this process."""
    return hasattr(os, "fork") and threading.active_count() == 1


def run_forked(fn: Callable[[], Any], *, timeout_s: float, memory_bytes: int) -> Outcome:
    """Run ``fn()`` in a forked child; its return value must pickle."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which never returns
        os.close(read_fd)
        _child(fn, write_fd, timeout_s, memory_bytes)
    os.close(write_fd)
    payload, timed_out = _read_until(read_fd, time.monotonic() + timeout_s + _KILL_GRACE_S)
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return Outcome(error="timeout")
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        if signum in (signal.SIGXCPU, signal.SIGKILL):
            return Outcome(error="timeout")
        return Outcome(error=signal.Signals(signum).name)
    try:
        kind, value = pickle.loads(payload)
    except Exception:  # an empty or torn payload: the child died before finishing
        return Outcome(error="ChildExited")
    return Outcome(value=value) if kind == "ok" else Outcome(error=str(value))


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return b"", True
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
    finally:
        os.close(fd)


def _child(fn: Callable[[], Any], write_fd: int, timeout_s: float, memory_bytes: int) -> None:
    status = 0
    # The parent reports a crash as parser_error:<signal>; a traceback dump from the child
    # would only interleave with the parent's stderr.
    faulthandler.disable()
    try:
        _limit_resources(timeout_s, memory_bytes)
        try:
            result: tuple[str, Any] = ("ok", fn())
        except BaseException as exc:
            result = ("error", type(exc).__name__)
        payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(payload)
        while view:
            written = os.write(write_fd, view)
            view = view[written:]
    except BaseException:
        status = 1
    finally:
        os._exit(status)  # no atexit handlers, no flushing the parent's buffers twice


def _limit_resources(timeout_s: float, memory_bytes: int) -> None:
    current = _address_space()
    if memory_bytes > 0 and current:
        limit = current + memory_bytes
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + timeout_s) + 2
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _address_space() -> int:
    # The child inherits the parent's address space (models, libraries): the limit is on top of it.
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@contextlib.contextmanager
def deadline_alarm(deadline: float) -> Iterator[None]:
    """Raise ``GlobalLimitExceeded('part_timeout')`` in this thread at ``deadline`` (main thread only).

    Elsewhere it does nothing and the cooperative checks alone bound the time.
    The previous handler and timer are restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise GlobalLimitExceeded("part_timeout")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay:
            signal.setitimer(signal.ITIMER_REAL, old_delay, old_interval)
