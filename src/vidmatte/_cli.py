"""The ``vidmatte`` command line.  Errors are one line; ``--debug`` shows tracebacks."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidmatte._cli_journal import COMMANDS as _JOURNAL_COMMANDS
from vidmatte._cli_journal import add_journal_option, add_parsers
from vidmatte.errors import VidmatteError

if TYPE_CHECKING:
    from vidmatte._client import AsyncClient, RemoveResult
    from vidmatte.contract import JobEvent

__all__ = ["main"]

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = dict(_JOURNAL_COMMANDS)


def _command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        _COMMANDS[name] = func
        return func

    return register


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidmatte",
        description="Remove the background from videos through any provider.",
        epilog="Offline by default: with nothing configured, the local backend runs on this machine.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument(
        "--config", type=Path, help="configuration file (default: ./vidmatte.toml, then the user config dir)"
    )
    add_journal_option(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    remove = commands.add_parser("remove", help="remove the background of one video")
    remove.add_argument("input", help="video file or http(s) URL")
    remove.add_argument(
        "-o", "--output", required=True, help="output file (.webm .mov .mp4 .zip) or folder (PNG frames)"
    )
    _add_output_options(remove)
    remove.add_argument("--timeout", type=float, help="seconds the job may take before it is cancelled")
    remove.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)"
    )
    remove.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_journal_option(remove)

    demo = commands.add_parser("demo", help="make a sample clip and remove its background offline")
    demo.add_argument("--dir", type=Path, default=Path("vidmatte-demo"), help="where to put the clip and result")
    demo.add_argument("--backend", help="backend to use (default: the offline local backend)")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    commands.add_parser("backends", help="list installed backends and their capabilities")

    config = commands.add_parser("config", help="configuration")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION")
    config_commands.add_parser("show", help="show the effective configuration (secrets masked)")

    estimate = commands.add_parser("estimate", help="estimate the cost of a video on each installed backend")
    estimate.add_argument("input", help="video file")
    estimate.add_argument("--backend", help="only this backend")
    estimate.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)"
    )
    add_parsers(commands, _add_output_options)
    return parser


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", help="webm, mov, png, zip, mp4 or matte (default: from the output name)")
    parser.add_argument(
        "--background", help="transparent (default for alpha formats), a colour (green, #00ff00, 0,255,0) or an image"
    )
    parser.add_argument("--backend", help="backend to use (default: configured, else the offline local backend)")
    parser.add_argument("--no-audio", action="store_true", help="drop the source audio")


def _options(pairs: Sequence[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise VidmatteError(f"--option wants KEY=VALUE, got {pair!r}")
        options[key.strip()] = _scalar(value.strip())
    return options


def _scalar(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def _client(args: argparse.Namespace, **kwargs: Any) -> AsyncClient:
    from vidmatte._client import AsyncClient
    from vidmatte._config import load_settings

    settings = load_settings(config_file=args.config, backend=getattr(args, "backend", None))
    return AsyncClient(settings=settings, **kwargs)


class _Progress:
    """A progress bar fed by job events: frames, fps and ETA when known, else the job state."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = (enabled and sys.stderr.isatty()) or (enabled and os.environ.get("VIDMATTE_PROGRESS") == "1")
        self._progress: Any = None
        self._task: Any = None
        self._started = time.monotonic()

    def __enter__(self) -> _Progress:
        if self._enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[fps]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("submitting", total=None, fps="")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: JobEvent) -> None:
        if self._progress is None:
            return
        fields: dict[str, Any] = {}
        if event.frames_total:
            elapsed = max(1e-6, time.monotonic() - self._started)
            fields = {"total": event.frames_total, "completed": event.frames_done or 0}
            fields["fps"] = f"{(event.frames_done or 0) / elapsed:.0f} fps"
            fields["description"] = "matting"
        elif event.snapshot is not None:
            snapshot = event.snapshot
            fields["description"] = snapshot.state.value
            if snapshot.progress is not None:
                fields.update(total=100, completed=int(snapshot.progress * 100))
            if snapshot.queue_position is not None:
                fields["fps"] = f"queue #{snapshot.queue_position}"
        else:
            fields["description"] = event.kind.value
        self._progress.update(self._task, **fields)


def _summary(result: RemoveResult, seconds: float) -> str:
    media = result.media
    what = f"{media.frame_count} frames, {media.duration:.1f} s" if media else "remote source"
    cost = f"{result.cost.currency} {result.cost.amount:.4f}"
    return (
        f"wrote {result.output} ({result.snapshot.artefacts[0].format.value if result.snapshot.artefacts and result.snapshot.artefacts[0].format else 'video'}, "
        f"{what}) with {result.backend} in {seconds:.1f} s; cost {cost}"
    )


async def _remove(args: argparse.Namespace, source: str, output: str, options: dict[str, Any]) -> RemoveResult:
    from vidmatte._cli_journal import _journal_path

    # The CLI always journals: a killed `vidmatte remove` is finished by `vidmatte resume`.
    with _Progress(not args.quiet) as progress:
        async with _client(args, events=progress, journal=_journal_path(args)) as client:
            return await client.remove(
                source,
                output,
                format=args.format,
                background=args.background,
                keep_audio=not args.no_audio,
                options=options,
                timeout=args.timeout,
            )


@_command("remove")
def _cmd_remove(args: argparse.Namespace) -> int:
    options = _options(args.option)
    started = time.monotonic()
    result = asyncio.run(_remove(args, args.input, args.output, options))
    print(_summary(result, time.monotonic() - started))
    return 0


@_command("demo")
def _cmd_demo(args: argparse.Namespace) -> int:
    from vidmatte import media

    folder: Path = args.dir
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / "sample.mp4"
    output = folder / "sample-matted.webm"
    print(f"making a sample clip at {clip} ...")
    media.make_sample_clip(clip)
    args.format = args.background = args.timeout = None
    args.no_audio = False
    started = time.monotonic()
    result = asyncio.run(_remove(args, str(clip), str(output), {}))
    print(_summary(result, time.monotonic() - started))
    print(f"the result, with a transparent background, is at {output.resolve()}")
    return 0


@_command("backends")
def _cmd_backends(args: argparse.Namespace) -> int:
    from vidmatte._config import load_settings
    from vidmatte._plugins import load_plugins

    settings = load_settings(config_file=args.config)
    plugins = load_plugins()
    specs = plugins.backends
    if not specs:
        print("no backends installed; install the offline one with: pip install vidmatte-local")
        return 0
    default = settings.backend or plugins.default_backend()
    for name, spec in specs.items():
        caps = spec.capabilities
        marker = " (default)" if name == default else ""
        origin = f"{spec.distribution} {spec.version}".strip() or "unknown distribution"
        print(f"{name}{marker}: {spec.summary}  [{origin}]")
        inputs = ", ".join(sorted(m.value for m in caps.input_modes))
        outputs = ", ".join(sorted(f.value for f in caps.outputs))
        limits = [
            f"max {caps.max_duration:.0f} s" if caps.max_duration else "",
            f"{caps.requests_per_minute:.0f} req/min" if caps.requests_per_minute else "",
            f"min poll {caps.min_poll_interval:g} s" if caps.min_poll_interval else "",
            "cancel" if caps.cancel else "no cancel",
            "webhooks" if caps.webhooks else "",
            "runs locally" if caps.local else "",
        ]
        print(f"    inputs: {inputs}; outputs: {outputs}; {'; '.join(x for x in limits if x)}")
        if spec.env_vars:
            print(f"    environment: {', '.join(spec.env_vars)}")
    for name, reason in plugins.skipped:
        print(f"skipped plugin {name}: {reason}")
    return 0


def _mask(value: Any) -> str:
    return "***" if value else "(not set)"


@_command("config")
def _cmd_config(args: argparse.Namespace) -> int:
    from vidmatte._config import load_settings
    from vidmatte._plugins import load_plugins

    if args.config_command != "show":
        raise VidmatteError("usage: vidmatte config show")
    settings = load_settings(config_file=args.config)
    plugins = load_plugins()
    print(f"# source: {settings.source}")
    print(f"backend = {settings.backend or plugins.default_backend()!r}" + ("" if settings.backend else "  # default"))
    print(f"uploader = {settings.uploader!r}")
    if settings.journal:
        print(f"journal = {settings.journal!r}")
    else:
        from vidmatte._journal import default_journal_path

        print(f"journal = {str(default_journal_path())!r}  # default")
    print(f"deadline = {settings.deadline:g}")
    print(f"concurrency = {settings.concurrency}")
    budget = settings.budget
    print("[budget]")
    for key in ("per_job", "per_run", "per_day"):
        value = getattr(budget, key)
        print(f"{key} = {str(value) if value is not None else 'unlimited'!r}")
    from vidmatte._secrets import is_secret_name

    for name, spec in plugins.backends.items():
        section = settings.backends.get(name, {})
        print(f"[backends.{name}]")
        for key, value in sorted(section.items()):
            secret = key in spec.secret_settings or is_secret_name(key)
            print(f"{key} = {_mask(value) if secret else repr(value)}")
        for var in spec.env_vars:
            value = os.environ.get(var)
            secret = is_secret_name(var)
            shown = _mask(value) if secret else repr(value) if value else "(not set)"
            print(f"# env {var} = {shown}")
    for name, section in settings.uploaders.items():
        print(f"[uploaders.{name}]")
        for key, value in sorted(section.items()):
            secret = is_secret_name(key)
            print(f"{key} = {_mask(value) if secret else repr(value)}")
    return 0


async def _estimates(args: argparse.Namespace, options: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    async with _client(args) as client:
        request = client.request(args.input, options=options)
        names = [args.backend] if args.backend else list(client.plugins.backends)
        if not names:
            return [("(none)", "no backends installed; install the offline one with: pip install vidmatte-local")]
        for name in names:
            try:
                cost = await client.estimate(request, backend=name)
                rows.append((name, f"{cost.currency} {cost.amount:.4f}  {cost.detail}"))
            except VidmatteError as exc:
                if args.backend:
                    raise
                rows.append((name, f"unavailable: {exc}"))
        media = request.media
        if media is not None:
            rows.insert(
                0, ("input", f"{media.duration:.2f} s, {media.frame_count} frames, {media.width}x{media.height}")
            )
    return rows


@_command("estimate")
def _cmd_estimate(args: argparse.Namespace) -> int:
    for name, text in asyncio.run(_estimates(args, _options(args.option))):
        print(f"{name}: {text}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 usage, 130 interrupted)."""
    import warnings

    # Warnings (a skipped plugin) are one line on the terminal, like errors.
    warnings.formatwarning = lambda message, *_args, **_kw: f"vidmatte: warning: {message}\n"
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG)
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("vidmatte: interrupted", file=sys.stderr)
        return 130
    except VidmatteError as exc:
        if args.debug:
            raise
        print(f"vidmatte: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"vidmatte: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
