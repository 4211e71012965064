"""The installed `genenet` command, run as a user runs it (subprocesses of the venv's console script).

Usage errors are one line on stderr with exit status 2, never a traceback; `reproduce` runs notebooks in smoke mode
and summarises each method beside its best control; nothing is written outside `--out`; `data fetch` fails cleanly
offline."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import genenet
from genenet import catalog as gcat

EXE = Path(sys.executable).parent/'genenet'
GENENET = str(EXE) if EXE.exists() else shutil.which('genenet')
pytestmark = pytest.mark.skipif(GENENET is None, reason='the genenet console script is not installed')  # reported, not silent


def genenet_cli(*args, env=None, cwd=None, timeout=600):
    return subprocess.run([GENENET, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})})


def _one_line_error(cp, rc=2, contains='', progress_lines=0):
    "Exit status `rc`, no traceback, and the error as the last stderr line (after at most `progress_lines` of logging)."
    assert cp.returncode == rc, (cp.returncode, cp.stdout[-1000:], cp.stderr[-2000:])
    lines = cp.stderr.splitlines()
    assert 'Traceback' not in cp.stderr and 1 <= len(lines) <= 1 + progress_lines and lines[-1].startswith('genenet: '), cp.stderr
    assert contains in lines[-1], cp.stderr


def test_version():
    cp = genenet_cli('--version')
    assert cp.returncode == 0 and cp.stdout.strip() == f'genenet {genenet.__version__}'


TOY = """import numpy as np, pandas as pd
from genenet.evaluate import evaluate_scores, evaluation
from genenet.reproduce import settings, write_results
S = settings(quick, dict(n=200, strength=2.0), dict(n=4000, strength=2.0), smoke=smoke, SMOKE=dict(n=40))
y = np.r_[np.ones(S['n']//2), np.zeros(S['n']//2)]; rng = np.random.default_rng(seed)
tab = evaluate_scores(y, {'toy': S['strength']*y + rng.normal(0, 1, len(y))}, pd.DataFrame({'random': rng.random(len(y))}), n_boot=100)
write_results(out_dir, [evaluation('toy', dict(negatives='uniform', split='random', np_ratio=1), tab, n=dict(train=0, test=len(y)), seed=seed)],
              S, models=dict(), data=dict(pairs='toy'), paper={'toy': {'roc_auc': 0.9}}, notebook='toy_run')"""


@pytest.fixture
def toy_nbs(tmp_path):
    d = tmp_path/'nbs'; d.mkdir()
    nb = new_notebook(cells=[new_code_cell('quick = True\nsmoke = False\nout_dir = "."\nseed = 0', metadata={'tags': ['parameters']}),
                             new_code_cell(TOY)])
    nb.metadata['kernelspec'] = dict(name='python3', display_name='Python 3', language='python')
    nbformat.write(nb, d/'toy_run.ipynb')
    return d


def test_reproduce_smoke_summarises_margins_and_usage_errors(toy_nbs, tmp_path):
    out = tmp_path/'runs'
    cp = genenet_cli('reproduce', '--smoke', '--nb-dir', toy_nbs, '--out', out, '--set', 'seed=4')
    assert cp.returncode == 0, cp.stdout[-2000:] + cp.stderr[-2000:]
    res = json.loads((out/'toy_run'/'results.json').read_text())
    assert res['settings']['mode'] == 'smoke' and res['settings']['n'] == 40 and res['evaluations'][0]['seed'] == 4
    row = next(l for l in cp.stdout.splitlines() if l.startswith('| toy_run | ok |'))
    assert '| toy (seed 4) | uniform / random N:P 1 | roc_auc | toy |' in row and '| 0.900 | random ' in row and ' ✓ |' in row
    # an unknown name: one line, exit 2, nothing run
    _one_line_error(genenet_cli('reproduce', 'no_such_nb', '--nb-dir', toy_nbs, '--out', out), contains="no reproduction notebook matches 'no_such_nb'")
    # out_dir outside --out: refused before anything runs, nothing outside is written or deleted
    victim = tmp_path/'victim'; victim.mkdir(); (victim/'results.json').write_text('keep')
    cp = genenet_cli('reproduce', '--quick', '--nb-dir', toy_nbs, '--out', out, '--set', f'out_dir={victim}')
    _one_line_error(cp, contains='outside the output folder')
    assert (victim/'results.json').read_text() == 'keep' and sorted(p.name for p in victim.iterdir()) == ['results.json']


def test_data_list_and_verify(root):
    cp = genenet_cli('data', 'list')
    assert cp.returncode == 0 and cp.stdout.split()[:3] == ['name', 'kind', 'status'], cp.stderr[-2000:]
    assert sum(1 for l in cp.stdout.splitlines()[1:-1]) == len(gcat.REGISTRY)
    cp = genenet_cli('data', 'verify')
    assert cp.returncode == 0, 'the complete mirror verifies: ' + cp.stdout[-3000:]
    _one_line_error(genenet_cli('data', 'verify', 'no-such-dataset'), contains="no data matches 'no-such-dataset'")


def test_data_fetch_offline_fails_cleanly(tmp_path):
    missing = gcat.verify_all().query("status == 'not mirrored (optional)'")
    if missing.empty: pytest.skip('every registered dataset is mirrored or cached here: nothing to fetch')
    name = missing.name.iloc[0]
    dead = 'http://127.0.0.1:9'  # nothing listens: every download fails at once, as offline
    cp = genenet_cli('data', 'fetch', name, env=dict(HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead,
                                                       GENENET_CACHE=str(tmp_path/'cache')), timeout=300)
    _one_line_error(cp, rc=1, contains=name, progress_lines=1)  # pooch logs 'Downloading data from ...'
    _one_line_error(genenet_cli('data', 'fetch'), contains='at least one dataset name')


def test_models_list():
    cp = genenet_cli('models', 'list')
    assert cp.returncode == 0 and 'smollm2-135m' in cp.stdout and 'minilm' in cp.stdout, cp.stderr[-2000:]


def test_docs_is_a_thin_call():
    cp = genenet_cli('docs', '--help')
    assert cp.returncode == 0 and '--no-execute' in cp.stdout and '--runs' in cp.stdout


def test_parallel_notebooks_share_the_cores():
    "Each of `jobs` worker processes gets cores // jobs threads (inherited by its kernels); a user's setting wins."
    import os, subprocess, sys
    code = 'import os; from genenet.reproduce import share_cores; print(share_cores(2), os.environ["MKL_NUM_THREADS"])'
    env = {k: v for k, v in os.environ.items() if not k.endswith('_NUM_THREADS')}
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=True).stdout.split()
    n = max(1, (os.cpu_count() or 1) // 2)
    assert out == [str(n), str(n)]
    out = subprocess.run([sys.executable, '-c', code], env={**env, 'OMP_NUM_THREADS': '3'}, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == '3' and out[1] == str(n)
