"""The journal's commands: batch, resume, jobs and spend, their output and exit codes, and bad input."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from journal_fakes import FakeProvider, fake_plugins
from journal_helpers import make_clip

import vidmatte
import vidmatte._client
from vidmatte._cli import main
from vidmatte._journal import Journal, Step


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeProvider:
    """Every CLI client in the test gets the fake backend (a provider outliving each command)."""
    provider = FakeProvider(polls_to_finish=1)
    monkeypatch.setattr(vidmatte._client, "load_plugins", lambda environ=None: fake_plugins(provider))
    # The CLI runs in real time: a scheduler that polls a fresh job at once keeps these tests fast.
    policy = vidmatte.PollPolicy(unknown_first=0.01, prior_queue=0.0, prior_speed=0.01)
    monkeypatch.setattr(vidmatte._client, "Scheduler", functools.partial(vidmatte.Scheduler, policy=policy))
    config = tmp_path / "vidmatte.toml"
    config.write_text('backend = "fake"\n')
    monkeypatch.setenv("VIDMATTE_CONFIG", str(config))
    monkeypatch.delenv("VIDMATTE_JOURNAL", raising=False)
    monkeypatch.chdir(tmp_path)
    return provider


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "clips"
    folder.mkdir()
    return [make_clip(folder / f"c{i}.mp4", i, frames=2) for i in range(3)]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--journal", "journal.sqlite", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_batch_writes_each_output_once_and_a_rerun_skips_them(
    provider: FakeProvider, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "batch", "clips/*.mp4", "-o", "out", "-q")
    assert code == 0, err
    assert out.count("│ done ") == 3
    assert "3 inputs in" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c0.webm", "c1.webm", "c2.webm"]
    assert provider.submissions == 3

    code, out, _ = _run(capsys, "batch", "clips/*.mp4", "-o", "out", "-q")
    assert code == 0
    assert out.count("│ skipped") == 3
    assert provider.submissions == 3

    code, out, _ = _run(capsys, "jobs")
    assert code == 0
    assert out.count(" fake ") == 3
    assert "0 unfinished" in out

    code, out, _ = _run(capsys, "spend")
    assert code == 0
    assert "spend by day" in out
    assert "spend by backend" in out
    assert "spend by job" in out
    assert "total spent: USD 0.7500" in out

    code, out, _ = _run(capsys, "resume")
    assert (code, out.strip()) == (0, "nothing to resume: every journaled job is finished")


def test_a_list_file_and_a_changed_option_make_new_work(
    provider: FakeProvider, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "list.txt").write_text("# two of them\nclips/c0.mp4\n\nclips/c1.mp4\n")
    assert _run(capsys, "batch", "@list.txt", "-o", "out", "-q")[0] == 0
    assert provider.submissions == 2
    # The same inputs with another option are other work (the key covers the options).
    assert _run(capsys, "batch", "@list.txt", "-o", "out", "-q", "--option", "quality=high")[0] == 0
    assert provider.submissions == 4


def test_a_bad_input_fails_alone_and_the_exit_code_says_so(
    provider: FakeProvider, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "clips" / "broken.mp4").write_bytes(b"not a video at all")
    code, out, _ = _run(capsys, "batch", "clips/*.mp4", "-o", "out", "-q")
    assert code == 1
    assert out.count("│ done ") == 3
    assert "failed" in out
    assert provider.submissions == 3


def test_an_input_deleted_mid_batch_fails_alone_and_a_rerun_does_only_it(
    provider: FakeProvider, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = clips[2]
    moved = tmp_path / "moved.mp4"
    provider.on_submit = lambda key: victim.exists() and victim.rename(moved)  # type: ignore[func-returns-value]
    code, out, _ = _run(
        capsys, "batch", "clips/c0.mp4", "clips/c1.mp4", "clips/c2.mp4", "-o", "out", "-q", "--concurrency", "1"
    )
    assert code == 1
    assert "no longer exists" in out
    assert provider.submissions == 2
    provider.on_submit = None
    moved.rename(victim)
    code, out, _ = _run(capsys, "batch", "clips/c0.mp4", "clips/c1.mp4", "clips/c2.mp4", "-o", "out", "-q")
    assert code == 0
    assert out.count("│ skipped") == 2
    assert provider.submissions == 3


def test_an_unknown_submit_outcome_is_finished_by_resume_without_a_second_job(
    provider: FakeProvider, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provider.lose_next_answers = 1
    code, out, _ = _run(capsys, "batch", "clips/c0.mp4", "-o", "out", "-q")
    assert code == 1
    assert "the submit's outcome is unknown: `vidmatte resume` settles it" in out
    code, out, err = _run(capsys, "jobs", "--unfinished")
    assert "submitting" in out
    assert "1 unfinished" in out
    code, out, err = _run(capsys, "resume")
    assert code == 0, err
    assert "1 finished, 0 failed" in out
    assert (tmp_path / "out" / "c0.webm").read_bytes() == b"result of job-1"
    assert (provider.submissions, provider.replays, provider.charges) == (1, 1, 1)


def test_a_full_disk_keeps_the_paid_result_for_resume(
    provider: FakeProvider, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provider.disk_full_next = 1
    code, out, _ = _run(capsys, "batch", "clips/c0.mp4", "-o", "out", "-q")
    assert code == 1
    assert "No space left on device" in out
    assert "vidmatte resume" in out
    assert not (tmp_path / "out" / "c0.webm").exists()
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        (record,) = journal.unfinished()
        assert record.step == Step.FINISHED  # paid, kept, waiting for room
    code, out, _ = _run(capsys, "resume")
    assert code == 0
    assert (tmp_path / "out" / "c0.webm").exists()
    assert (provider.submissions, provider.charges) == (1, 1)


def test_a_run_budget_refuses_what_does_not_fit_before_it_is_sent(
    provider: FakeProvider, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "vidmatte.toml").write_text('backend = "fake"\n[budget]\nper_run = "0.5"\n')
    code, out, _ = _run(capsys, "batch", "clips/*.mp4", "-o", "out", "-q", "--concurrency", "1")
    assert code == 1
    assert out.count("│ done ") == 2
    assert "over the per-run budget" in out
    assert provider.submissions == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["batch", "nothing-*.mp4", "-o", "out"], "no file matches 'nothing-*.mp4'"),
        (["batch", "missing.mp4", "-o", "out"], "input 'missing.mp4' does not exist"),
        (["batch", "@nolist.txt", "-o", "out"], "list file 'nolist.txt' cannot be read"),
        (["batch", "clips/c0.mp4", "-o", "clips/c0.mp4/sub"], "cannot be created"),
        (["batch", "clips/c0.mp4", "-o", "out", "--concurrency", "0"], "--concurrency must be at least 1"),
    ],
)
def test_bad_batch_arguments_are_one_line_errors_before_anything_is_spent(
    provider: FakeProvider, clips: list[Path], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _out, err = _run(capsys, *args)
    assert code == 1
    assert message in err
    assert err.count("\n") == 1
    assert provider.submissions == 0


def test_a_corrupt_journal_is_a_one_line_error(
    provider: FakeProvider, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "journal.sqlite").write_bytes(b"garbage" * 1000)
    for command in (["jobs"], ["spend"], ["resume"], ["batch", "clips/c0.mp4", "-o", "out"]):
        code, _, err = _run(capsys, *command)
        assert code == 1
        assert "is corrupt" in err
        assert err.count("\n") == 1


def test_remove_is_journaled_too(
    provider: FakeProvider, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "remove", "clips/c0.mp4", "-o", "one.webm", "-q")
    assert code == 0, err
    assert "wrote one.webm" in out
    with Journal.open(tmp_path / "journal.sqlite") as journal:
        (record,) = journal.jobs()
        assert record.succeeded
        assert record.dest == str((tmp_path / "one.webm").absolute())


def test_a_batch_sweeps_what_a_killed_run_half_wrote(
    provider: FakeProvider, clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".c0.webm.1a2b3c4d.part").write_bytes(b"half a video")
    (out / ".c0.webm.x9y8z7.part").mkdir()  # a conversion's work folder
    (out / "keep-me.txt").write_text("not ours")
    assert _run(capsys, "batch", "clips/c0.mp4", "-o", "out", "-q")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["c0.webm", "keep-me.txt"]
