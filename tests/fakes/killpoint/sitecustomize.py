"""Kill points for crash tests: with this folder on PYTHONPATH, Python runs this file at start-up.

REELFLOW_TEST_KILL_AT="MODULE:FUNCTION:N[:TEXT]" wraps FUNCTION (a dotted path inside MODULE,
e.g. `EspeakSpeech.synthesize`) so that its Nth call (counting only calls whose arguments
mention TEXT) SIGKILLs the whole process group before the call runs: the render dies at an exact
point of its work, chosen by the test, with no timing involved.
"""

import os

_spec = os.environ.get("REELFLOW_TEST_KILL_AT")
if _spec:
    import functools
    import importlib
    import signal
    import threading

    def _install(spec: str) -> None:
        module_name, path, nth, *text = spec.split(":", 3)
        owner = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = getattr(owner, name)
        lock, calls = threading.Lock(), [0]

        @functools.wraps(original)
        def killing(*args, **kwargs):
            if not text or text[0] in repr((args, kwargs)):
                with lock:
                    calls[0] += 1
                    if calls[0] == int(nth):
                        os.killpg(0, signal.SIGKILL)
            return original(*args, **kwargs)

        setattr(owner, name, killing)

    _install(_spec)
