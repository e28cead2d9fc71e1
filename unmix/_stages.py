"""Named, timed pipeline stages with an optional progress bar (shared by the pipelines)."""

import logging
import time

log = logging.getLogger("unmix")


class Stages:
    """Runs named stages, timing and logging each, with an optional progress bar.

    Use as a context manager so that the bar is closed even if a stage raises;
    ``timings`` maps each stage's name to its seconds.
    """

    def __init__(self, title, total, progress=False):
        self.timings = {}
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=title, unit="stage")

    def run(self, name, function, *args, **kwargs):
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        start = time.perf_counter()
        result = function(*args, **kwargs)
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
