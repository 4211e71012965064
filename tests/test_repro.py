"""Every reproduction notebook runs end to end, in its quick setting and in smoke mode, and writes a valid results.json.

This is the CI check that the papermill notebooks (`genenet.reproduce.list_notebooks()`) still work; `genenet reproduce
--quick` / `--smoke` (the README's main job and the paper-path check) run the same notebooks through the same
`run_notebooks`. Quick mode runs the offline presets; smoke mode runs the *paper* code path on tiny random-weight
models, a few pairs and one step, on CPU. A notebook that fails either is a failure here, never a skip.
"""
import json

import pytest

from genenet.reproduce import list_notebooks, run_notebooks, validate_results

NOTEBOOKS = sorted(list_notebooks())


def test_there_are_repro_notebooks():
    assert NOTEBOOKS, 'the reproduction notebook folder holds no notebooks'


def _run(name, tmp_path, **kw):
    df = run_notebooks([name], out=tmp_path, progress=False, **kw)
    rec = df.iloc[0]
    assert rec.status == 'ok', f'{name} {rec.status}: {rec.error} (executed copy: {rec.executed})'
    res = json.loads((tmp_path/name/'results.json').read_text())
    assert validate_results(res) == [], validate_results(res)
    for e in res['evaluations']:  # every number beside its controls (or, for node tasks, a leak audit)
        assert any(r['kind'] == 'control' for r in e['table']) or e.get('leak_audit'), \
            f"{name}: evaluation {e['task']} ({e['protocol']}) reports no control and no leak audit"
    assert (tmp_path/'summary.md').exists() and (tmp_path/'summary.json').exists()
    return res


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_quick_notebook_runs(name, root, tmp_path):
    res = _run(name, tmp_path, quick=True)
    assert res['settings']['mode'] == 'quick'
    assert res['figures'] and all((tmp_path/name/f).exists() for f in res['figures']), f'{name} saved no figure'


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_smoke_notebook_runs_the_paper_path(name, root, tmp_path):
    res = _run(name, tmp_path, smoke=True)
    assert res['settings']['mode'] == 'smoke' and res['settings']['smoke'] is True
