"""Kill and pause points for crash tests: with this folder on PYTHONPATH, Python runs this file at
start-up.

REELFLOW_TEST_KILL_AT="MODULE:FUNCTION:N[:TEXT]" wraps FUNCTION (a dotted path inside MODULE,
e.g. `EspeakSpeech.synthesize`) so that its Nth call (counting only calls whose arguments
mention TEXT) SIGKILLs the whole process group before the call runs: the render dies at an exact
point of its work, chosen by the test, with no timing involved.

REELFLOW_TEST_PAUSE_AT="MODULE:FUNCTION:N:FILE" makes the Nth call of FUNCTION create
FILE.waiting, then wait (up to 10 minutes) until the test creates FILE: the render holds still
at an exact point of its work while the test acts.
"""

import os


def _before_call(spec: str, action) -> None:
    """Run `action()` before the Nth call of MODULE:FUNCTION (see above)."""
    import functools
    import importlib
    import threading

    module_name, path, nth, *text = spec.split(":", 3)
    owner = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)
    lock, calls = threading.Lock(), [0]

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        if not text or text[0] in repr((args, kwargs)):
            with lock:
                calls[0] += 1
                now = calls[0] == int(nth)
            if now:
                action()
        return original(*args, **kwargs)

    setattr(owner, name, wrapped)


def _kill() -> None:
    import signal

    os.killpg(0, signal.SIGKILL)


def _pause(file: str) -> None:
    import time

    open(f"{file}.waiting", "w").close()
    deadline = time.monotonic() + 600
    while not os.path.exists(file) and time.monotonic() < deadline:
        time.sleep(0.05)


if _spec := os.environ.get("REELFLOW_TEST_KILL_AT"):
    _before_call(_spec, _kill)
if _spec := os.environ.get("REELFLOW_TEST_PAUSE_AT"):
    _module, _function, _nth, _file = _spec.split(":", 3)
    _before_call(f"{_module}:{_function}:{_nth}", lambda: _pause(_file))
