"""The acceptance run: ``vidmatte remove clip.mp4 -o out.webm --backend aigateway`` against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aigateway_media import assert_meaningful_alpha
from vidmatte_aigateway.emulator import EMULATOR_KEY, EmulatorConfig, emulator_thread


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("vidmatte")
    return [str(script)] if script.exists() else [sys.executable, "-m", "vidmatte"]


def test_cli_remove_through_faults_pays_once(clip: Path, tmp_path: Path) -> None:
    config = EmulatorConfig(speed_factor=0.02, engine="synthetic", min_poll_interval=0.3, seed=5)
    (tmp_path / "vidmatte.toml").write_text("[backends.aigateway]\nmin_poll_interval = 0.1\n")
    with emulator_thread(config) as emulator:
        emulator.inject("drop", route="submit")
        emulator.inject("5xx", route="submit", status=500)
        emulator.inject("429", route="poll", retry_after=1)
        emulator.inject("expire", route="download")
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIDMATTE_", "AIGATEWAY_"))}
        environ.update(
            {
                "AIGATEWAY_API_KEY": EMULATOR_KEY,
                "AIGATEWAY_BASE_URL": emulator.base_url,
                "VIDMATTE_UPLOAD_URL": emulator.base_url + "/_emulator/uploads",
                "VIDMATTE_CONFIG": str(tmp_path / "vidmatte.toml"),
                "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
                "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
                "XDG_STATE_HOME": str(tmp_path / "xdg-state"),
            }
        )
        out = tmp_path / "out.webm"
        done = subprocess.run(
            [*_cli(), "remove", str(clip), "-o", str(out), "--backend", "aigateway", "--quiet"],
            env=environ,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        stats = emulator.stats()
    assert done.returncode == 0, done.stderr
    assert EMULATOR_KEY not in done.stdout + done.stderr
    assert stats["submissions"] == 1, stats
    assert stats["charges"] == 1, stats
    assert stats["faults"] == {"drop": 1, "5xx": 1, "429": 1, "expire": 1}, stats
    # 304s: the refresh after the expired URL re-reads the job right after the last poll.
    assert stats["not_modified"] >= 1, stats
    assert_meaningful_alpha(out)
