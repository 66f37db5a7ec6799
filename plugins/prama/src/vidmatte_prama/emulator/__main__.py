"""``python -m vidmatte_prama.emulator``: serve the Prama emulator on 127.0.0.1 until interrupted."""

from __future__ import annotations

import argparse
import time

from vidmatte_prama.emulator import Emulator, EmulatorConfig


def main(argv: list[str] | None = None) -> None:
    """Parse switches, serve, print the base URL."""
    parser = argparse.ArgumentParser(prog="python -m vidmatte_prama.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8787, help="0 for any free port")
    parser.add_argument("--key", action="append", help="accepted API key (repeatable; default test-key)")
    parser.add_argument("--any-key", action="store_true", help="accept any non-empty key")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per POST /v2")
    parser.add_argument("--rps", type=float, default=None, help="requests a second per key (429 beyond)")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 503")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of connections dropped")
    parser.add_argument("--masks", choices=("auto", "local", "synthetic"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        keys=None if args.any_key else frozenset(args.key or ["test-key"]),
        latency=args.latency,
        requests_per_second=args.rps,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        seed=args.seed,
        record_masks=False,
    )
    with Emulator(config, port=args.port, masks=args.masks) as emulator:
        print(f"prama emulator on {emulator.base_url} (masks: {emulator.masks})", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
