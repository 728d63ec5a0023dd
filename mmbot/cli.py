"""The `mmbot` command. A bad argument or config is one line naming it, and exit code 2.

No traceback ever reaches the user. An error that ends a command — even from deep inside a run,
wrapped in Trio's exception groups — is one line on stderr: exit code 2 when it is the input's or
the venue's fault (a venue error such as refused credentials, a damaged recording, a bad config),
exit code 1 when it is a bug, with the full traceback written beside the run's event log
(``<db>.traceback``; in the temporary directory for commands without one). A run whose log was
left open by the error is closed with its run marked failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, NoReturn, Sequence

from mmbot.cli_errors import EXIT_USAGE, UsageError

__all__ = ["EXIT_BUG", "EXIT_USAGE", "UsageError", "main"]

EXIT_BUG = 1
EXIT_INTERRUPTED = 130


def _no_default(value: object) -> bool:
    """A default not worth showing: none, or off (0 is a default worth showing, so not ``in``)."""
    return value is None or value is False or value == argparse.SUPPRESS


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default, unless there is none (None, off) or the help text
    already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.help == argparse.SUPPRESS or "default" in text or _no_default(action.default):
            return action.help
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return action.help
        return f"{text} (default: %(default)s)".lstrip()


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's parser: a bad argument is one line (exit 2); ``--help`` shows defaults."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if action.help is None and action.option_strings and not _no_default(action.default):
            action.help = "(default: %(default)s)"  # an option without help still shows its default
        return action

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    from mmbot import __version__

    parser = _Parser(prog="mmbot", description="A Polymarket complete-set market maker on Trio.")
    parser.add_argument("--version", action="version", version=f"mmbot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    replay = sub.add_parser("replay", help="replay a recording through the whole decision path on paper")
    replay.add_argument("recording", help="a recording file (.jsonl or .jsonl.gz)")
    replay.add_argument("--config", help="a TOML config file (defaults otherwise)")
    replay.add_argument("--db", help="the event log to write, a new file (default: out/<recording>-YYYYMMDD-HHMMSS.db,"
                                     " UTC)")
    replay.add_argument("--seed", type=_int_arg("--seed"), help="seed for paper latency jitter (default: the config's)")
    replay.add_argument("--quiet", action="store_true", help="no progress bar")

    decode = sub.add_parser("decode", help="print captured venue frames as decoded domain messages")
    decode.add_argument("files", nargs="+", help="captured frames (JSON files)")

    generate = sub.add_parser("generate", help="write a synthetic recording from the seeded simulator")
    generate.add_argument("--seed", type=_int_arg("--seed"), default=7, help="the simulator's seed")
    generate.add_argument("--out", required=True, help="recording to write (.jsonl or .jsonl.gz; the same seed gives"
                                                       " the same bytes, so an existing file is replaced)")
    generate.add_argument("--duration", type=_int_arg("--duration"), default=720, help="seconds of market time")
    generate.add_argument("--markets", type=_int_arg("--markets"), default=4, help="markets in the recording")
    generate.add_argument("--batched-price-changes", action="store_true",
                          help="pack each step's level changes of a market into one price_change (the old shape)"
                               " instead of the venue's one or two entries per message")
    generate.add_argument("--mirrored", action="store_true",
                          help="each market's two books one, as on the venue: two entries per level change and no"
                               " complete-set mispricing resting (default: two books, so mispricings rest a while)")

    from mmbot import cli_live, cli_logs

    cli_logs.add_parsers(sub)
    cli_live.add_parsers(sub, _int_arg)
    return parser


def _int_arg(name: str):
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} expects a whole number, got {text!r}") from None

    return parse


def _existing(path: str, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"mmbot: {what} {path}: no such file")
    return p


# ------------------------------------------------------------------ commands


def cmd_replay(args: argparse.Namespace) -> int:
    import trio
    import trio.testing

    from mmbot import app
    from mmbot.cli_places import event_log_path, load_config_or_refuse
    from mmbot.facts.frame_times import FrameTimes
    from mmbot.facts.recording import RecordingError, count_frames, read_header
    from mmbot.memory.report import summary
    from mmbot.report_view import print_summary

    recording = _existing(args.recording, "recording")
    config = load_config_or_refuse(args.config, "mmbot replay")
    try:
        read_header(recording)
        total = count_frames(recording)
    except RecordingError as exc:
        raise UsageError(f"mmbot: {exc}") from None
    seed = config.seed if args.seed is None else args.seed
    db = event_log_path(args.db, recording.name.split(".")[0], "mmbot replay")  # never an existing log
    args.event_log = db

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    frame_times = FrameTimes()
    with Progress(
        TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"), TimeElapsedColumn(),
        console=console, disable=args.quiet, transient=True,
    ) as progress:
        task = progress.add_task("replay", total=total)
        shown = [0]

        def advance(delivered: int) -> None:  # every 1,000 frames: a bar's update costs ~1 µs, a frame ~20
            if delivered - shown[0] >= 1_000:
                shown[0] = delivered
                progress.update(task, completed=delivered)

        digest = trio.run(
            lambda: app.replay(
                config=config,
                recording=recording,
                db_path=db,
                seed=seed,
                on_progress=advance,
                frame_times=frame_times,
            ),
            clock=trio.testing.MockClock(autojump_threshold=0),
        )
    report = summary(db)
    report["processing"] = frame_times.summary()
    print_summary(report, title=f"replay of {recording.name} (seed {seed})")
    print(f"event log: {db}")
    print(f"digest: {digest}")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from mmbot.venues.polymarket.decode_cmd import run_decode

    return run_decode(args.files, sys.stdout, sys.stderr)


def cmd_generate(args: argparse.Namespace) -> int:
    from mmbot.cli_places import check_out_path
    from mmbot.venues.simulator.generate import generate_recording

    if args.duration < 10 or args.markets < 1:
        raise UsageError("mmbot generate: --duration expects at least 10 seconds and --markets at least 1")
    check_out_path("--out", args.out, "mmbot generate")
    header = generate_recording(args.out, seed=args.seed, duration_s=args.duration, markets=args.markets,
                                batched_price_changes=args.batched_price_changes, mirrored=args.mirrored)
    print(f"wrote {args.out}: {len(header.markets)} markets in the header, seed {args.seed}")
    return 0


COMMANDS = {
    "replay": cmd_replay,
    "decode": cmd_decode,
    "generate": cmd_generate,
}


def main(argv: Sequence[str] | None = None) -> int:
    from mmbot import cli_live, cli_logs

    args = None
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if args.command is None:  # bare `mmbot`: what it can do
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return {**COMMANDS, **cli_logs.COMMANDS, **cli_live.COMMANDS}[args.command](args)
    except UsageError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except SystemExit:
        raise  # --help
    except BaseException as exc:  # from inside a run: maybe in (nested) exception groups
        return _failed(exc, args)


def _failed(exc: BaseException, args: argparse.Namespace | None) -> int:
    """Tell an error that ended a command in one line; close a run's log left open as failed."""
    from mmbot.clock import wall_ns
    from mmbot.failure import expected, one_line, only
    from mmbot.memory.log import close_abandoned

    if only(exc, (KeyboardInterrupt,)):
        return EXIT_INTERRUPTED
    command = f"mmbot {getattr(args, 'command', '')}".rstrip()
    event_log: Path | None = getattr(args, "event_log", None)
    reason = one_line(exc)
    if event_log is not None:
        try:
            close_abandoned(event_log, reason=reason, wall=wall_ns)
        except Exception as lost:  # told with the traceback, as a bug of its own
            exc = BaseExceptionGroup("the run failed, and its event log could not be closed", [exc, lost])
    if expected(exc):
        print(reason if reason.startswith("mmbot") else f"{command}: {reason}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{command}: internal error: {reason} (full traceback in {_write_traceback(exc, event_log)})",
          file=sys.stderr)
    return EXIT_BUG


def _write_traceback(exc: BaseException, event_log: Path | None) -> Path:
    """The full traceback, beside the event log if there is one (else in the temporary directory)."""
    text = "".join(traceback.format_exception(exc))
    if event_log is not None:
        path = event_log.with_name(event_log.name + ".traceback")
        try:
            path.write_text(text)
            return path
        except OSError:
            pass  # the log's directory is the problem: the temporary directory will do
    with tempfile.NamedTemporaryFile("w", prefix="mmbot-", suffix=".traceback", delete=False) as out:
        out.write(text)
    return Path(out.name)


if __name__ == "__main__":
    sys.exit(main())
