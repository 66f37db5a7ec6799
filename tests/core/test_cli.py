"""The CLI as users run it: a real process, one-line errors, secrets masked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidmatte import media

KEY = "sk-aig-TOPSECRET-cli-0123456789"


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDMATTE_", "AIGATEWAY_", "PRAMA_"))}
    # The user's own journal, cache and config stay untouched: everything lives in the test's folder.
    full_env.update(
        VIDMATTE_JOURNAL=str(cwd / ".journal.sqlite"),
        XDG_CACHE_HOME=str(cwd / ".cache"),
        XDG_CONFIG_HOME=str(cwd / ".config"),
        XDG_DATA_HOME=str(cwd / ".data"),
    )
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "vidmatte", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=240
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    return media.make_sample_clip(path, seconds=1.0, fps=10, size=(192, 108))


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _run("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("remove", "demo", "backends", "config", "estimate"):
        assert command in result.stdout


def test_backends_lists_installed_plugins_with_their_distributions(tmp_path: Path) -> None:
    result = _run("backends", cwd=tmp_path)
    assert result.returncode == 0
    assert "local (default)" in result.stdout
    assert "vidmatte-local" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["remove", "missing.mp4", "-o", "out.webm"], "does not exist"),
        (["remove", "notvideo.txt", "-o", "out.webm"], "notvideo.txt"),
        (["remove", "{clip}", "-o", "out.avi"], "unknown output extension"),
        (["remove", "{clip}", "-o", "out.mp4", "--background", "transparent"], "alpha"),
        (["remove", "{clip}", "-o", "no/such/dir/out.webm"], "does not exist"),
        (["remove", "{clip}", "-o", "out.webm", "--backend", "nope"], "unknown backend 'nope'"),
        (["remove", "{clip}", "-o", "out.webm", "--format", "gif"], "unknown output format"),
    ],
)
def test_bad_input_is_one_line_without_traceback(tmp_path: Path, clip: Path, args: list[str], message: str) -> None:
    (tmp_path / "notvideo.txt").write_text("this is not a video")
    result = _run(*[a.replace("{clip}", str(clip)) for a in args], cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vidmatte: error:")
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("out*"))
    assert not list(tmp_path.glob("no/**/*"))


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    (tmp_path / "vidmatte.toml").write_text(f'[backends.aigateway]\napi_key = "{KEY}"\n')
    result = _run("config", "show", cwd=tmp_path, env={"AIGATEWAY_API_KEY": KEY})
    assert result.returncode == 0, result.stderr
    assert KEY not in result.stdout + result.stderr
    assert "api_key = ***" in result.stdout
    assert "AIGATEWAY_API_KEY = ***" in result.stdout


def test_remove_on_the_offline_default_writes_a_webm_with_meaningful_alpha(tmp_path: Path, clip: Path) -> None:
    result = _run("remove", str(clip), "-o", "out.webm", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote out.webm")
    frames = list(media.read_frames_rgba(tmp_path / "out.webm"))
    assert len(frames) == media.probe(clip).frame_count
    alpha = np.stack([f[..., 3] for f in frames]).astype(np.float32) / 255
    assert alpha.max() > 0.9, "nothing is opaque"
    assert alpha.min() < 0.1, "nothing is transparent"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["out.webm"]


def test_estimate_reports_each_backend(tmp_path: Path, clip: Path) -> None:
    result = _run("estimate", str(clip), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "local: USD 0.0000" in result.stdout
    assert "input: 1.00 s, 10 frames" in result.stdout
