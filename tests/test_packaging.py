"""The installed wheel, not the source tree: built from exactly what the Dockerfile copies,
installed into a fresh virtualenv and run from another directory, also as a user without
privileges, as in the image."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.scenario import SCENARIO_DIR, load_scenario
from urbanwatch.migrate import load_migrations
from urbanwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PYTHON = f"python3.{sys.version_info.minor}"


def dockerfile_sources() -> list[str]:
    """The files and folders the image is built from (`COPY <sources...> <dest>`)."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources += line.split()[1:-1]
    return sources


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in dockerfile_sources():
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    flags = ["--no-deps", "--no-build-isolation", "--quiet", "--wheel-dir", str(dist)]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *flags, str(src)],
        check=True,
        capture_output=True,
    )
    (built,) = dist.glob("*.whl")
    return built


def base_python() -> str:
    """An interpreter of this Python version that every user can run, so that the venv also
    serves the unprivileged run (pyenv's lives under /root); else this one's own base."""
    for folder in ("/usr/bin", "/usr/local/bin"):
        candidate = Path(folder) / PYTHON
        if candidate.exists() and os.stat(candidate).st_mode & 0o001:
            return str(candidate)
    return sys._base_executable


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Iterator[Path]:
    """A fresh virtualenv holding the wheel. Its dependencies come from the project's venv
    through a .pth line: unlike a site-packages folder, a folder named in a .pth does not
    run the .pth files inside it, so the project's editable install of urbanwatch (a .pth
    hook) stays out. Made in a folder every user can read, for the unprivileged run."""
    folder = Path(tempfile.mkdtemp(prefix="urbanwatch-wheel-"))
    folder.chmod(0o755)
    env = folder / "venv"
    subprocess.run([base_python(), "-m", "venv", "--without-pip", str(env)], check=True)
    target = ["--python", str(env / "bin" / "python")]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            *target,
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    site = env / "lib" / PYTHON / "site-packages"
    (site / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    yield env
    shutil.rmtree(folder)


def installed_env(**settings: str) -> dict[str, str]:
    names = {name.upper() for name in Settings.model_fields} | {"PYTHONPATH", "XDG_STATE_HOME"}
    return {**{k: v for k, v in os.environ.items() if k not in names}, **settings}


def run(
    venv: Path, *argv: str, cwd: Path, env: dict[str, str], user: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(venv / "bin" / "urbanwatch"), *argv]
    if user:
        command = ["runuser", "--preserve-environment", "-u", user, "--", *command]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_the_wheel_carries_every_file_the_packages_need(wheel):
    """Every tracked file in a package folder (SQL migrations, scenarios, ...) is in it."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot list the tracked files")
    folders = [name for name in dockerfile_sources() if (ROOT / name).is_dir()]
    tracked = subprocess.run(
        ["git", "ls-files", *folders], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    assert any(name.endswith(".sql") for name in tracked)
    assert any(name.endswith(".yaml") for name in tracked)
    assert set(tracked) <= set(zipfile.ZipFile(wheel).namelist())


def test_the_installed_package_migrates_and_finds_its_scenarios(venv, empty_database, tmp_path):
    env = installed_env(DATABASE_URL=empty_database, URBANWATCH_STATE_DIR=str(tmp_path / "s"))
    code = "import urbanwatch, simulators; print(urbanwatch.__file__, simulators.__file__)"
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(path).is_relative_to(venv) for path in where), where

    ran = run(venv, "--help", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    assert all(f"    {name} " in ran.stdout for name in ("migrate", "ingest", "api", "simulate"))

    ran = run(venv, "migrate", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    names = ", ".join(f"{m.version:03d}_{m.name}" for m in load_migrations("plain"))
    assert f"applied {len(load_migrations('plain'))} migration(s): {names}" in ran.stdout

    ran = run(venv, "simulate", "run", "--scenario", "demo", "--dry-run", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    assert f"scenario: demo, {len(load_scenario('demo').events)} event(s)" in ran.stdout

    ran = run(venv, "simulate", "run", "--help", cwd=tmp_path, env=env)
    shipped = ", ".join(sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml")))
    assert f"({shipped})" in " ".join(ran.stdout.split())


def test_an_unprivileged_user_gets_files_in_their_home(venv):
    """As in the image: a user whose working directory is not theirs to write in."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to run a command as the nobody user")
    if run(venv, "--version", cwd=Path("/"), env=installed_env(), user="nobody").returncode:
        pytest.skip(f"the nobody user cannot run {base_python()}")
    nobody = pwd.getpwnam("nobody")
    home = Path(tempfile.mkdtemp(prefix="urbanwatch-home-"))
    try:
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
        argv = ("simulate", "fleet", "--no-import", "--scale", "50", "-q")
        ran = run(venv, *argv, cwd=Path("/"), env=installed_env(HOME=str(home)), user="nobody")
        assert ran.returncode == 0, ran.stderr
        state = home / ".local" / "state" / "urbanwatch"
        assert sorted(p.name for p in state.iterdir()) == [
            "fleet-50-1.csv",
            "truth-fleet-50-1.json",
        ]
        assert all(p.stat().st_uid == nobody.pw_uid for p in state.iterdir())

        ran = run(venv, *argv, cwd=Path("/"), env=installed_env(HOME="/"), user="nobody")
        assert (ran.returncode, ran.stderr) == (
            1,
            "urbanwatch: cannot create /.local/state/urbanwatch: permission denied "
            "(set URBANWATCH_STATE_DIR to a writable directory)\n",
        )
    finally:
        shutil.rmtree(home)
