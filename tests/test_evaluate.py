"genenet.evaluate: controls catch planted shortcuts, leak audits catch planted leaks, metrics and intervals are exact."
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from sklearn import metrics as skm

from genenet.evaluate import pair_controls, evaluate_scores, margin, leak_audit, evaluation, plot_evaluation
from genenet.genes import balanced_pairs


def _hub_positives(n_genes=400, n_pos=1500, seed=0):
    "Undirected positives whose endpoints follow a heavy-tailed degree distribution (hubs), like a PPI set."
    rng = np.random.default_rng(seed)
    genes = np.array([f'G{i}' for i in range(n_genes)])
    w = 1/np.arange(1, n_genes + 1)**0.9; w /= w.sum()
    a, b = rng.choice(n_genes, n_pos, p=w), rng.choice(n_genes, n_pos, p=w)
    keep = a != b
    pos = pd.DataFrame(dict(gene_a=genes[a[keep]], gene_b=genes[b[keep]]))
    key = pos.apply(lambda r: tuple(sorted((r.gene_a, r.gene_b))), axis=1)
    return pos[~key.duplicated()].reset_index(drop=True), genes


def _degree_auc(negatives, seed=0):
    pos, genes = _hub_positives(seed=seed)
    pairs = balanced_pairs(pos, genes, ratio=1, seed=seed, negatives=negatives)
    pairs = pairs.sample(frac=1, random_state=seed).reset_index(drop=True)
    cut = int(0.7*len(pairs))
    train, test = pairs[:cut], pairs[cut:]
    ctl = pair_controls(train, test, seed=seed)
    return skm.roc_auc_score(test.label, ctl.degree)


def test_degree_control_exposes_uniform_negatives_and_not_degree_matched_ones():
    assert _degree_auc('uniform') > 0.7, 'with uniform negatives, hub degree alone separates the classes'
    assert abs(_degree_auc('degree_matched') - 0.5) <= 0.05, 'degree-matched negatives leave the degree control at chance'


def _ksr(negatives, seed=0):
    "A kinase-substrate-like directed task: every positive has one of 25 kinases as gene_a."
    rng = np.random.default_rng(seed)
    genes = np.array([f'G{i}' for i in range(500)]); kinases = genes[:25]
    pos = pd.DataFrame(dict(gene_a=rng.choice(kinases, 800), gene_b=rng.choice(genes[25:], 800))).drop_duplicates()
    pairs = balanced_pairs(pos, genes, ratio=1, directed=True, seed=seed, negatives=negatives)
    return pairs.sample(frac=1, random_state=seed).reset_index(drop=True), kinases


def test_node_identity_catches_the_kinase_shortcut_and_margin_reports_it():
    pairs, kinases = _ksr('uniform')
    cut = int(0.7*len(pairs)); train, test = pairs[:cut], pairs[cut:]
    shortcut = test.gene_a.isin(kinases).to_numpy(float)  # the "method": gene_a is a kinase
    ctl = pair_controls(train, test, directed=True)
    tab = evaluate_scores(test.label, {'kinase_rule': shortcut}, ctl, n_boot=200)
    t = tab.set_index('method')
    assert t.roc_auc['kinase_rule'] > 0.8
    assert t.roc_auc['node_identity'] > 0.8, 'the planted shortcut is flagged by the node-identity control'
    m = margin(tab)
    assert m['best_control'] in ('node_identity', 'degree') and not m['beats_controls']


def test_role_matched_negatives_defeat_the_kinase_detector():
    pairs, kinases = _ksr('role_matched')
    assert abs(skm.roc_auc_score(pairs.label, pairs.gene_a.isin(kinases)) - 0.5) <= 0.05


def test_a_real_signal_beats_its_controls():
    rng = np.random.default_rng(3)
    genes = np.array([f'G{i}' for i in range(200)])
    pairs = pd.DataFrame(dict(gene_a=rng.choice(genes, 1200), gene_b=rng.choice(genes, 1200), label=rng.integers(0, 2, 1200)))
    train, test = pairs[:800], pairs[800:]
    signal = test.label.to_numpy() + rng.normal(0, 0.7, len(test))
    tab = evaluate_scores(test.label, {'m': signal}, pair_controls(train, test), n_boot=300)
    m = margin(tab)
    assert m['beats_controls'] and m['lo'] > 0 and m['value'] > 0.2


def test_input_similarity_is_the_cosine_of_the_given_vectors():
    tr = pd.DataFrame(dict(gene_a=['A', 'B'], gene_b=['C', 'D'], label=[1, 0]))
    te = pd.DataFrame(dict(gene_a=['A', 'A'], gene_b=['B', 'C']))
    vec = pd.DataFrame([[3., 4.], [4., 3.], [-3., -4.]], index=['A', 'B', 'C'])
    ctl = pair_controls(tr, te, vectors=vec)
    assert np.allclose(ctl.input_similarity, [24/25, -1])


def test_controls_use_training_positives_only():
    "A test positive never counts toward the degree of its own genes."
    tr = pd.DataFrame(dict(gene_a=['A', 'B'], gene_b=['B', 'C'], label=[1, 0]))
    te = pd.DataFrame(dict(gene_a=['X'], gene_b=['Y'], label=[1]))
    assert pair_controls(tr, te).degree.iloc[0] == 0


FAST = settings(max_examples=40, deadline=None)

@FAST
@given(st.integers(0, 2**31 - 1), st.integers(8, 60))
def test_point_metrics_equal_sklearn_with_ties(seed, n):
    rng = np.random.default_rng(seed)
    y = np.r_[0, 1, rng.integers(0, 2, n - 2)]
    s = np.round(rng.normal(y*0.5, 1), 1)  # rounding makes ties
    t = evaluate_scores(y, {'m': s}, metrics=('roc_auc', 'auprc', 'f1', 'accuracy'), n_boot=0)
    assert math.isclose(t.roc_auc[0], skm.roc_auc_score(y, s), abs_tol=1e-12)
    assert math.isclose(t.auprc[0], skm.average_precision_score(y, s), abs_tol=1e-12)
    pred = s >= np.sort(s)[::-1][y.sum() - 1]
    assert math.isclose(t.f1[0], skm.f1_score(y, pred), abs_tol=1e-12)
    assert math.isclose(t.accuracy[0], skm.accuracy_score(y, pred), abs_tol=1e-12)


def test_bootstrap_intervals_are_paired_and_cover_the_point():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = y + rng.normal(0, 1, 400)
    ctl = pd.DataFrame(dict(same=s.copy()))
    tab = evaluate_scores(y, {'m': s}, ctl, n_boot=300, seed=1)
    assert tab.roc_auc_lo[0] < tab.roc_auc[0] < tab.roc_auc_hi[0]
    assert (tab.roc_auc_lo[0], tab.roc_auc_hi[0]) == (tab.roc_auc_lo[1], tab.roc_auc_hi[1]), 'same rows resampled for all'
    m = margin(tab)
    assert m['value'] == 0 and m['lo'] == m['hi'] == 0, 'paired: identical scores differ by exactly 0 in every resample'
    again = evaluate_scores(y, {'m': s}, ctl, n_boot=300, seed=1)
    assert again.roc_auc_lo[0] == tab.roc_auc_lo[0], 'seeded'


def _leaky_genes(seed=0, leak=True, n=300):
    rng = np.random.default_rng(seed)
    g = [f'g{i}' for i in range(n)]
    y = pd.Series(rng.integers(0, 2, n), index=g)
    F = pd.DataFrame((rng.random((n, 200)) < 0.05).astype(int), index=g, columns=[f'GO:{j:07d}' for j in range(200)])
    if leak: F['integral component of membrane'] = ((y == 1) & (rng.random(n) < 0.5)).astype(int)
    return y, F


def test_leak_audit_flags_a_planted_term_and_not_random_ones():
    y, F = _leaky_genes()
    a = leak_audit(y, F, method_score=0.78)
    assert a['feature']['name'] == 'integral component of membrane' and a['best']['kind'] == 'feature'
    assert 0.7 < a['feature']['score'] < 0.8 and a['warning'] is True
    y0, F0 = _leaky_genes(leak=False)
    clean = leak_audit(y0, F0, method_score=0.78)
    assert clean['feature']['score'] < 0.62 and clean['warning'] is False


def test_leak_audit_accepts_sparse_features_and_reorders_by_gene():
    y, F = _leaky_genes(seed=1)
    Fs = F.iloc[::-1].astype(pd.SparseDtype(int, 0))  # shuffled rows, sparse storage
    a, b = leak_audit(y, Fs), leak_audit(y, F)
    assert a['feature']['name'] == b['feature']['name'] and math.isclose(a['feature']['score'], b['feature']['score'])


def test_leak_audit_keyword_rule_is_scored_out_of_fold():
    rng = np.random.default_rng(0)
    y = pd.Series(rng.integers(0, 2, 200), index=[f'g{i}' for i in range(200)])
    texts = pd.Series(['membrane transporter protein' if v else 'nuclear protein' for v in y], index=y.index)
    a = leak_audit(y, texts=texts)
    assert a['keyword']['name'] in ('membrane', 'transporter', 'nuclear') and a['keyword']['score'] == 1.0


def test_evaluation_is_json_with_the_margin():
    y = np.r_[np.ones(30), np.zeros(30)]
    tab = evaluate_scores(y, {'m': 2*y + np.linspace(0, 1, 60)}, pd.DataFrame(dict(random=np.linspace(0, 1, 60))), n_boot=50)
    ev = evaluation('toy', dict(split='C3'), tab, n=dict(train=10, test=60), seed=2)
    assert ev['protocol'] == dict(negatives=None, split='C3', np_ratio=None) and ev['seed'] == 2
    assert ev['margin']['roc_auc']['best_method'] == 'm' and ev['margin']['roc_auc']['value'] > 0


@pytest.mark.parametrize('bad,msg', [
    (lambda: pair_controls(pd.DataFrame(dict(gene_a=['A'], gene_b=['B'], label=[1])), pd.DataFrame(dict(gene_a=['A'], gene_b=['B']))), 'both classes'),
    (lambda: pair_controls(pd.DataFrame(dict(gene_a=['A', None], gene_b=['B', 'C'], label=[1, 0])), pd.DataFrame(dict(gene_a=['A'], gene_b=['B']))), 'missing gene'),
    (lambda: evaluate_scores([0, 1], {'m': [0.1, 0.2]}, pd.DataFrame(dict(m=[0, 1]))), 'both methods and controls'),
    (lambda: margin(pd.DataFrame(dict(method=['a'], kind=['method'], roc_auc=[.5])), 'auprc'), 'not in the table'),
])
def test_clear_errors(bad, msg):
    with pytest.raises(ValueError, match=msg): bad()


def test_leak_audit_on_real_solubility_flags_membrane_terms(root):
    "Issue 12: GO-term names leak the solubility label (Membrane vs Soluble)."
    from genenet import data as gd
    task = gd.load_gene_task('solubility').drop_duplicates('gene').set_index('gene')
    go = gd.load_go()
    ann = gd.load_goa().query('gene in @task.index')[['gene', 'go_id']].drop_duplicates()
    ann['term'] = ann.go_id.map({n: d.get('name') for n, d in go.nodes(data=True)}).fillna(ann.go_id)
    F = pd.crosstab(ann.gene, ann.term).clip(upper=1)
    a = leak_audit(task.label, F, method_score=0.941)  # 0.941: Genen's GCN, quick setting (issue 12)
    assert a['feature']['name'] == 'integral component of membrane'
    assert a['feature_word']['name'] == 'membrane' and a['feature_word']['score'] > 0.9
    assert a['warning'] is True


def test_evaluate_units_mean_and_paired_margin():
    from genenet.evaluate import evaluate_units
    rng = np.random.default_rng(0)
    base = rng.random(40)
    pu = pd.DataFrame({'method': base - 0.05, 'mean': base})
    t = evaluate_units(pu, 'mae_top20', controls=['mean'], n_boot=300)
    assert math.isclose(t.mae_top20[0], pu.method.mean()) and list(t.kind) == ['method', 'control']
    m = margin(t, 'mae_top20')
    assert math.isclose(m['value'], 0.05) and math.isclose(m['lo'], 0.05) and m['beats_controls'], 'paired: a constant gap'


def test_plot_evaluation_draws_finite_rows_with_their_intervals():
    "One bar per row with a value, error bars spanning exactly the bootstrap CI, the NaN row skipped, two colours."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.container import ErrorbarContainer
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.5).astype(int)
    tab = evaluate_scores(y, {'good': rng.normal(y, 1), 'weak': rng.normal(0.3*y, 1)},
                          pd.DataFrame({'random': rng.random(200)}), n_boot=200)
    tab = pd.concat([tab, pd.DataFrame([dict(method='missing', kind='control', roc_auc=np.nan)])], ignore_index=True)
    ax = plot_evaluation(tab, 'roc_auc', reference=0.5, title='t')
    try:
        ok = tab[tab.roc_auc.notna()]
        assert len(ax.patches) == len(ok) == 3, 'the NaN row is skipped'
        assert [t.get_text() for t in ax.get_yticklabels()] == list(ok.method)
        assert np.allclose([p.get_width() for p in ax.patches], ok.roc_auc)
        eb = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(eb) == 1
        segs = eb[0].lines[2][0].get_segments()
        assert np.allclose([[sg[0][0], sg[1][0]] for sg in segs], ok[['roc_auc_lo', 'roc_auc_hi']].to_numpy())
        colours = [p.get_facecolor() for p in ax.patches]
        assert colours[0] == colours[1] != colours[2], 'methods and controls in two colours'
        assert ax.get_xlabel() == 'ROC-AUC (95% bootstrap CI)' and ax.get_title() == 't'
        assert any(l.get_linestyle() == '--' and l.get_xdata()[0] == 0.5 for l in ax.get_lines()), 'dashed reference'
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ['method', 'control', 'reference (0.5)']
    finally: plt.close(ax.figure)
    with pytest.raises(ValueError, match='not in the table'): plot_evaluation(tab, 'mae_top20')
    with pytest.raises(ValueError, match='no row'): plot_evaluation(tab.assign(roc_auc=np.nan))
