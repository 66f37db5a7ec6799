"""Configuration: defaults, environment, checks, and the key kept out of sight."""

from __future__ import annotations

from decimal import Decimal

import pytest
from vidmatte_aigateway import AigatewaySettings, load_settings

from vidmatte import load_plugins
from vidmatte.errors import ConfigurationError

KEY = "sk-aig-supersecret-123456"


def test_defaults_and_env() -> None:
    settings = load_settings({}, {"AIGATEWAY_API_KEY": KEY})
    assert settings.base_url == "https://api.aigateway.sh"
    assert settings.media_url == "https://media.aigateway.sh"
    assert settings.model == "prama-labs/ben-v2-video"
    assert settings.input_field == "video_url"
    assert settings.price_per_second == Decimal("0.0010")
    assert settings.requests_per_minute == 600
    assert settings.min_poll_interval == 3.0
    assert KEY not in repr(settings)


def test_environment_wins_over_section() -> None:
    section = {"api_key": "sk-aig-from-config", "base_url": "http://127.0.0.1:9/"}
    settings = load_settings(section, {"AIGATEWAY_API_KEY": KEY, "AIGATEWAY_BASE_URL": "https://elsewhere.example"})
    assert settings.api_key == KEY
    assert settings.base_url == "https://elsewhere.example"
    assert load_settings(section, {}).api_key == "sk-aig-from-config"


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, {})
    assert "AIGATEWAY_API_KEY" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("url", ["http://api.aigateway.sh", "ftp://x", "http://10.0.0.1:8080"])
def test_plain_http_refused_off_loopback(url: str) -> None:
    with pytest.raises(ConfigurationError, match="https"):
        load_settings({"base_url": url}, {"AIGATEWAY_API_KEY": KEY})
    with pytest.raises(ConfigurationError, match="media_url"):
        load_settings({"media_url": url}, {"AIGATEWAY_API_KEY": KEY})


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"tag": "x" * 65}, "tag"),
        ({"tag": "équipe"}, "tag"),
        ({"price_per_second": "-1"}, "price_per_second"),
        ({"input_field": " "}, "input_field"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"colour": "blue"}, "colour"),
        ({"price_per_second": "cheap"}, "price_per_second"),
    ],
)
def test_bad_values_are_one_line_errors(settings: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(settings, {"AIGATEWAY_API_KEY": KEY})
    message = str(caught.value)
    assert needle in message
    assert "\n" not in message
    assert KEY not in message


def test_key_with_whitespace_is_refused_without_echo() -> None:
    bad = "sk-aig-abc\r\nX-Evil: 1"
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, {"AIGATEWAY_API_KEY": bad})
    assert bad not in str(caught.value)
    assert "abc" not in str(caught.value)


def test_tag_of_64_characters_is_fine() -> None:
    assert load_settings({"tag": "t" * 64}, {"AIGATEWAY_API_KEY": KEY}).tag == "t" * 64


def test_registered_through_the_entry_point() -> None:
    spec = load_plugins(environ={}).backend_spec("aigateway")
    assert spec.needs_key
    assert spec.secret_settings == ("api_key",)
    assert "AIGATEWAY_API_KEY" in spec.env_vars
    assert spec.distribution == "vidmatte-aigateway"
    assert spec.capabilities.min_poll_interval == 3.0


def test_settings_class_is_frozen() -> None:
    settings = AigatewaySettings()
    with pytest.raises(AttributeError):
        settings.model = "other"  # type: ignore[misc]
