"""Named, timed pipeline stages with an optional progress bar (shared by the pipelines)."""

import logging
import time

log = logging.getLogger("unmix")


class Stages:
    """Runs named stages, timing and logging each, with an optional progress bar.

    Use as a context manager so that the bar is closed even if a stage raises;
    ``timings`` maps each stage's name to its seconds. ``synchronize`` is called
    before a stage's clock stops (a GPU backend's, so that a stage's time includes
    the device work it queued and not the next stage's).
    """

    def __init__(self, title, total, progress=False, synchronize=None):
        self.timings = {}
        self.synchronize = synchronize
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=title, unit="stage")

    def run(self, name, function, *args, **kwargs):
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        start = time.perf_counter()
        result = function(*args, **kwargs)
        if self.synchronize is not None:
            self.synchronize()
        self.timings[name] = time.perf_counter() - start
        log.info("%s: %.2f s", name, self.timings[name])
        if self.bar is not None:
            self.bar.update(1)
        return result

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
