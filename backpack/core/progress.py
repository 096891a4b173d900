"""Progress bars for long calls into the core.

The core runs with the GIL released and bumps an atomic counter; this module
runs the call on a worker thread and draws a tqdm bar from the main thread.
Ctrl-C cancels the core computation cleanly instead of leaving it running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm

from backpack.core import _core


def run_with_progress(work: Callable[[Any], Any], *, description: str, show: bool, unit: str = "it") -> Any:
    """Call ``work(progress)`` and return its result, with a bar when ``show``."""
    progress = _core.Progress()
    if not show:
        return work(progress)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = work(progress)
        except BaseException as exc:  # handed back to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, name="backpack-core", daemon=True)
    thread.start()
    with tqdm(desc=description, unit=unit, total=None, leave=False, dynamic_ncols=True) as bar:
        try:
            while thread.is_alive():
                thread.join(0.1)
                if progress.total and bar.total != progress.total:
                    bar.total = progress.total
                bar.n = progress.done
                bar.refresh()
        except KeyboardInterrupt:
            progress.cancel()
            thread.join()
            raise
    if "error" in result:
        raise result["error"]
    return result["value"]
