"""What a command shows on the terminal: reelflow's own lines, never a traceback. Prefect's log
of the run (every task's state, every traceback) goes to a file whose path a failure names;
`--debug` shows it on the terminal as well.

A run ends in one of three ways besides success, each with its exit code: the user must fix
something (2: a key, the input, the budget), a provider failed (1), or it was interrupted
(130). Either way the terminal gets one line per failed node, or one line saying what was in
flight when it stopped, then the log's path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tasks import stopping

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class CommandFailed(Exception):
    """What to print, one line each, and the exit code."""

    def __init__(self, lines: list[str], code: int):
        super().__init__("\n".join(lines))
        self.lines = lines
        self.code = code


@contextmanager
def run_log(folder: Path, command: str, *, debug: bool) -> Iterator[Path]:
    """Send the block's log to a new file in `folder` (the terminal's Prefect handler is muted
    unless `debug`); a failure or an interruption becomes CommandFailed naming that file."""
    from prefect.exceptions import CancelledRun
    from prefect.logging.handlers import PrefectConsoleHandler

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{command}.log"
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root, prefect_logger = logging.getLogger(), logging.getLogger("prefect")
    consoles = [] if debug else [handler for handler in root.handlers
                                 if isinstance(handler, PrefectConsoleHandler)]
    levels = [handler.level for handler in consoles]
    saved_level = prefect_logger.level
    root.addHandler(file_handler)
    prefect_logger.setLevel(min(saved_level or logging.INFO, logging.INFO))  # the file gets INFO
    for handler in consoles:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        yield path
    except (KeyboardInterrupt, CancelledRun) as interruption:
        stopping.request(stopping.interruption_reason(interruption))  # unless the flow already did
        raise CommandFailed([stopping.summary(), f"log: {path}"], 130) from None
    except CommandFailed:
        raise
    except Exception as error:
        logging.getLogger("reelflow").exception("the command failed")
        raise CommandFailed([*failure_lines(error), f"log: {path}"], exit_code(error)) from None
    finally:
        for handler, level in zip(consoles, levels):
            handler.setLevel(level)
        prefect_logger.setLevel(saved_level)
        root.removeHandler(file_handler)
        file_handler.close()


def failure_lines(error: Exception) -> list[str]:
    """One line per failed node (RenderFailed), else the error's own line."""
    from flows.video import RenderFailed

    if isinstance(error, RenderFailed):
        return [f"error: {line}" for line in error.failures] + [
            "run the same command again to retry them: everything finished is reused"]
    return [f"error: {error}" if str(error) else f"error: {type(error).__name__}"]


def exit_code(error: Exception) -> int:
    """2 when the user must fix something (a key, the budget), else 1."""
    from config.secrets import MissingSecretError
    from flows.video import RenderFailed
    from tasks.budget import BudgetExceeded

    user_fixes = (MissingSecretError, BudgetExceeded)
    if isinstance(error, RenderFailed):
        return 2 if all(isinstance(cause, user_fixes) for cause in error.causes) else 1
    return 2 if isinstance(error, user_fixes) else 1
