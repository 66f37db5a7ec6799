"""Configuration precedence, one-line errors, and secrets kept out of sight."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from vidmatte import load_settings, structure_settings
from vidmatte.errors import ConfigurationError


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vidmatte.toml"
    path.write_text(text)
    return path


def test_defaults_when_nothing_is_configured(tmp_path: Path) -> None:
    settings = load_settings(environ={}, config_file=_toml(tmp_path, ""))
    assert settings.backend is None
    assert settings.deadline == 3600.0
    assert settings.budget.per_day is None


def test_arguments_beat_environment_beat_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'backend = "from-file"\ndeadline = 10\n[budget]\nper_day = "2.50"\n')
    from_file = load_settings(environ={}, config_file=path)
    assert (from_file.backend, from_file.deadline, from_file.budget.per_day) == ("from-file", 10.0, Decimal("2.50"))
    from_env = load_settings(environ={"VIDMATTE_BACKEND": "from-env"}, config_file=path)
    assert from_env.backend == "from-env"
    assert from_env.deadline == 10.0
    explicit = load_settings(environ={"VIDMATTE_BACKEND": "from-env"}, config_file=path, backend="explicit")
    assert explicit.backend == "explicit"
    assert explicit.source == str(path)


def test_the_working_directory_file_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDMATTE_CONFIG", raising=False)
    _toml(tmp_path, 'backend = "here"\n')
    assert load_settings(environ={}, cwd=tmp_path).backend == "here"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('backend = "x"\nbakend = "typo"\n', "bakend"),
        ('deadline = "soon"\n', "deadline"),
        ('[budget]\nper_day = "lots"\n', "per_day"),
        ("concurrency = 0\n", "concurrency"),
    ],
)
def test_a_wrong_key_or_value_is_one_line_naming_it(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(environ={}, config_file=_toml(tmp_path, text))
    message = str(info.value)
    assert names in message
    assert "\n" not in message


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(environ={}, config_file=_toml(tmp_path, "backend = \n"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(environ={}, config_file=tmp_path / "nope.toml")


def test_environment_values_are_validated_too() -> None:
    with pytest.raises(ConfigurationError, match="deadline"):
        load_settings(environ={"VIDMATTE_DEADLINE": "never"}, config_file=None, cwd=Path("/nonexistent"))


@attrs.frozen
class _PluginSettings:
    api_key: str = attrs.field(default="", repr=False)
    price: Decimal = Decimal("0.001")


def test_plugins_structure_their_sections_with_the_same_errors() -> None:
    parsed = structure_settings(_PluginSettings, {"api_key": "sk-secret-123", "price": "0.002"}, where="backends.x")
    assert parsed.price == Decimal("0.002")
    assert "sk-secret-123" not in repr(parsed)
    with pytest.raises(ConfigurationError, match=r"backends\.x.*prise|prise.*backends\.x"):
        structure_settings(_PluginSettings, {"prise": "1"}, where="backends.x")


def test_settings_repr_masks_secrets_in_plugin_sections(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        '[backends.gw]\napi_key = "sk-very-secret-1234"\nmodel = "m"\n[uploaders.http]\ntoken = "tok-secret-5678"\n',
    )
    settings = load_settings(environ={}, config_file=path)
    assert settings.backends["gw"]["api_key"] == "sk-very-secret-1234"
    text = repr(settings)
    assert "sk-very-secret-1234" not in text
    assert "tok-secret-5678" not in text
    assert "'model': 'm'" in text
