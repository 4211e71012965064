"""`pip install .` (not editable) ships what the CLI needs, and the set-up installs every offline model the defaults use.

A wheel is built from this checkout and installed (without dependencies: they are this environment's) into a
temporary folder that is put first on PYTHONPATH, and run from a folder outside the checkout, so nothing can come
from the source tree: the reproduction notebooks and the tutorials must come from the wheel's package data.
"""
import importlib.util, json, os, shutil, subprocess, sys, zipfile
from pathlib import Path

import pytest

from genenet.core import data_root
from genenet.model_files import OFFLINE_MODELS, offline_model_available

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group('install')   # one worker builds the wheel once


def _snapshot(dest:Path) -> Path:
    """Copy the checkout's files that git tracks or would track (symlinks kept) to `dest`: the wheel is built from what a clone holds, and no
    other test writing into the checkout while it builds (executed notebooks, a build/ folder) can race the build."""
    ls = subprocess.run(['git', '-C', str(ROOT), 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], capture_output=True, text=True)
    if ls.returncode == 0 and ls.stdout:
        for rel in filter(None, ls.stdout.split('\0')):
            src, dst = ROOT/rel, dest/rel
            if not src.is_symlink() and not src.exists(): continue   # deleted in the working tree
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink(): dst.symlink_to(os.readlink(src))
            else: shutil.copy2(src, dst)
    else:   # not a git checkout (an sdist, say): everything but environments and outputs
        shutil.copytree(ROOT, dest, symlinks=True, ignore=shutil.ignore_patterns(
            '.venv', '.git', '.ci', 'runs', 'build', 'dist', '_site', '*.egg-info', '__pycache__', '.scratch'))
    return dest


def _check(cmd, **kw):
    "Run `cmd`; on failure show its stderr (a bare CalledProcessError hides why pip failed)."
    cp = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert cp.returncode == 0, f'{" ".join(map(str, cmd))} failed ({cp.returncode}):\n{cp.stdout[-2000:]}\n{cp.stderr[-4000:]}'
    return cp


@pytest.fixture(scope='session')
def installed(tmp_path_factory):
    "(site folder, wheel path) of genenet installed from a wheel freshly built from a snapshot of the checkout."
    tmp = tmp_path_factory.mktemp('wheel')
    src = _snapshot(tmp/'src')
    _check([sys.executable, '-m', 'pip', 'wheel', str(src), '--no-deps', '--no-build-isolation', '-q',
            '-w', str(tmp/'dist')])
    whl, = (tmp/'dist').glob('genenet-*.whl')
    _check([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-compile', '-q', '--target',
            str(tmp/'site'), str(whl)])
    return tmp/'site', whl


def _run(site, code, cwd):
    env = {**os.environ, 'PYTHONPATH': str(site), 'GENENET_DATA': str(data_root())}
    cp = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert cp.returncode == 0, cp.stderr[-3000:]
    return cp.stdout


def test_wheel_ships_notebooks(installed):
    _, whl = installed
    names = zipfile.ZipFile(whl).namelist()
    repro = sorted(p.name for p in (ROOT/'nbs'/'repro').glob('*.ipynb'))
    shipped = sorted(Path(n).name for n in names if n.startswith('genenet/notebooks/repro/') and n.endswith('.ipynb'))
    assert shipped == repro, f'reproduction notebooks missing from the wheel: {sorted(set(repro) - set(shipped))}'
    assert any(n.startswith('genenet/assets/') for n in names), 'package assets missing from the wheel'
    tutorials = {p.name for p in (ROOT/'nbs').glob('*.ipynb')}
    assert tutorials <= {Path(n).name for n in names if n.startswith('genenet/notebooks/')}, 'tutorial notebooks missing'


def test_installed_package_finds_its_notebooks_outside_a_checkout(installed, tmp_path):
    site, _ = installed
    out = _run(site, 'import json, genenet, genenet.reproduce as r; '
                     'print(json.dumps(dict(file=genenet.__file__, nbs=sorted(r.list_notebooks()))))', cwd=tmp_path)
    info = json.loads(out.strip().splitlines()[-1])
    assert Path(info['file']).resolve().is_relative_to(Path(site).resolve()), f'imported {info["file"]}, not the wheel'
    assert info['nbs'] == sorted(p.stem for p in (ROOT/'nbs'/'repro').glob('*.ipynb'))


def test_installed_cli_version(installed, tmp_path):
    site, _ = installed
    out = _run(site, 'import sys; from genenet.cli import main; sys.argv = ["genenet", "--version"]; main()', cwd=tmp_path)
    import genenet
    assert genenet.__version__ in out


@pytest.mark.parametrize('name', sorted(OFFLINE_MODELS))
def test_setup_installed_offline_model(name):
    "Every offline model a default path loads is installed by the set-up (not an optional extra)."
    assert importlib.util.find_spec(OFFLINE_MODELS[name]['module']) is not None, \
        f"{OFFLINE_MODELS[name]['package']} is not installed: `make setup` must install it"
    assert offline_model_available(name)
