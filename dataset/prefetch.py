"""Prepare the next batches in a background thread while the current one trains.

Augmenting and normalising a vision-pretraining batch (rotation, crop, noise on 32 scans) takes
about as long as the tiny tower's step on 2 cores. PIL and NumPy release the GIL for that work, so
one thread ahead of the training loop overlaps the two. The batches and every random draw are the
same as when made in the loop: the iterator runs unchanged, only in another thread, and the loop
takes its items in order.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate over `items`, computed up to `depth` ahead in a daemon thread.

    An exception raised while making an item is raised here, at that item. Leaving the loop early
    (break, an exception in its body) stops the thread after the item it is making.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                ready.put((item, None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            ready.put((_DONE, err))
            return
        ready.put((_DONE, None))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, err = ready.get()
            if err is not None:
                raise err
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
