"""The run engine: one run path for every trigger (CLI, console, API, schedule, resume, retry).

Its public face is these names; the modules behind them are the engine's own business.
"""

from syncdash.engine.run import Engine, Progress, RunOptions, RunResult, options_from_queue, queued_options

__all__ = ["Engine", "Progress", "RunOptions", "RunResult", "options_from_queue", "queued_options"]
