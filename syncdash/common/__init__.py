"""Pure helpers every layer may use: clocks and timestamps, field conversion, schedules, database URLs and
dialects, HTTP resilience. Nothing here imports anything of syncdash above `syncdash.errors`."""
