"""`syncdash` command line. Exit codes: 0 succeeded, 3 partial, 1 failed, 2 usage/config, 4 already
running, 130 cancelled."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from syncdash import __version__
from syncdash.cli.process import (
    EXIT_CANCELLED,
    EXIT_OK,
    EXIT_USAGE,
    LATE_START,
    ONE_SHOT,
    leave,
    startup_begins,
    startup_done,
)
from syncdash.errors import ConfigError, ConfigErrors, SyncdashError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 too; keep its wording, our prefix
        import re

        bad = re.match(r"argument COMMAND: invalid choice: '(.*?)' \(choose from (.*)\)$", message)
        if bad:  # a mistyped command: name the closest one instead of listing them all
            from syncdash.common.suggest import did_you_mean

            choices = re.findall(r"'([^']*)'", bad.group(2))
            message = f"unknown command {bad.group(1)!r}{did_you_mean(bad.group(1), choices)} " \
                      f"(commands: {', '.join(choices)})"
        self.print_usage(sys.stderr)
        sys.stderr.write(f"syncdash: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser(plugins: bool = False) -> argparse.ArgumentParser:
    p = _Parser(prog="syncdash", description="Keep SQL tables in sync with CSV files, APIs and web pages.")
    p.add_argument("--version", action="version", version=f"syncdash {__version__}")
    config_help = "config file (default: $SYNCDASH_CONFIG, ./syncdash.yaml, user config dir)"
    p.add_argument("-c", "--config", help=config_help)
    # `syncdash run x --config f` works too: SUPPRESS keeps a subcommand from resetting a global --config
    common = _Parser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("init", help="write a starter config (and sample data)")
    s.add_argument("path", nargs="?", default="syncdash.yaml")
    s.add_argument("--force", action="store_true", help="overwrite an existing file")

    sub.add_parser("validate", parents=[common], help="check the config and print what would run")
    sub.add_parser("schema", help="print the config's JSON Schema")

    s = sub.add_parser("check", parents=[common],
                       help="open each source (first page, file header, target database); exit 1 if one fails")
    s.add_argument("names", nargs="*", metavar="NAME")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("run", parents=[common], help="sync sources now")
    s.add_argument("names", nargs="*", metavar="NAME")
    s.add_argument("--all", action="store_true", help="every source in the config")
    s.add_argument("--full", action="store_true", help="full sync: ignore checkpoints, apply deletes")
    s.add_argument("--dry-run", action="store_true", help="run everything, write nothing to the target tables")
    s.add_argument("--limit-pages", type=int, metavar="N",
                   help="REST: stop each stream after N pages (with --dry-run: a quick preview)")
    s.add_argument("--backfill-from", metavar="VALUE",
                   help="incremental: replay from this cursor value (e.g. a date) instead of the stored one")
    s.add_argument("--queue", action="store_true", help="only queue the run(s) for a daemon; print their ids")
    s.add_argument("--json", action="store_true", help="print the results as JSON")

    s = sub.add_parser("status", parents=[common], help="per source: last run, status, age")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("runs", parents=[common], help="run history, newest first")
    s.add_argument("--source")
    s.add_argument("--status")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("show", parents=[common], help="one run: phases, counts, errors, what changed")
    s.add_argument("run", type=int)
    s.add_argument("--json", action="store_true")
    s.add_argument("--changes", type=int, default=20, help="changes to list per kind (default 20)")

    s = sub.add_parser("errors", parents=[common], help="unresolved item errors")
    s.add_argument("run", type=int, nargs="?")
    s.add_argument("--source")
    s.add_argument("--all", action="store_true", help="include resolved errors")
    s.add_argument("--limit", type=int, default=100)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("retry", parents=[common], help="re-process a run's failed items, resolving those that now load")
    s.add_argument("run", type=int)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("export", parents=[common], help="write a target table as CSV or JSON lines")
    s.add_argument("table")
    s.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    s.add_argument("-o", "--output", help="file to write (default: stdout)")
    s.add_argument("--include-deleted", action="store_true", help="also rows soft-deleted by full syncs")

    s = sub.add_parser("daemon", parents=[common], help="run the scheduler and workers until stopped")
    s.add_argument("--workers", type=int, help="runs executed at once (default: daemon.workers, 1)")
    s.add_argument("--once", action="store_true", help="run what is due and queued, then exit (cron, timers)")
    s.add_argument("--log-format", choices=("json", "text"), default="json", help="log lines (default json)")
    s.add_argument("--http", metavar="HOST:PORT",
                   help="serve the HTTP API here (beats daemon.http.listen; without a daemon.http block the token "
                        "is $SYNCDASH_API_TOKEN)")

    for name, what in (("pause", "stop a source's schedule from firing"), ("resume", "let it fire again")):
        s = sub.add_parser(name, parents=[common], help=what)
        s.add_argument("name")

    s = sub.add_parser("schedule", parents=[common], help="change a source's schedule at run time")
    s.add_argument("name")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--every", metavar="INTERVAL", help="e.g. 6h, 30m, 1d")
    g.add_argument("--cron", metavar="EXPR", help='5-field cron, e.g. "0 3 * * *"')
    g.add_argument("--reset", action="store_true", help="back to the config's schedule")
    s.add_argument("--timezone", help="IANA time zone for --cron/--every")

    s = sub.add_parser("state", parents=[common], help="a source's stored cursor, checkpoint and breakers")
    s.add_argument("name")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--reset", action="store_true", help="clear them: the next run starts from `initial`")
    g.add_argument("--set-cursor", metavar="VALUE", help="set the incremental cursor the next run starts after")
    s.add_argument("--stream", help="with --set-cursor: the stream (phase) of a source with several")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("cleanup", parents=[common], help="delete history older than `retention:` allows")
    s.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    s.add_argument("--json", action="store_true")

    sub.add_parser("doctor", parents=[common], help="check the store, drivers and the browser web sources use")

    from syncdash.cli import search as search_cli

    search_cli.add_parser(sub, common)

    s = sub.add_parser("console", parents=[common], help="the console (what `syncdash` alone opens)")
    s.add_argument("--attach-only", action="store_true", help="never host the workers, only read and queue")

    if plugins:
        for ep in _plugin_commands():
            ep.load()(sub)
    return p


# Commands installed by other distributions (the demo registers `syncdash demo` this way): the product never
# imports them, and scanning entry points costs a few ms, so it happens only when a command is not built in.
PLUGIN_GROUP = "syncdash.commands"


def _plugin_commands() -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=PLUGIN_GROUP))


BUILTIN_COMMANDS = frozenset({
    'check', 'cleanup', 'console', 'daemon', 'doctor', 'errors', 'export', 'init', 'pause', 'resume',
    'retry', 'run', 'runs', 'schedule', 'schema', 'show', 'state', 'status', 'validate',
})


def _words(argv: Sequence[str]) -> list[str]:
    """argv without its options (and the value of --config): the command and its positional arguments."""
    words: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in ("-c", "--config"):
            skip = True
        elif not a.startswith("-"):
            words.append(a)
    return words


def _wants_plugins(argv: Sequence[str]) -> bool:
    """True when argv names no built-in command, or asks for the command list."""
    words = _words(argv)
    if not words:
        return "-h" in argv or "--help" in argv
    return words[0] not in BUILTIN_COMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    if argv is not None:  # a caller's (tests, the demo): none of the process-wide measures below
        return _main(list(argv))
    # a process's own entry: the collector pauses while importing, and a one-shot command skips the teardown
    paused = startup_begins()
    try:
        code = _main(sys.argv[1:])
    finally:
        if paused:
            startup_done()  # frozen too: re-enabled over a full young generation, it would scan it all at once
    words = _words(sys.argv[1:])
    if words and words[0] in ONE_SHOT:
        leave(code)
    return code


def _main(argv: list[str]) -> int:
    args = build_parser(plugins=_wants_plugins(argv)).parse_args(argv)
    if args.command is None:
        if not sys.stdout.isatty():  # piped or scripted: the console needs a terminal
            build_parser().print_help()
            return EXIT_USAGE
        args = build_parser().parse_args(["console", *(["--config", args.config] if args.config else [])])
    from syncdash.cli import commands
    from syncdash.cli.render import redact  # error texts can quote config values: mask ${VAR} ones

    if args.command not in LATE_START:
        startup_done()  # the console, the daemon, a check...: the collector runs for all their work
    try:
        handler = getattr(args, "handler", None) or getattr(commands, f"cmd_{args.command}")
        return int(handler(args))
    except ConfigError as e:
        for one in e.errors if isinstance(e, ConfigErrors) else [e]:  # one line each, all greppable
            sys.stderr.write(f"syncdash: config error: {redact(str(one))}\n")
        return EXIT_USAGE
    except SyncdashError as e:
        sys.stderr.write(f"syncdash: {redact(str(e))}\n")
        return e.exit_code
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write("syncdash: interrupted\n")
        return EXIT_CANCELLED
