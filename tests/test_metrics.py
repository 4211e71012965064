"Property tests for genenet.metrics (hypothesis)."
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, assume
from sklearn import metrics as skm

from genenet.metrics import binary_metrics, multiclass_metrics, regression_metrics, summarise, mean_se, precision_at_k, kfold

FAST = settings(max_examples=60, deadline=None)

@st.composite
def labelled_scores(draw, min_size=2, max_size=40):
    "Binary labels with both classes present and finite float scores of the same length."
    n = draw(st.integers(min_size, max_size))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda v: 0 < sum(v) < len(v)))
    s = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), min_size=n, max_size=n))
    return np.array(y), np.array(s)

MONOTONE = [lambda s: 3*s + 7, lambda s: np.tanh(s/1e3), lambda s: 1/(1 + np.exp(-s/100)), lambda s: s**3]

@FAST
@given(labelled_scores(), st.sampled_from(range(len(MONOTONE))))
def test_auc_invariant_to_monotone_transforms(ys, i):
    y, s = ys
    t = MONOTONE[i](s)
    # a strictly increasing transform keeps the order; float rounding may merge near-ties, so require it kept them apart
    assume(len(np.unique(t)) == len(np.unique(s)))
    a, b = binary_metrics(y, s), binary_metrics(y, t)
    assert math.isclose(a['roc_auc'], b['roc_auc'], abs_tol=1e-12)
    assert math.isclose(a['auprc'], b['auprc'], abs_tol=1e-12)

@FAST
@given(labelled_scores())
def test_perfect_and_reversed_ranking(ys):
    y, s = ys
    perfect = y + np.linspace(0, 0.5, len(y))  # every positive above every negative, in any order within a class
    assert binary_metrics(y, perfect)['roc_auc'] == 1.0
    assert math.isclose(binary_metrics(y, perfect)['auprc'], 1.0)
    assert binary_metrics(y, -perfect)['roc_auc'] == 0.0
    assert precision_at_k(y, perfect) == 1.0

@FAST
@given(labelled_scores())
def test_auc_is_pairwise_win_rate_and_flips(ys):
    y, s = ys
    pos, neg = s[y == 1], s[y == 0]
    d = pos[:, None] - neg[None, :]
    expect = ((d > 0).sum() + 0.5*(d == 0).sum())/d.size
    auc = binary_metrics(y, s)['roc_auc']
    assert math.isclose(auc, expect, abs_tol=1e-12)
    assert math.isclose(binary_metrics(y, -s)['roc_auc'], 1 - auc, abs_tol=1e-12)

@FAST
@given(labelled_scores(), st.floats(-1e3, 1e3))
def test_threshold_metrics_match_sklearn(ys, thr):
    y, s = ys
    m = binary_metrics(y, s, threshold=thr)
    p = (s >= thr).astype(int)
    assert math.isclose(m['f1'], skm.f1_score(y, p, zero_division=0))
    assert math.isclose(m['accuracy'], (p == y).mean())
    tp, fp, fn = int(((p == 1) & (y == 1)).sum()), int(((p == 1) & (y == 0)).sum()), int(((p == 0) & (y == 1)).sum())
    assert m['precision'] == (tp/(tp + fp) if tp + fp else 0.0)  # counted by hand, not by sklearn
    assert m['recall'] == tp/(tp + fn)
    assert m['n'] == len(y) and m['n_pos'] == y.sum()

@FAST
@given(st.integers(2, 5), st.integers(0, 2**31 - 1))
def test_multiclass_auc_matches_sklearn_and_is_permutation_equivariant(k, seed):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(k), rng.integers(0, k, 30)])  # every class present
    P = rng.dirichlet(np.ones(k), len(y))
    m = multiclass_metrics(y, P)
    # rows sum to 1, so for k=2 the two one-vs-rest AUCs coincide with the binary AUC of column 1
    ref = skm.roc_auc_score(y, P, multi_class='ovr', average='macro') if k > 2 else skm.roc_auc_score(y, P[:, 1])
    assert math.isclose(m['auc_macro_ovr'], ref, abs_tol=1e-9)
    perm = rng.permutation(k)  # relabelling classes (and permuting columns to match) changes nothing
    inv = np.argsort(perm)
    m2 = multiclass_metrics(inv[y], P[:, perm])
    assert math.isclose(m['auc_macro_ovr'], m2['auc_macro_ovr']) and math.isclose(m['f1_macro'], m2['f1_macro'])

@FAST
@given(st.lists(st.floats(-100, 100), min_size=3, max_size=30), st.floats(0.1, 10), st.floats(-5, 5))
def test_regression_affine_prediction(y, a, b):
    y = np.array(y)
    p = a*y + b
    assume(np.ptp(y) > 1e-3 and len(np.unique(p)) == len(np.unique(y)))  # rounding may merge tiny values into ties
    m = regression_metrics(y, p)
    assert math.isclose(m['pearson'], 1, abs_tol=1e-6) and math.isclose(m['spearman'], 1, abs_tol=1e-6)
    assert math.isclose(regression_metrics(y, y)['mse'], 0, abs_tol=1e-12)

@FAST
@given(st.lists(st.floats(-10, 10), min_size=2, max_size=20))
def test_mean_se_and_summarise_agree(x):
    m, h = mean_se(x)
    s = summarise([{'v': v} for v in x])
    assert math.isclose(s.v_mean[0], m, abs_tol=1e-9)
    assert math.isclose(h, 1.96*s.v_sd[0]/math.sqrt(len(x)), rel_tol=1e-9, abs_tol=1e-12)

@pytest.mark.parametrize('bad,msg', [(([0, 1], [np.nan, .2]), 'NaN'), (([1, 1], [.1, .2]), 'single class'),
                                     (([0, 1], [.1]), 'length'), (([0, 2], [.1, .2]), 'binary')])
def test_binary_errors(bad, msg):
    with pytest.raises(ValueError, match=msg): binary_metrics(*bad)


def test_precision_recall_hand_computed():
    # scores 0.9, 0.8, 0.4, 0.35, 0.1 with labels 1, 0, 1, 1, 0: at 0.5 we call 0.9 (TP) and 0.8 (FP) positive
    m = binary_metrics([1, 0, 1, 1, 0], [0.9, 0.8, 0.4, 0.35, 0.1])
    assert (m['precision'], m['recall']) == (0.5, 1/3)
    m = binary_metrics([1, 0, 1, 1, 0], [0.9, 0.8, 0.4, 0.35, 0.1], threshold=0.3)  # 4 called: 3 TP, 1 FP
    assert (m['precision'], m['recall']) == (0.75, 1.0)
    assert binary_metrics([1, 0], [0.1, 0.2], threshold=0.9)['precision'] == 0.0  # nothing called: 0 by convention


@FAST
@given(st.integers(20, 200), st.integers(2, 6), st.integers(0, 1000), st.booleans())
def test_kfold_partitions_and_stratifies(n, k, seed, with_labels):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(k, int), np.ones(k, int), rng.integers(0, 2, n)]
    folds = kfold(y if with_labels else len(y), k=k, seed=seed)
    assert len(folds) == k
    tests = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(tests), np.arange(len(y))), 'test folds partition the items'
    for tr, te in folds:
        assert not np.intersect1d(tr, te).size and len(tr) + len(te) == len(y)
        if with_labels:  # stratified: each fold's positive count is within one of its share
            assert abs(y[te].sum() - y.sum()*len(te)/len(y)) <= 1 + 1e-9


def test_kfold_groups_never_straddle():
    g = np.repeat(np.arange(12), 3)
    y = np.tile([0, 1, 1], 12)
    for tr, te in kfold(y, k=4, groups=g, seed=2):
        assert not set(g[tr]) & set(g[te])


@pytest.mark.parametrize('args,msg', [((np.array([0, 0, 0, 1]), 3), 'fewer members'), ((3, 4), 'cannot make'),
                                      ((10, 1), 'at least 2'), ((np.zeros((3, 2)), 2), '1-D')])
def test_kfold_errors(args, msg):
    with pytest.raises(ValueError, match=msg): kfold(*args)
