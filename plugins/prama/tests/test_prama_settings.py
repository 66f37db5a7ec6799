"""Configuration: keys, hosts, one-line errors, and the key kept out of sight."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from vidmatte_prama import DEFAULT_PRICE_PER_IMAGE, KNOWN_BASE_URLS, PramaMatter, load_settings
from vidmatte_prama.plugin import create_matter, vidmatte_register_backends
from vidmatte_prama.testing import FAKE_KEY, context

from vidmatte import Cost
from vidmatte.errors import ConfigurationError
from vidmatte.testing import run_virtual

ENV = {"PRAMA_API_KEY": FAKE_KEY}


def test_defaults_and_key_from_environment() -> None:
    settings = load_settings({}, ENV)
    assert settings.api_key == FAKE_KEY
    assert settings.url == "https://api.backgrounderase.com"
    assert settings.price_per_image == DEFAULT_PRICE_PER_IMAGE == Decimal("0.01")
    assert settings.request_format == "multipart"
    assert settings.max_side == 1024
    assert FAKE_KEY not in repr(settings)


def test_missing_key_is_one_line_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, {})
    message = str(caught.value)
    assert "PRAMA_API_KEY" in message
    assert "\n" not in message


def test_factory_without_key_fails_the_same_way() -> None:
    with pytest.raises(ConfigurationError, match="PRAMA_API_KEY"):
        create_matter(context(env={}))


@pytest.mark.parametrize("url", KNOWN_BASE_URLS)
def test_both_documented_hosts(url: str) -> None:
    assert load_settings({"base_url": url + "/"}, ENV).url == url


def test_environment_beats_file_for_key_and_url() -> None:
    settings = load_settings(
        {"api_key": "from-file", "base_url": "https://api.backgrounderase.net"},
        {**ENV, "PRAMA_BASE_URL": "http://127.0.0.1:9999"},
    )
    assert settings.api_key == FAKE_KEY
    assert settings.url == "http://127.0.0.1:9999"


def test_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(FAKE_KEY + "\n")
    assert load_settings({"api_key_file": str(key_file)}, {}).api_key == FAKE_KEY


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"base_url": "http://api.backgrounderase.com"}, "base_url"),
        ({"size": "huge"}, "size"),
        ({"concurrency": 0}, "concurrency"),
        ({"requests_per_second": -1}, "requests_per_second"),
        ({"price_per_image": "-0.5"}, "price_per_image"),
        ({"jpeg_quality": 101}, "jpeg_quality"),
        ({"request_format": "xml"}, "request_format"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_wrong_values_are_one_line_naming_the_key(settings: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(settings, ENV)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)
    assert FAKE_KEY not in str(caught.value)


def test_loopback_http_allowed_for_the_emulator() -> None:
    assert load_settings({"base_url": "http://127.0.0.1:8787"}, ENV).url == "http://127.0.0.1:8787"


def test_matter_limits_cost_and_repr() -> None:
    matter = create_matter(
        context(settings={"concurrency": 3, "requests_per_second": 7.5, "price_per_image": "0.002", "max_side": 512})
    )
    try:
        assert isinstance(matter, PramaMatter)
        assert matter.limits.max_concurrency == 3
        assert matter.limits.requests_per_second == 7.5
        assert matter.limits.max_side == 512
        assert matter.limits.batch_size == 1
        cost = matter.cost_per_call()
        assert isinstance(cost, Cost)
        assert cost.amount == Decimal("0.002")
        assert FAKE_KEY not in repr(matter)
    finally:
        run_virtual(matter.aclose())


def test_registered_spec() -> None:
    (spec,) = vidmatte_register_backends()
    assert spec.name == "prama"
    assert spec.needs_key
    assert "PRAMA_API_KEY" in spec.env_vars
    assert spec.secret_settings == ("api_key",)
    assert spec.capabilities.failed_jobs_charged
