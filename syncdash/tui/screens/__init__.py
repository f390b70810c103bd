"""The console's screens: dashboard, run history, run detail, errors, source detail, dry run, help."""
