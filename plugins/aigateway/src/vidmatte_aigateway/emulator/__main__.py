"""``python -m vidmatte_aigateway.emulator``: run the AIgateway emulator on loopback."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from vidmatte_aigateway.emulator import EMULATOR_KEY, Emulator, EmulatorConfig


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m vidmatte_aigateway.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8799, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--speed", type=float, default=1.0, help="speed factor on simulated durations")
    parser.add_argument("--running-state", choices=("processing", "running"), default="processing")
    parser.add_argument("--result-field", choices=("result.url", "result.file_url", "result_url"), default="result.url")
    parser.add_argument("--error-shape", choices=("object", "string"), default="object")
    parser.add_argument("--cancel-form", choices=("delete", "post", "both"), default="both")
    parser.add_argument("--cost-report", choices=("none", "header", "usage", "both"), default="none")
    parser.add_argument("--engine", choices=("auto", "local", "synthetic"), default="auto")
    parser.add_argument("--min-poll-interval", type=float, default=3.0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        speed_factor=args.speed,
        running_state=args.running_state,
        result_field=args.result_field,
        error_shape=args.error_shape,
        cancel_form=args.cancel_form,
        cost_report=args.cost_report,
        engine=args.engine,
        min_poll_interval=args.min_poll_interval,
        latency=args.latency,
    )

    async def serve() -> None:
        emulator = Emulator(config)
        url = await emulator.start(port=args.port)
        print(f"AIgateway emulator on {url} (key {EMULATOR_KEY}); uploads at {url}/_emulator/uploads", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await emulator.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
