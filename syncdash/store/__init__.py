"""The store: the only code that touches `syncdash_*` tables (runs, phases, errors, state, queue, commands,
journal, retention) and the one read model every front end uses."""
