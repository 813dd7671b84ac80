"""A background loop shared by the outbox relay, the alert dispatcher and the
periodic tasks: runs a step until stopped, waits (or is woken) when there was
nothing to do, backs off on errors, and on stop drains what is left before it exits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .threads import name_native_thread

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        name: str,
        step: Callable[[], int],
        poll_interval_s: float = 0.5,
        on_error: Callable[[Exception], None] = lambda exc: None,
        on_exit: Callable[[], object] = lambda: None,
        backoff_s: tuple[float, float] = (0.1, 2.0),
        batch_size: int = 1,
    ) -> None:
        self.name = name
        self.step = step  # returns how many items it handled, at most batch_size
        # A step that handled fewer than a batch took all that was ready: the next waits for
        # a wake or the poll, as after an idle one, instead of asking again at once for
        # what is not there (a statement per round: docs/performance.md). The default, 1,
        # waits only after a step that handled nothing.
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.on_error = on_error
        self.on_exit = on_exit
        self.backoff_s = backoff_s  # the wait after a failed step, doubled per failure up to the second
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Work is waiting: run now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        """Finishes what is ready (until a step handles nothing or less than a batch,
        or fails), then stops."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        name_native_thread()
        first, longest = self.backoff_s
        backoff = first
        while True:
            stopping = self._stop.is_set()
            try:
                handled = self.step()
                backoff = first
            except Exception as exc:  # noqa: BLE001 - the step's work stays where it is and is retried
                self.on_error(exc)
                if stopping:
                    break
                self._stop.wait(backoff)
                backoff = min(backoff * 2, longest)
                continue
            if handled < self.batch_size:
                if stopping:
                    break
                self._wake.wait(self.poll_interval_s)
                self._wake.clear()
        self.on_exit()
