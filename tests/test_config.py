from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from oseod.config import port_range, DEMO_COLLECTION_ID, Config, ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parent.parent


def test_no_file_is_the_demo_setup() -> None:
    config = load_config(None)
    assert config.server.data_dir == "var/oseod"
    assert config.server.http == "tcp:8080:interface=127.0.0.1"
    assert config.server.ftp == "tcp:2121:interface=127.0.0.1"
    assert config.server.redis == ""
    (demo,) = config.collections
    assert demo.id == DEMO_COLLECTION_ID
    assert set(demo.order_types) == {"PRODUCT_ORDER", "SUBSCRIPTION_ORDER", "MASSIVE_ORDER"}
    assert demo.online_data_access == ("ftp", "http")
    assert demo.option[0].name == "format" and demo.option[0].choices == ("GeoTIFF", "NetCDF")
    assert config.orders.moderation == "auto"


def test_example_config_is_complete_and_equals_the_defaults() -> None:
    """etc/oseod.toml documents every key with its default value."""
    example = load_config(REPO / "etc" / "oseod.toml")
    assert example == Config()


def test_example_config_names_every_key() -> None:
    import tomllib

    import attrs

    from oseod.config import SECTIONS, CollectionConfig, OptionConfig

    document = tomllib.loads((REPO / "etc" / "oseod.toml").read_text())
    for name, cls in SECTIONS.items():
        assert set(document[name]) == {f.name for f in attrs.fields(cls)}, name
    collection = document["collection"][0]
    assert set(collection) == {f.name for f in attrs.fields(CollectionConfig)}
    assert set(collection["option"][0]) == {f.name for f in attrs.fields(OptionConfig)}


def test_overrides_win() -> None:
    config = load_config(None, [("data_dir", "/tmp/x"), ("http", "tcp:0")])
    assert config.server.data_dir == "/tmp/x" and config.server.http == "tcp:0"


@pytest.mark.parametrize(
    ("document", "key", "fragment"),
    [
        ({"orders": {"moderation": "maybe"}}, "orders.moderation", '"auto", "manual"'),
        ({"orders": {"max_items_per_order": 0}}, "orders.max_items_per_order", "at least 1"),
        ({"orders": {"max_items_per_order": "5"}}, "orders.max_items_per_order", "integer"),
        ({"orders": {"max_items_per_order": True}}, "orders.max_items_per_order", "integer"),
        ({"orders": {"colour": 1}}, "orders.colour", "unknown key"),
        ({"ordres": {}}, "ordres", "unknown"),
        ({"processing": {"retry_delay": -1}}, "processing.retry_delay", "at least 0"),
        ({"notifications": {"allowed_networks": ["10.0.0.0/33"]}}, "notifications.allowed_networks[0]", "CIDR"),
        ({"email": {"starttls": "yes"}}, "email.starttls", "optional"),
        ({"auth": {"anonymous_capabilities": "no"}}, "auth.anonymous_capabilities", "true or false"),
        ({"collection": [{"id": "a", "order_types": ["PIZZA_ORDER"]}]}, "collection[0].order_types[0]", "PIZZA"),
        ({"collection": [{"processor": "dummy"}]}, "collection[0].id", "required"),
        ({"collection": [{"id": "a"}, {"id": "a"}]}, "collection[1].id", "twice"),
        ({"collection": [{"id": "a", "option": [{"name": "f", "choices": []}]}]}, "collection[0].option[0].choices",
         "at least one"),
        ({"collection": [{"id": "a", "option": [{"name": "f", "choices": ["x"], "default": "y"}]}]},
         "collection[0].option[0].default", "not one of"),
        ({"collection": [{"id": "a", "bogus": 1}]}, "collection[0].bogus", "unknown key"),
        ({"collection": [{"id": "a", "option": [{"name": "two words", "choices": ["x"]}]}]},
         "collection[0].option[0].name", "XML name"),
        ({"collection": [{"id": "a", "online_data_access": []}]}, "collection[0].online_data_access", "at least one"),
        ({"collection": [{"id": "a", "scene_selection": [{"name": "cloud", "choices": []}]}]},
         "collection[0].scene_selection[0].choices", "at least one"),
        ({"collection": []}, "collection", "one or more"),
        ({"server": {"ftp_passive_ports": "60000"}}, "server.ftp_passive_ports", "FIRST-LAST"),
        ({"server": {"ftp_passive_ports": "60010-60000"}}, "server.ftp_passive_ports", "FIRST <= LAST"),
        ({"server": {"ftp_passive_ports": "80-90"}}, "server.ftp_passive_ports", "1024"),
        ({"server": {"ftp_public_host": "ftp.example.org"}}, "server.ftp_public_host", "IPv4 address"),
        ({"console": {"idle_minutes": 0}}, "console.idle_minutes", "at least 1"),
        ({"console": {"max_failures_per_user": 0}}, "console.max_failures_per_user", "at least 1"),
    ],
)
def test_bad_values_name_the_key(document: dict[str, object], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert caught.value.key == key
    assert fragment in str(caught.value)


def test_console_lockout_keys_are_deprecated_aliases_of_auth() -> None:
    old = parse_config({"console": {"max_failures_per_user": 3, "max_failures_per_address": 7,
                                    "window_minutes": 2.0}})
    assert (old.auth.max_failures_per_user, old.auth.max_failures_per_address, old.auth.lockout_minutes) == (3, 7, 2.0)
    both = parse_config({"console": {"max_failures_per_user": 3, "window_minutes": 2.0},
                         "auth": {"max_failures_per_user": 4}})
    assert (both.auth.max_failures_per_user, both.auth.max_failures_per_address, both.auth.lockout_minutes) == (
        4, 20, 2.0)
    assert parse_config({}).auth == Config().auth


def test_collections_replace_the_demo() -> None:
    config = parse_config({"collection": [{"id": "urn:x:one", "order_types": ["PRODUCT_ORDER"]}]})
    assert [c.id for c in config.collections] == ["urn:x:one"]


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[orders\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


@pytest.mark.parametrize(
    ("toml", "args", "expected"),
    [
        ('[orders]\nmoderation = "sometimes"\n', [], "orders.moderation"),
        ("", ["--http", "tcp:notaport"], "server.http"),
        ("", ["--redis", "mysql://x"], "server.redis"),
    ],
)
def test_twistd_stops_with_one_line_naming_the_key(tmp_path: Path, toml: str, args: list[str], expected: str) -> None:
    config = tmp_path / "oseod.toml"
    config.write_text(toml)
    twistd = Path(sys.executable).parent / "twistd"
    result = subprocess.run(
        [str(twistd), "-n", "--pidfile=", "--logfile=-", "oseod", "--config", str(config),
         "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert expected in lines[0] and lines[0].startswith("oseod: configuration error")
    assert not (tmp_path / "data").exists()


def test_ftp_passive_ports() -> None:
    assert port_range(parse_config({"server": {"ftp_passive_ports": " 60000 - 60002"}}).server.ftp_passive_ports) == (
        range(60000, 60003))
    assert port_range(parse_config({}).server.ftp_passive_ports) is None


def test_public_names_of_result_urls() -> None:
    from oseod.tap import result_urls

    listeners = {"http": "http://127.0.0.1:8080", "ftp": "ftp://127.0.0.1:2121"}
    own = result_urls(load_config(None).server, listeners.__getitem__)
    assert own("ftp", "12", "a b", "f.tif") == "ftp://127.0.0.1:2121/12/a%20b/f.tif"
    assert own("http", "12", "i", None) == "http://127.0.0.1:8080/results/12/i/"
    assert own("http", "12", None, "12-0.tar.gz") == "http://127.0.0.1:8080/results/12/12-0.tar.gz"  # a package
    assert own("ftp", "12", None, "12-0.zip") == "ftp://127.0.0.1:2121/12/12-0.zip"
    server = parse_config({"server": {"public_url": "https://eo.example.org/svc/oseo",
                                      "public_ftp_url": "ftp://ftp.example.org/"}}).server
    public = result_urls(server, listeners.__getitem__)
    assert public("ftp", "12", "i", "f") == "ftp://ftp.example.org/12/i/f"
    assert public("https", "12", "i", "f") == "https://eo.example.org/svc/results/12/i/f"
    for bad in ("ftp://ftp.example.org/pub", "http://x", "ftp://", "ftp://h:99999"):
        with pytest.raises(ConfigError, match="server.public_ftp_url"):
            parse_config({"server": {"public_ftp_url": bad}})
    with pytest.raises(ConfigError, match="server.public_url"):
        parse_config({"server": {"public_url": "eo.example.org/oseo"}})
