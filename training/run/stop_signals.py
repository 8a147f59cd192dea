"""Ctrl-C (SIGINT) and SIGTERM ask a fit to stop at the next safe point, not at once.

A Python signal handler may run between any two bytecodes, so it only records
the request; the fit acts on it at the end of the epoch, where ``last.ckpt`` is
written (see ``training.run.run_checkpoint``). Lightning's own SIGTERM handler is
replaced while training: it runs a collective inside the handler and ends the
fit mid-epoch with exit code 0.

A Python handler runs in the main thread, and only once that thread is back in
the interpreter: a data-parallel rank blocked in a collective whose peer is
stuck would never run it. ``watch`` therefore also has the C-level handler
write each signal to a pipe that a thread reads: it passes the signal on to
the ranks this process started and, if the process is still running
``grace_seconds`` later, calls ``give_up``.

A launcher that passes a scheduler's signal on to the ranks kills them itself
some time later: torchrun after its ``--shutdown-timeout`` (30 s unless set),
so a rank under torchrun gives up sooner (``default_grace_seconds``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

GRACE_SECONDS = 60.0
# torchrun sends its workers SIGKILL 30 s after it passes a signal on: within that, a
# stopped rank must reach the end of its epoch or give up, write, say so and exit.
TORCHRUN_GRACE_SECONDS = 20.0


def launcher() -> str | None:
    """What started this process, as the environment says: ``torchrun``, ``srun`` or None.

    torchrun sets ``TORCHELASTIC_RUN_ID`` in its workers' environment; srun sets
    ``SLURM_STEP_ID`` in its tasks'. torchrun started by srun counts as torchrun.
    """
    if "TORCHELASTIC_RUN_ID" in os.environ:
        return "torchrun"
    if "SLURM_STEP_ID" in os.environ:
        return "srun"
    return None


def default_grace_seconds() -> float:
    """How long a stopped data-parallel rank may take to reach a safe point, by its launcher."""
    return TORCHRUN_GRACE_SECONDS if launcher() == "torchrun" else GRACE_SECONDS


def exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


class StopSignals:
    """Records the first SIGINT or SIGTERM while installed.

    Args:
        announce: whether this process says on stderr that a stop is under way
            (rank 0 of a data-parallel fit; the others stay quiet).
    """

    def __init__(self, announce: bool = True) -> None:
        self.announce = announce
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._forward: Callable[[int], None] | None = None
        self._give_up: Callable[[int], None] | None = None
        self._grace_seconds = 0.0
        self._pipe: tuple[int, int] | None = None

    @property
    def installed(self) -> bool:
        return bool(self._previous)

    def watch(
        self,
        forward: Callable[[int], None] | None,
        grace_seconds: float,
        give_up: Callable[[int], None],
    ) -> None:
        """Also handle signals in a thread, for a main thread that may be blocked (see above)."""
        self._forward, self._grace_seconds, self._give_up = forward, grace_seconds, give_up

    def install(self) -> None:
        if self.installed:
            return
        self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        if self._give_up is not None:
            read_end, write_end = os.pipe()
            os.set_blocking(write_end, False)
            self._pipe = (read_end, write_end)
            signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
            threading.Thread(target=self._watch, args=(read_end,), daemon=True).start()

    def restore(self) -> None:
        if self._pipe is not None:
            signal.set_wakeup_fd(-1)
            os.close(self._pipe[1])  # the watching thread reads end-of-file and ends
            self._pipe = None
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            if self.announce:
                print(f"{name} again: already stopping at the end of this epoch", file=sys.stderr)
            return
        self.received = signum
        if self.announce:
            print(f"{name} received: stopping at the end of this epoch", file=sys.stderr)

    def _watch(self, read_end: int) -> None:
        deadline: threading.Timer | None = None
        while data := os.read(read_end, 64):
            for signum in data:
                if signum not in STOP_SIGNALS or deadline is not None:
                    continue
                if self._forward is not None:
                    self._forward(signum)
                assert self._give_up is not None
                deadline = threading.Timer(self._grace_seconds, self._give_up, args=(signum,))
                deadline.daemon = True
                deadline.start()
        if deadline is not None:
            deadline.cancel()
        os.close(read_end)
