"""
Packaging: what ``pip install .`` of this checkout ships, and that twistd finds it.

The classic trap with twistd plugins: everything works from a checkout (or an
editable install, where the checkout root is on sys.path), but a plain install
either leaves ``twisted/plugins/oseod_plugin.py`` out of the wheel, or ships a
``twisted/__init__.py`` that shadows Twisted itself. So the slow tests below build
a wheel from a copy of the checkout, install it NON-editably into a fresh venv,
and run that venv's ``twistd``, ``python`` and ``oseoctl`` from a directory
outside the checkout.

No network: the wheel is built with the setuptools of the running (test) venv,
and the fresh venv reaches the already-installed dependencies through a ``.pth``
file naming the test venv's site-packages. A directory added by a ``.pth`` line
is not itself scanned for ``.pth`` files, so the editable install of the
checkout (a ``.pth`` in that site-packages) does not leak into the fresh venv;
the tests check that ``oseod`` is imported from the fresh venv, not the checkout.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
SETUP_CFG = REPO / "setup.cfg"
CONSTRAINTS = REPO / "constraints.txt"
PLUGIN = REPO / "twisted" / "plugins" / "oseod_plugin.py"
PLUGIN_IN_WHEEL = "twisted/plugins/oseod_plugin.py"

# Data files planted in the copy of the checkout before building, standing for
# package data that does not exist yet (a web console's static tree, templates).
# ".woff2" is in no pattern of setup.cfg: only the static-tree rule catches it.
PLANTED_DATA = (
    "oseod/_packaging_probe/static/css/site.css",
    "oseod/_packaging_probe/static/fonts/icons.woff2",
    "oseod/_packaging_probe/templates/page.html",
)

# Leftovers that may sit in a working tree but must never be copied or shipped.
IGNORED_IN_COPY = (".git", ".venv*", ".tox", "build", "dist", "var", "__pycache__", "*.egg-info",
                   "*.pyc", "dropin.cache", ".mypy_cache", ".pytest_cache")


def _run(argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail the test showing its whole output."""
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, timeout=timeout,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"{argv} exited {result.returncode}\n--- stdout\n{result.stdout}"
                    f"\n--- stderr\n{result.stderr}")
    return result


def _clean_env() -> dict[str, str]:
    """The caller's environment minus anything that would put other code on sys.path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")}
    env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def _checkout_files() -> list[str]:
    """Files of the checkout that git would commit (tracked or not yet, never ignored)."""
    if shutil.which("git") and (REPO / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=REPO, capture_output=True)
        if listed.returncode == 0:
            names = [n for n in listed.stdout.decode().split("\0") if n]
            return [n for n in names if (REPO / n).is_file()]
    # Not a (usable) git checkout, e.g. an unpacked sdist: the tree minus known debris.
    ignore = shutil.ignore_patterns(*IGNORED_IN_COPY)
    names = []
    for directory, subdirs, files in os.walk(REPO):
        subdirs[:] = [d for d in subdirs if d not in ignore(directory, subdirs)]
        kept = set(files) - ignore(directory, files)
        names += [os.path.relpath(os.path.join(directory, f), REPO) for f in sorted(kept)]
    return names


# --- fast checks -------------------------------------------------------------------


def test_no_init_in_twisted_plugin_dirs() -> None:
    # twisted/ and twisted/plugins/ must stay namespace portions: an __init__.py
    # here (or in a wheel) would shadow the real Twisted package.
    assert PLUGIN.is_file()
    assert not (REPO / "twisted" / "__init__.py").exists()
    assert not (REPO / "twisted" / "plugins" / "__init__.py").exists()


def test_plugin_names_tap_module_by_string(tmp_path: Path) -> None:
    # Loading the plugin must not import oseod (twistd imports every plugin module
    # each time it lists plugins): check in a clean interpreter.
    code = (
        "import runpy, sys\n"
        f"ns = runpy.run_path({str(PLUGIN)!r})\n"
        "from twisted.application.service import IServiceMaker\n"
        "makers = [v for v in ns.values() if IServiceMaker.providedBy(v)]\n"
        "assert len(makers) == 1, makers\n"
        "m = makers[0]\n"
        "print(m.tapname, m.module, bool(m.description))\n"
        "print(sorted(n for n in sys.modules if n == 'oseod' or n.startswith('oseod.')))\n"
    )
    out = _run([sys.executable, "-c", code], cwd=tmp_path, env=_clean_env()).stdout.splitlines()
    assert out == ["oseod oseod.tap True", "[]"]


def test_twistd_finds_plugin_in_this_environment() -> None:
    # The dev venv (compat editable install) must see the checkout's plugin: this is
    # what `make run` relies on.
    from twisted.application.service import IServiceMaker, ServiceMaker
    from twisted.plugin import getPlugins

    makers = [m for m in getPlugins(IServiceMaker) if m.tapname == "oseod"]
    assert len(makers) == 1 and isinstance(makers[0], ServiceMaker)
    assert makers[0].module == "oseod.tap"


def _setup_requirements() -> list[Requirement]:
    parser = configparser.ConfigParser()
    parser.read(SETUP_CFG)
    lines = parser["options"]["install_requires"].splitlines()
    lines += parser["options.extras_require"]["test"].splitlines()
    requirements = [Requirement(line) for line in lines if line.strip()]
    return [r for r in requirements if r.marker is None or r.marker.evaluate()]


def _constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version.strip(), f"constraints.txt: not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_constraints_pin_every_requirement_within_its_range() -> None:
    pins = _constraints()
    for requirement in _setup_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is in setup.cfg but not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pins[name]}, outside setup.cfg's {requirement}")


def test_constraints_pin_the_whole_installed_dependency_tree() -> None:
    # Walk the dependencies actually installed here, starting from setup.cfg's list:
    # every one of them must be pinned, or `make test` on a new machine could get
    # a different version than the one that was tested.
    pins = _constraints()
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in _setup_requirements()]
    unpinned = []
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        if name not in pins:
            unpinned.append(requirement.name)
        try:
            dist = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed here; the range test above still covers it
        for line in dist.requires or []:
            sub = Requirement(line)
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in environments):
                todo.append((sub, frozenset(sub.extras)))
    assert not unpinned, f"installed but not pinned in constraints.txt: {sorted(unpinned)}"


# --- slow: build, install into a fresh venv, run ----------------------------------------


@attrs.frozen
class FreshInstall:
    wheel: Path
    venv: Path
    site_packages: Path
    elsewhere: Path  # an empty directory outside the checkout, used as cwd
    env: dict[str, str]

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def run(self, *argv: str | Path) -> subprocess.CompletedProcess[str]:
        return _run(list(argv), cwd=self.elsewhere, env=self.env)


def _write_twistd_launcher(fresh_venv: Path) -> None:
    # Twisted itself lives in the test venv, so the fresh venv has no twistd
    # script: write the one pip would generate from Twisted's own entry point.
    (entry,) = importlib.metadata.entry_points(group="console_scripts", name="twistd")
    module, _, func = entry.value.partition(":")
    script = fresh_venv / "bin" / "twistd"
    script.write_text(f"#!{fresh_venv / 'bin' / 'python'}\n"
                      f"import sys\nfrom {module} import {func}\nsys.exit({func}())\n")
    script.chmod(0o755)


@pytest.fixture(scope="module")
def fresh_install() -> Iterator[FreshInstall]:
    if importlib.util.find_spec("setuptools") is None:
        pytest.fail("setuptools is missing from the test venv (it is in the [test] extra)")
    top = Path(tempfile.mkdtemp(prefix="oseod-packaging-"))
    try:
        # 1. Copy the checkout: building in place would leave build/ and
        #    oseod.egg-info/ in it. Then plant stand-ins for future package data.
        source = top / "src"
        for name in _checkout_files():
            target = source / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target)
        for name in PLANTED_DATA:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_text("planted by tests/test_packaging.py\n")
        (source / "oseod" / "_packaging_probe" / "__init__.py").write_text("")

        # 2. Build the wheel with this venv's setuptools, offline.
        env = _clean_env()
        dist = top / "dist"
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
              "--no-index", "--wheel-dir", dist, source], cwd=top, env=env)
        (wheel,) = dist.glob("oseod-*.whl")

        # 3. A fresh venv, and a plain (non-editable) install of the wheel into it.
        #    `pip --python` runs this pip for the other interpreter: no pip needed there.
        fresh = top / "venv"
        venv.EnvBuilder(with_pip=False, symlinks=True).create(fresh)
        python = fresh / "bin" / "python"
        _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
              wheel], cwd=top, env=env)
        purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       cwd=top, env=env).stdout.strip()
        site_packages = Path(purelib)

        # 4. Only now (pip above must not see the test venv's editable oseod) give
        #    the fresh venv the dependencies, and a twistd script.
        ours = sysconfig.get_paths()
        deps = dict.fromkeys([ours["purelib"], ours["platlib"]])  # ordered, deduplicated
        (site_packages / "_oseod_test_dependencies.pth").write_text("".join(f"{d}\n" for d in deps))
        _write_twistd_launcher(fresh)

        elsewhere = top / "elsewhere"
        elsewhere.mkdir()
        yield FreshInstall(wheel=wheel, venv=fresh, site_packages=site_packages,
                           elsewhere=elsewhere, env=env)
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.slow
def test_wheel_ships_oseod_and_the_plugin_only(fresh_install: FreshInstall) -> None:
    names = zipfile.ZipFile(fresh_install.wheel).namelist()
    dist_info = re.compile(r"oseod-[^/]+\.dist-info/")
    strays = [n for n in names
              if not (n.startswith("oseod/") or n == PLUGIN_IN_WHEEL or dist_info.match(n))]
    assert strays == [], "the wheel ships files outside oseod/ and the twistd plugin"
    assert PLUGIN_IN_WHEEL in names
    assert "oseod/py.typed" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", "dropin.cache"))]


@pytest.mark.slow
def test_wheel_ships_every_file_of_the_package(fresh_install: FreshInstall) -> None:
    # Every file under oseod/ in the checkout, .py or not, plus the planted data
    # files standing for future static trees and templates.
    names = set(zipfile.ZipFile(fresh_install.wheel).namelist())
    expected = {n for n in _checkout_files() if n.startswith("oseod/")} | set(PLANTED_DATA)
    missing = sorted(expected - names)
    assert missing == [], ("files of the oseod package missing from the wheel; add a pattern "
                           "to [options.package_data] in setup.cfg")


@pytest.mark.slow
def test_metadata_declares_console_script_and_dependencies(fresh_install: FreshInstall) -> None:
    with zipfile.ZipFile(fresh_install.wheel) as wheel:
        (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
        assert re.search(r"^oseoctl\s*=\s*oseod\.admin\.ctl:main$",
                         wheel.read(entry_points).decode(), re.M)
        (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        requires = [Requirement(line.split(":", 1)[1])
                    for line in wheel.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    klein = [r for r in requires if canonicalize_name(r.name) == "klein"]
    assert klein and not klein[0].specifier.contains("23.10")  # Werkzeug-3 breakage


@pytest.mark.slow
def test_installed_files_contain_plugin_and_no_twisted_init(fresh_install: FreshInstall) -> None:
    (record,) = fresh_install.site_packages.glob("oseod-*.dist-info/RECORD")
    installed = {line.split(",", 1)[0] for line in record.read_text().splitlines()}
    assert PLUGIN_IN_WHEEL in installed
    assert "twisted/__init__.py" not in installed
    assert "twisted/plugins/__init__.py" not in installed
    # Twisted itself is not installed in the fresh venv, so anything here is ours.
    assert not (fresh_install.site_packages / "twisted" / "__init__.py").exists()
    assert not (fresh_install.site_packages / "twisted" / "plugins" / "__init__.py").exists()
    assert (fresh_install.site_packages / PLUGIN_IN_WHEEL).is_file()


@pytest.mark.slow
def test_imports_come_from_the_fresh_venv(fresh_install: FreshInstall) -> None:
    out = fresh_install.run(
        fresh_install.bin("python"), "-c",
        "import oseod, twisted, twisted.plugins.oseod_plugin as p\n"
        "print(oseod.__file__); print(p.__file__); print(twisted.__file__)",
    ).stdout.splitlines()
    oseod_file, plugin_file, twisted_file = (Path(line).resolve() for line in out)
    venv_dir = fresh_install.venv.resolve()
    assert oseod_file.is_relative_to(venv_dir), f"oseod imported from {oseod_file}, not the fresh venv"
    assert plugin_file.is_relative_to(venv_dir), f"plugin imported from {plugin_file}"
    assert not oseod_file.is_relative_to(REPO)
    # ... while Twisted itself is the real one, not shadowed by a stray twisted/__init__.py.
    assert not twisted_file.is_relative_to(venv_dir)


@pytest.mark.slow
def test_twistd_lists_oseod(fresh_install: FreshInstall) -> None:
    out = fresh_install.run(fresh_install.bin("twistd"), "--help").stdout
    assert re.search(r"^\s+oseod\s+\S", out, re.M), out


@pytest.mark.slow
def test_twistd_oseod_help(fresh_install: FreshInstall) -> None:
    if not (REPO / "oseod" / "tap.py").exists():
        pytest.skip("oseod/tap.py does not exist yet")
    out = fresh_install.run(fresh_install.bin("twistd"), "oseod", "--help").stdout
    assert "--data-dir" in out, out


@pytest.mark.slow
def test_oseoctl_help(fresh_install: FreshInstall) -> None:
    if not (REPO / "oseod" / "admin" / "ctl.py").exists():
        pytest.skip("oseod/admin/ctl.py does not exist yet")
    script = fresh_install.bin("oseoctl")
    assert script.read_text().startswith(f"#!{fresh_install.bin('python')}")
    out = fresh_install.run(script, "--help").stdout
    assert "usage" in out.lower(), out
