"""Acceptance: batches killed with SIGKILL at random points, resumed each time, against emulators with faults on.

The emulators run in their own processes (they outlive every kill).  At the
end every input has exactly one complete, decodable output with a matte, the
provider was asked to do (and charged for) each piece of work once, and the
journal's spend equals what the provider charged.

Deselect with ``-m "not chaos"``; CI runs them.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from journal_helpers import emulator_process, get_json, journal_events, make_clip, post_json, vidmatte

from vidmatte._journal import Journal

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

INPUTS = 20
FRAMES = 5
KILLS = 10


def _inputs(folder: Path) -> list[Path]:
    folder.mkdir()
    return [make_clip(folder / f"clip{i:02d}.mp4", i, frames=FRAMES) for i in range(INPUTS)]


def _check_outputs(out: Path, inputs: list[Path]) -> None:
    from vidmatte.media import read_frames_rgba

    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{p.stem}.webm" for p in inputs), names  # one each, no half-written leftovers
    for source in inputs:
        frames = list(read_frames_rgba(out / f"{source.stem}.webm"))
        assert len(frames) == FRAMES
        alpha = frames[0][..., 3]
        assert alpha.min() < 128 < alpha.max(), f"{source.stem}: the output has no matte"


def _chaos(
    batch: list[str],
    env: dict[str, str],
    cwd: Path,
    seed: int,
    between: Callable[[int], None] | None = None,
    steps: tuple[int, int] = (1, 15),
) -> list[str]:
    """SIGKILL runs at random points until KILLS kills landed (every third run is `vidmatte resume`,
    the others the batch again); then run the batch to the end.

    A kill lands after a random number of journal events (intent, submit, handle, state changes,
    checkpoints, settlement, output) written by that run, so it hits the work at random steps
    however fast the machine and the scheduler are; the process is killed between any two of
    its instructions, not only at journal writes."""
    rng = random.Random(seed)
    log: list[str] = []
    kills = rounds = 0
    journal = cwd / "journal.sqlite"
    while kills < KILLS:
        rounds += 1
        assert rounds <= 3 * KILLS, f"only {kills} kills landed in {rounds} rounds: {log}"
        if between is not None:
            between(rounds)
        command = ["resume", "-q"] if rounds % 3 == 0 else batch
        start = journal_events(journal)
        wanted = rng.randint(*steps)
        extra = rng.uniform(0.0, 0.05)  # and a little later than the event, to land anywhere in between

        def due(start: int = start, wanted: int = wanted, extra: float = extra) -> bool:
            if journal_events(journal) < start + wanted:
                return False
            time.sleep(extra)
            return True

        code, _, err = vidmatte(["--journal", "journal.sqlite", *command], env=env, cwd=cwd, kill_when=due)
        if code is None:
            kills += 1
            log.append(f"{command[0]} killed {wanted} events in")
        else:
            log.append(f"{command[0]} exited {code} before {wanted} events {err.strip()[-200:]}")
    for _ in range(3):  # a fault may fail an input's try; the next run finishes it (never twice)
        code, out, err = vidmatte(["--journal", "journal.sqlite", *batch], env=env, cwd=cwd)
        log.append(f"final batch exited {code}")
        if code == 0:
            break
    assert code == 0, f"{out}\n{err}\n{log}"
    return log


def _journal(path: Path) -> Decimal:
    with Journal.open(path) as journal:
        records = journal.jobs()
        assert not [r.job_key for r in records if not r.finished]
        done = [r for r in records if r.succeeded]
        assert len({r.input_key for r in done}) == INPUTS
        return journal.total_spent()


def test_aigateway_batch_survives_kills(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path / "in")
    switches = ("--port", "0", "--speed", "0.05", "--engine", "synthetic", "--min-poll-interval", "0")
    with emulator_process("vidmatte_aigateway.emulator", *switches, "--cost-report", "usage") as url:
        post_json(f"{url}/_emulator/config", {"accounts": {"sk-aig-emulator": {"requests_per_minute": 6000}}})
        (tmp_path / "vidmatte.toml").write_text(
            f'[backends.aigateway]\nbase_url = "{url}"\nmedia_url = "{url}"\n'
            "min_poll_interval = 0.05\nrequests_per_minute = 6000\n"
        )
        env = {
            **os.environ,
            "AIGATEWAY_API_KEY": "sk-aig-emulator",
            "VIDMATTE_UPLOAD_URL": f"{url}/_emulator/uploads",
            "VIDMATTE_CONFIG": str(tmp_path / "vidmatte.toml"),
        }
        mixes = [
            # Lost submit answers (the job exists: only the key saves a second charge), torn downloads,
            # 5xx and 429 on polls, dropped uploads, unreadable submit answers.
            [{"kind": "drop", "route": "submit", "count": 2}, {"kind": "truncate", "route": "download", "count": 1}],
            [
                {"kind": "5xx", "route": "poll", "count": 1, "status": 503},
                {"kind": "drop", "route": "upload", "count": 1},
            ],
            [{"kind": "429", "route": "poll", "count": 1, "retry_after": 1}, {"kind": "malformed", "route": "submit"}],
        ]
        batch = ["batch", *(p.name for p in inputs), "-o", "out", "--backend", "aigateway", "--concurrency", "10", "-q"]
        log = _chaos(
            batch, env, tmp_path / "in", seed=7, between=lambda n: post_json(f"{url}/_emulator/faults", mixes[n % 3])
        )
        stats = get_json(f"{url}/_emulator/stats")
    print("\n".join(log))
    print({k: stats[k] for k in ("submissions", "idempotent_replays", "charges", "charged_usd", "faults")})
    _check_outputs(tmp_path / "in" / "out", inputs)
    assert stats["faults"].get("drop", 0) > 0
    assert stats["submissions"] == INPUTS, (stats, log)
    assert stats["charges"] == INPUTS, (stats, log)
    assert _journal(tmp_path / "in" / "journal.sqlite") == Decimal(stats["charged_usd"]), (stats, log)


def test_prama_batch_survives_kills(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path / "in")
    switches = ("--port", "0", "--any-key", "--masks", "synthetic", "--latency", "0.4")
    with emulator_process("vidmatte_prama.emulator", *switches, "--error-rate", "0.05", "--drop-rate", "0.05") as url:
        (tmp_path / "vidmatte.toml").write_text(
            f'[backends.prama]\nbase_url = "{url}"\nconcurrency = 2\nrequests_per_second = 100\nprice_per_image = "0.01"\n'
        )
        env = {**os.environ, "PRAMA_API_KEY": "prama-chaos-key", "VIDMATTE_CONFIG": str(tmp_path / "vidmatte.toml")}
        batch = ["batch", *(p.name for p in inputs), "-o", "out", "--backend", "prama", "--concurrency", "4", "-q"]
        log = _chaos(batch, env, tmp_path / "in", seed=11, steps=(1, 25))
        stats = get_json(f"{url}/_emulator/stats")
    (counters,) = stats.values()
    print("\n".join(log))
    print(counters)
    _check_outputs(tmp_path / "in" / "out", inputs)
    frames = INPUTS * FRAMES
    spent = _journal(tmp_path / "in" / "journal.sqlite")
    # The journal paid for every frame exactly once: masks kept by a killed run were never bought again.
    assert spent == Decimal("0.01") * frames, (spent, counters, log)
    # Prama has no idempotency: a mask it charged for whose answer died with the process (at most the
    # requests in flight, 2, per kill) is bought again.  That loss is bounded, never a second batch.
    lost = counters["masks"] - frames
    print(f"masks charged {counters['masks']} for {frames} frames: {lost} answers lost in flight at a kill")
    assert 0 <= lost <= 2 * KILLS, (counters, log)


def test_two_batches_at_once_on_the_same_inputs_never_pay_twice(tmp_path: Path) -> None:
    import subprocess
    import sys

    inputs = _inputs(tmp_path / "in")[:8]
    switches = ("--port", "0", "--any-key", "--masks", "synthetic", "--latency", "0.05")
    with emulator_process("vidmatte_prama.emulator", *switches) as url:
        (tmp_path / "vidmatte.toml").write_text(
            f'[backends.prama]\nbase_url = "{url}"\nconcurrency = 2\nrequests_per_second = 100\nprice_per_image = "0.01"\n'
        )
        env = {**os.environ, "PRAMA_API_KEY": "prama-chaos-key", "VIDMATTE_CONFIG": str(tmp_path / "vidmatte.toml")}
        batch = ["--journal", "journal.sqlite", "batch", *(p.name for p in inputs), "-o", "out"]
        batch += ["--backend", "prama", "--concurrency", "4", "-q"]
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "vidmatte", *batch],
                cwd=tmp_path / "in",
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=120) for run in runs]
        code, out, err = vidmatte(batch, env=env, cwd=tmp_path / "in")  # whatever one left to the other
        assert code == 0, (out, err, outputs)
        (counters,) = get_json(f"{url}/_emulator/stats").values()
    print(outputs[0][0][-400:], outputs[1][0][-400:])
    _check_outputs(tmp_path / "in" / "out", inputs)
    assert counters["masks"] == len(inputs) * FRAMES, (counters, outputs)
