"""Decode-ahead: photos are read by background threads while the model works on earlier ones.

Any decoding function plugs in (`decode(item) -> result`): convert's network-input decoding,
caption's reduced-size decoding, or a later engine's. Results come back in input order, a bounded
number ahead (memory stays flat on a million photos). Decoders (libjpeg, zlib, numpy) release the
GIL, so threads scale; `workers=0` decodes in the calling thread.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
from typing import Callable, Iterable, Iterator, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def decode_ahead(
    items: Iterable[Item],
    decode: Callable[[Item], Result],
    *,
    workers: int,
    prefetch: int | None = None,
    name: str = "tr2m-decode",
) -> Iterator[tuple[Item, Result | Exception]]:
    """(item, decode(item)) in order; an Exception raised by `decode` is yielded in place of the
    result (one odd file must not end a run). At most `prefetch` items (default 2×workers, at
    least 2) are decoded ahead. Leaving the loop early cancels what has not started."""
    if workers < 1:
        for item in items:
            try:
                yield item, decode(item)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, as from a thread
                yield item, exc
        return
    prefetch = max(prefetch or 2 * workers, 1)
    pool = futures.ThreadPoolExecutor(workers, thread_name_prefix=name)
    pending: collections.deque[tuple[Item, futures.Future]] = collections.deque()
    queue = iter(items)
    try:
        while True:
            while len(pending) < prefetch:
                item = next(queue, _END)
                if item is _END:
                    break
                pending.append((item, pool.submit(decode, item)))
            if not pending:
                return
            item, future = pending.popleft()
            try:
                yield item, future.result()
            except Exception as exc:  # noqa: BLE001
                yield item, exc
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


_END = object()
