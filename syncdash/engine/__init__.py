"""The run engine: one run path for every trigger (CLI, console, API, schedule, resume, retry).

Its public face is these names; the modules behind them are the engine's own business:
options (RunOptions, Progress, RunResult), lifecycle (run row, lease, phases, finish), commit (the
one-transaction batch), batch/changes/items/finalize/retry (a pull stream's batches), pull, push and flow
(the executors), readahead (parsing in a child process) and run (Engine, which picks the executor).
"""

from syncdash.engine.options import Progress, RunOptions, RunResult, options_from_queue, queued_options
from syncdash.engine.run import Engine

__all__ = ["Engine", "Progress", "RunOptions", "RunResult", "options_from_queue", "queued_options"]
