"""Long-running services: the daemon (workers, scheduler, maintenance, commands) and notifications."""
