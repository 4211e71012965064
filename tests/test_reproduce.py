"genenet.reproduce without papermill: presets, the results schema, seeds, the summary, out_dir confinement."
import json, math, os

import numpy as np
import pandas as pd
import pytest

import genenet
from genenet.evaluate import evaluate_scores, evaluation
from genenet.reproduce import (settings, write_results, validate_results, check_results, confined, repro_dir,
                               list_notebooks, summary_rows, write_summary, SCHEMA)

QUICK, PAPER, SMOKE = dict(model='minilm', n=100), dict(model='biomedbert', n=5000), dict(model='tiny-random/bert', n=20)
PROTO = dict(negatives='uniform', split='random', np_ratio=1)


def _eval(seed=0, strength=1.5, task='ppi', proto=PROTO):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(60), np.zeros(60)]
    tab = evaluate_scores(y, {'grasp': strength*y + rng.normal(0, 1, 120)},
                          pd.DataFrame(dict(degree=0.5*y + rng.normal(0, 1, 120), random=rng.random(120))), n_boot=100)
    return evaluation(task, proto, tab, n=dict(train=480, test=120), seed=seed)


def _write(tmp_path, evs, **kw):
    args = dict(settings=settings(True, QUICK, PAPER), models=dict(backbone='minilm'), data=dict(pairs='biogrid'),
                paper={'grasp': {'roc_auc': 0.93, 'auprc': [0.91, 0.95]}}) | kw
    return write_results(tmp_path, evs, **args)


def test_settings_modes():
    assert settings(True, QUICK, PAPER)['mode'] == 'quick' and settings(False, QUICK, PAPER)['n'] == 5000
    s = settings(True, QUICK, PAPER, smoke=True, SMOKE=SMOKE)
    assert (s['mode'], s['model'], s['n'], s['quick'], s['smoke']) == ('smoke', 'tiny-random/bert', 20, False, True)
    assert settings(True, QUICK, PAPER, n=7, seed=None) == QUICK | dict(n=7, mode='quick', quick=True, smoke=False)
    with pytest.raises(ValueError, match='not PAPER settings'): settings(False, QUICK, PAPER, smoke=True, SMOKE=dict(steps=1))


def test_write_results_round_trip(tmp_path):
    (tmp_path/'fig.png').write_bytes(b'png')
    p = _write(tmp_path, [_eval()], figures=['fig.png'], notebook='grasp_ppi', reference='Doe 2025')
    res = json.loads(p.read_text())
    assert res['schema'] == SCHEMA and validate_results(res) == [] and check_results(p) == (res, None)
    assert res['paper']['grasp'] == {'roc_auc': 0.93, 'auprc': [0.91, 0.95]}, 'paper numbers stay numbers'
    ev = res['evaluations'][0]
    assert [r['method'] for r in ev['table']] == ['grasp', 'degree', 'random'] and ev['table'][0]['kind'] == 'method'
    assert ev['margin']['roc_auc']['best_control'] == 'degree' and ev['margin']['roc_auc']['value'] > 0
    assert res['seeds'] == [] and res['figures'] == ['fig.png']
    assert [f.name for f in tmp_path.iterdir()] and not [f for f in tmp_path.iterdir() if f.name.endswith('.tmp')]


def test_mean_and_sd_over_seeds(tmp_path):
    evs = [_eval(s) for s in (0, 1, 2)] + [_eval(0, task='ksr')]
    res = json.loads(_write(tmp_path, evs).read_text())
    (agg,) = res['seeds']  # ksr ran under one seed only: no aggregate for it
    assert agg['task'] == 'ppi' and agg['seeds'] == [0, 1, 2]
    vals = [e['table'][0]['roc_auc'] for e in evs[:3]]
    row = next(r for r in agg['table'] if r['method'] == 'grasp')
    assert math.isclose(row['roc_auc']['mean'], np.mean(vals)) and math.isclose(row['roc_auc']['sd'], np.std(vals, ddof=1))
    assert row['roc_auc']['n'] == 3
    margins = [e['margin']['roc_auc']['value'] for e in evs[:3]]
    assert math.isclose(agg['margin']['roc_auc']['mean'], np.mean(margins))


@pytest.mark.parametrize('kw,msg', [
    (dict(paper={'grasp': {'roc_auc': '0.923–0.937'}}), 'must be a number'),
    (dict(paper={'roc_auc': 0.93}), 'must be a {metric: number} dict'),
    (dict(settings=dict(quick=True)), 'settings must come from'),
    (dict(models={}, data={}), 'which models and/or data'),
    (dict(figures=['missing.png']), 'does not exist'),
])
def test_write_results_refuses_off_schema(tmp_path, kw, msg):
    with pytest.raises(ValueError, match=msg): _write(tmp_path, [_eval()], **kw)
    assert not (tmp_path/'results.json').exists()


def test_failed_write_keeps_the_previous_file(tmp_path):
    good = _write(tmp_path, [_eval()]).read_text()
    with pytest.raises(ValueError, match='distinct seed'): _write(tmp_path, [_eval(0), _eval(0)])
    assert (tmp_path/'results.json').read_text() == good


def test_validate_results_names_the_problems():
    old = dict(paper='GRASP 2025', headline={'auc': '0.9'}, settings=dict(quick=True))
    probs = validate_results(old)
    assert any('schema' in p for p in probs) and any('evaluations' in p for p in probs) and any('paper' in p for p in probs)
    assert validate_results([]) == ['results is not a JSON object']


def test_summary_shows_margin_paper_and_leak(tmp_path):
    ev = _eval()
    ev['leak_audit'] = dict(best=dict(kind='feature', name='integral component of membrane', score=0.94), warning=True)
    p = _write(tmp_path, [ev, _eval(strength=0.0, task='ksr')])
    rec = dict(name='grasp_ppi', paper='grasp', status='ok', seconds=12.0, error=None, results=json.loads(p.read_text()))
    rows = summary_rows([rec])
    ppi, ksr = rows
    assert ppi['paper_value'] == 0.93 and ppi['control'] == 'degree' and ppi['margin'] > 0 and ppi['beats'] is True
    assert math.isclose(ppi['margin'], ppi['ours']['value'] - ppi['control_value'])
    assert ksr['margin'] < 0.1 and ksr['beats'] is False, 'a method no better than its controls is shown as such'
    md, _ = write_summary([rec, dict(name='grasp_ksr', paper='grasp', status='failed', seconds=1.0, error='boom', executed=None)], tmp_path)
    text = md.read_text()
    assert "feature 'integral component of membrane': 0.940 ⚠" in text and '| 0.930 | degree ' in text and 'boom' in text
    assert '| ppi (seed 0) | uniform / random N:P 1 | roc_auc | grasp |' in text


def test_summary_uses_seed_aggregates(tmp_path):
    p = _write(tmp_path, [_eval(0), _eval(1)])
    rec = dict(name='grasp_ppi', paper='grasp', status='ok', seconds=1.0, error=None, results=json.loads(p.read_text()))
    (row,) = summary_rows([rec])
    assert row['ours']['n'] == 2 and row['margin']['n'] == 2 and row['task'] == 'ppi'


def test_confined(tmp_path):
    out = tmp_path/'runs'; out.mkdir()
    assert confined('.', out) == out.resolve() and confined(out/'a', out) == (out/'a').resolve()
    for bad in ('..', '../x', str(tmp_path), '/etc', 'a/../../x'):
        with pytest.raises(ValueError, match='outside the output folder'): confined(bad, out)
    (out/'link').symlink_to(tmp_path)
    with pytest.raises(ValueError, match='outside'): confined('link/x', out)


def test_repro_dir_lists_the_checkout_notebooks():
    d = repro_dir()
    assert d.is_dir() and d.parts[-1] == 'repro'
    pkg = os.path.realpath(os.path.join(os.path.dirname(genenet.__file__), 'notebooks', 'repro'))
    if os.path.isdir(pkg): assert os.path.realpath(d) == pkg, 'the packaged folder wins when it exists'
    assert all(p.suffix == '.ipynb' and not p.name.startswith('_') for p in list_notebooks().values())
