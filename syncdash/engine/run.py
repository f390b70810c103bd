"""The one run path: every trigger (CLI, schedule, console key, retry, resume) ends up in Engine.run.

Per batch, in one transaction: the target rows, their hashes, the item errors, the change log, the
run's counts and its checkpoint. A crash therefore loses nothing committed and a resume repeats
nothing: the checkpoint and the rows it describes can never disagree.

Engine.run builds a RunLifecycle (run row, lease, phases, finish) and hands it to the executor the
source's kind declares (Capabilities.execution): pull, push or flow.
"""

from __future__ import annotations

from syncdash.config.kinds import adapter_for
from syncdash.config.models import Config, SourceConfig
from syncdash.engine.lifecycle import Executor, RunLifecycle
from syncdash.engine.options import RunOptions, RunResult
from syncdash.engine.pull import PullExecutor
from syncdash.errors import UsageError
from syncdash.kinds.contract import Source
from syncdash.store.db import Store


class Engine:
    """Runs configured sources, pushes and flows: `Engine(store, config).run(name, options) -> RunResult`."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config

    def source_config(self, name: str) -> SourceConfig:
        src = self.config.source(name)
        if src is None:
            known = ", ".join(s.name for s in self.config.source_list) or "none"
            raise UsageError(f"unknown source {name!r}; sources in {self.config.file}: {known}")
        return src

    def run(self, name: str, options: RunOptions | None = None) -> RunResult:
        options = options or RunOptions()
        cfg = self.source_config(name)
        adapter: Source = adapter_for(cfg.kind)(cfg)
        try:
            life = RunLifecycle(self.store, self.config, cfg, options)
            return life.execute(self._executor(life, adapter))
        finally:
            adapter.close()

    def _executor(self, life: RunLifecycle, adapter: Source) -> Executor:
        """Pulls, pushes and flows share the run's life (lease, phases, checkpoints, errors, resume, finish)."""
        execution = adapter.capabilities.execution
        # push and flow executors are imported when used: they bring the HTTP client and the push and flow
        # config models, which a CSV load (the hot path) does not need to import
        if execution == "push":
            from syncdash.engine.push import PushExecutor

            return PushExecutor(life, adapter)
        if execution == "flow":
            from syncdash.engine.flow import FlowExecutor

            return FlowExecutor(life, adapter, run_step=self.run)
        return PullExecutor(life, adapter)
