"""Every reproduction notebook runs end to end in its quick setting and writes a valid results.json.

This is the CI check that the papermill notebooks under nbs/repro/ still work; `genenet reproduce --quick`
(the README's main job) runs the same notebooks through the same `run_notebooks`.
"""
import json, math
import pytest

from genenet.reproduce import list_notebooks, run_notebooks

NOTEBOOKS = sorted(list_notebooks())


def _finite_numbers(d):
    return [v for v in d.values() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def test_there_are_repro_notebooks():
    assert NOTEBOOKS, 'nbs/repro/ holds no reproduction notebooks'


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_quick_notebook_runs(name, root, tmp_path):
    df = run_notebooks([name], quick=True, out=tmp_path, progress=False)
    rec = df.iloc[0]
    assert rec.status == 'ok', f'{name} {rec.status}: {rec.error} (executed copy: {rec.executed})'
    res = json.loads((tmp_path/name/'results.json').read_text())
    assert res['settings']['quick'] is True
    assert res['settings'].get('model') or res['settings'].get('data'), 'results must say which model/data produced them'
    assert _finite_numbers(res['headline']), f'{name} reports no finite headline metric: {res["headline"]}'
    figs = list((tmp_path/name).glob('*.png')) + list((tmp_path/name).glob('*.svg'))
    assert figs, f'{name} saved no figure'
    assert (tmp_path/'summary.md').exists() and (tmp_path/'summary.json').exists()
