"Genen: graphs against the source files, the task split, leak guards, message passing, masking, folds, enrichment, a short real run."
import warnings
from math import comb

import numpy as np
import pandas as pd
import pytest
import torch

from genenet import data as gdata, metrics as gmetrics
from genenet import genen as G, genen_gnn as GN, genen_model as GM, genen_studies as GS


# ---------------------------------------------------------------- graphs vs source files
def test_ppi_graph_matches_string(root):
    s = gdata.load_string()
    assert G.string_floor() == s.combined_score.min() == 400
    g = G.build_graph('ppi', cache=False)                     # min_score=None: every mirrored edge
    keep = s[s.gene_a != s.gene_b]
    pairs = {tuple(sorted(p)) for p in zip(keep.gene_a, keep.gene_b)}
    c = g.counts()
    assert c['e_ppi'] == len(pairs) and c['e_gene_go'] == c['e_go_go'] == c['n_go'] == 0
    assert c['n_gene'] == len(set(keep.gene_a) | set(keep.gene_b)) and g.info['string_floor'] == 400
    assert g.edge_score.min() >= 0.4 and g.edge_score.max() <= 1.0
    e = np.sort(g.edges, 0)
    assert len(np.unique(e, axis=1).T) == g.edges.shape[1] and (g.edges[0] != g.edges[1]).all()
    # the paper's threshold (150) is below the file's floor: same graph, and a warning says so
    with pytest.warns(UserWarning, match='below the mirrored file'):
        g150 = G.build_graph('ppi', min_score=150, cache=False)
    assert g150.counts() == c
    # a threshold above the floor keeps exactly the edges above it
    g7 = G.build_graph('ppi', min_score=700, cache=False)
    k7 = s[(s.combined_score > 700) & (s.gene_a != s.gene_b)]
    assert g7.counts()['e_ppi'] == len({tuple(sorted(p)) for p in zip(k7.gene_a, k7.gene_b)}) < c['e_ppi']


def test_go_graph_matches_gaf_and_obo(root):
    g = G.build_graph('go', cache=False)
    goa, ont = gdata.load_goa(drop_not=False), gdata.load_go()
    pairs = goa[~goa.qualifier.astype(str).str.contains('NOT') & goa.go_id.isin(set(ont.nodes))][['gene', 'go_id']].drop_duplicates()
    c = g.counts()
    assert c['e_gene_go'] == len(pairs) and c['e_ppi'] == 0
    assert c['n_gene'] == pairs.gene.nunique()
    terms = set(g.go_terms)
    assert set(pairs.go_id) <= terms and len(terms) <= ont.number_of_nodes()
    rel = {(u, v) for u, v, k in ont.edges(keys=True) if k in ('is_a', 'part_of') and u in terms and v in terms}
    assert c['e_go_go'] == len(rel)
    for u, v, k in ont.edges(keys=True):   # closed under ancestors
        if k == 'is_a' and u in terms: assert v in terms


def test_go_ppi_is_union_and_missing_genes_reported(root):
    genes = ['TP53', 'BRCA1', 'EGFR', 'NOT_A_GENE_X1']
    with pytest.warns(UserWarning, match='1 of 4 genes of interest'):
        g = G.build_graph('go+ppi', genes=genes, restrict=True, hops=1, cache=False)
    assert g.info['missing'] == ['NOT_A_GENE_X1'] and g.info['n_missing'] == 1
    assert g.nodes[:4] == genes and g.degree()[3] == 0
    assert all(g.degree()[:3] > 0)
    c = g.counts(); assert c['e_ppi'] > 0 and c['e_gene_go'] > 0 and c['e_go_go'] > 0
    with pytest.warns(UserWarning, match='left out'):
        g2 = G.build_graph('go+ppi', genes=genes, restrict=True, hops=1, add_missing=False, cache=False)
    assert 'NOT_A_GENE_X1' not in g2.nodes and g2.n_nodes == g.n_nodes - 1
    ppi = G.build_graph('ppi', genes=genes[:3], restrict=True, hops=1, cache=False)
    assert ppi.counts()['e_ppi'] == c['e_ppi']


def test_graph_cache_roundtrip(root, tmp_path, monkeypatch):
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path))
    a = G.build_graph('go+ppi', genes=['TP53', 'MDM2'], restrict=True, hops=0, drop_go_words=('membrane',))
    f = list((tmp_path/'genen'/'graphs').glob('*.npz'))
    assert len(f) == 1
    b = G.build_graph('go+ppi', genes=['TP53', 'MDM2'], restrict=True, hops=0, drop_go_words=('membrane',))
    assert a.nodes == b.nodes and np.array_equal(a.edges, b.edges) and np.array_equal(a.edge_type, b.edge_type)
    assert b.info['dropped_go_terms'] == a.info['dropped_go_terms'] and b.info['dropped_go_terms']
    f[0].write_bytes(b'damaged')
    with pytest.warns(UserWarning, match='unreadable cached graph'):
        c = G.build_graph('go+ppi', genes=['TP53', 'MDM2'], restrict=True, hops=0, drop_go_words=('membrane',))
    assert c.nodes == a.nodes


# ---------------------------------------------------------------- tasks: every label kept, none resolved by row order
def test_tf_target_type_split_keeps_every_label(root):
    raw = gdata.load_gene_task('TF_target_type')
    labs = raw.groupby('gene')['str_label'].agg(set)
    assert (labs.map(len) > 1).sum() == 1383          # why one row per gene cannot work
    sub = {t: G.load_task(t) for t in ('tf_target_gata4', 'tf_target_tbx5', 'tf_target_combo')}
    for tf in ('gata4', 'tbx5'):
        d = sub[f'tf_target_{tf}']
        lab = dict(zip(d.gene, d.str_label))
        for kind in ('direct', 'indirect'):            # every row of the file with this label is in the sub-task
            genes = set(raw.gene[raw.str_label == f'{tf}_{kind}'])
            assert {g for g, v in lab.items() if v == kind} == genes
        assert d.attrs['classes'] == ['direct', 'indirect'] and set(d.label) == {0, 1}
    combo = sub['tf_target_combo']
    assert set(combo.gene[combo.str_label == 'combinatorial']) == set(raw.gene[raw.str_label == 'gata4_tbx5_combo_targets'])
    single = set(combo.gene[combo.str_label == 'single-factor direct'])
    assert all(('gata4_direct' in labs[g]) != ('tbx5_direct' in labs[g]) for g in single) and len(single) == 370
    hk = set(raw.gene[raw.str_label == 'housekeeping_genes'])
    assert len(hk) == 9 and not any(hk & set(d.gene) for d in sub.values())
    with pytest.raises(ValueError, match='tf_target_gata4'): G.load_task('tf_target_type')


def test_tasks_balance_and_conflicts(root):
    d = G.load_task('bivalent_lys4')                     # 12 genes listed twice with the same label: kept once
    raw = gdata.load_gene_task('BivalentVsLys4')
    assert len(d) == raw.gene.nunique() and not d.gene.duplicated().any()
    assert sum(d.attrs['balance'].values()) == len(d)
    with pytest.warns(UserWarning, match='conflicting labels'):
        d = G.load_task('bivalent_nonmethylated')
    assert d.attrs['conflicting'] == ['FOXP2'] and 'FOXP2' not in set(d.gene)
    loc = G.load_task('subcellular_location')
    assert loc.attrs['classes'] == ['Cell membrane', 'Cytoplasm', 'Nucleus'] and loc.attrs['kind'] == 'classification'
    assert sum(len(v) for v in G.PAPER_TASKS.values()) == 10 and len(G.PAPER_TASKS) == 8


# ---------------------------------------------------------------- leak guards
def test_text_source_rule(root):
    g = G.GenenGraph(['TP53', 'KCNJ11', 'NOT_A_GENE_Q', 'GO:0016021'], np.array([0, 0, 0, 1]), np.zeros((2, 0), np.int64),
                     np.zeros(0, np.int64), np.zeros(0, np.float32))
    t = G.node_texts(g, pd.Series({'TP53': 'own summary'}))
    src = t.attrs['source']
    assert src == {'TP53': 'task summary', 'KCNJ11': 'ncbi description', 'NOT_A_GENE_Q': 'none', 'GO:0016021': 'GO name + definition'}
    # the description is "SYMBOL: NCBI description." and lists no GO term name
    assert t['KCNJ11'].startswith('KCNJ11: potassium') and 'GO:' not in t['KCNJ11'] and 'membrane' not in t['KCNJ11'].lower()
    leaky = G.node_texts(g, gene_text='summary')['KCNJ11']
    assert leaky != t['KCNJ11']
    for task in G.GO_DERIVED_TASKS:
        with pytest.raises(ValueError, match='GO term names'): GM.prepare(task, gene_text='summary', n_genes=20)


def _audit_data(drop):
    task = G.load_task('solubility')
    g = G.build_graph('go', genes=task.gene.tolist(), restrict=True, min_go_genes=2, go_ancestors_=False,
                      drop_go_words=G.LABEL_WORDS['solubility'] if drop else None, cache=False)
    idx = g.index
    texts = G.node_texts(g, task.set_index('gene')['summary'])
    return GM.GenenData(g, torch.zeros(g.n_nodes, 1), task, np.array([idx[x] for x in task.gene]), texts=texts)


def test_leak_audit_flags_membrane_on_solubility(root):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        raw, filt = _audit_data(False), _audit_data(True)
    a = GS.task_leak_audit(raw, method_score=0.75)
    assert 'integral component of membrane' in a['feature']['name'] and a['feature']['score'] > 0.7
    assert a['warning'] is True
    b = GS.task_leak_audit(filt, method_score=0.75)
    assert 'membrane' not in b['feature']['name'] and b['feature']['score'] < a['feature']['score']
    assert 'GO:0016021' in filt.graph.info['dropped_go_terms'] and 'GO:0016021' not in filt.graph.go_terms
    row = GS.audit_row(b)
    assert row['best_go_term'] == b['feature']['name'] and row['keyword_roc_auc'] == b['keyword']['score']


# ---------------------------------------------------------------- message passing on a hand-built graph
def _toy():
    # A - B (PPI), C isolated, A - T (gene-GO), T - P (GO-GO)
    return G.GenenGraph(['A', 'B', 'C', 'GO:T', 'GO:P'], np.array([0, 0, 0, 1, 1]),
                        np.array([[0, 0, 3], [1, 3, 4]]), np.array([0, 1, 2]), np.array([0.5, 1, 1], dtype=np.float32))


@pytest.mark.parametrize('arch', ['gcn', 'gat'])
def test_message_passing_reach(arch):
    d = _toy().to_data(torch.eye(5))
    def outputs(n_hidden, x):
        torch.manual_seed(0)
        m = GN.GenenGNN(5, 3, hidden=8, arch=arch, heads=2, dropout=0.0, n_hidden=n_hidden).eval()
        with torch.no_grad(): return m(x, d.edge_index, d.edge_weight, d.edge_type)
    x3 = d.x.clone(); x3[4] += 3.0                     # change P: 2 hops from A, 3 from B
    x2 = d.x.clone(); x2[1] += 3.0                     # change B
    deep, deep3, deep2 = outputs(None, d.x), outputs(None, x3), outputs(None, x2)
    assert not torch.allclose(deep2[0], deep[0]) and torch.allclose(deep2[2], deep[2])   # A hears B, isolated C not
    # the default depth (GCN 3+1, GAT 2+1 graph layers) carries P's change to A and B, never to C
    assert not torch.allclose(deep3[0], deep[0]) and not torch.allclose(deep3[1], deep[1])
    assert torch.allclose(deep3[2], deep[2])
    # one graph layer reaches one hop only: P's change does not reach A
    one, one3 = outputs(0, d.x), outputs(0, x3)
    assert torch.allclose(one3[0], one[0]) and not torch.allclose(one3[3], one[3])


def test_isolated_node_is_its_own_transform():
    d = _toy().to_data(torch.eye(5))
    m = GN.GenenGNN(5, 5, n_hidden=0, dropout=0.0, edge_weight='none').eval()
    with torch.no_grad():
        m.out.lin.weight.copy_(torch.eye(5)); m.out.bias.zero_()
        out = m(d.x, d.edge_index)
    assert torch.allclose(out[2], d.x[2])
    assert torch.allclose(out[1], torch.tensor([6 ** -.5, .5, 0, 0, 0]), atol=1e-6)


# ---------------------------------------------------------------- estimator, masking, folds
def _ring(n=60, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    x = rng.normal(size=(n + 4, 4)).astype(np.float32); x[:n, 0] = z
    y = ((np.roll(z, 1) + np.roll(z, -1)) > 0).astype(int)
    genes = [f'g{i}' for i in range(n)]
    ring = np.stack([np.arange(n), (np.arange(n) + 1) % n])
    go = np.array([[0, 1, 2, 3], [n, n + 1, n + 2, n + 3]])            # four GO nodes hang off the first genes
    g = G.GenenGraph(genes + ['GO:1', 'GO:2', 'GO:3', 'GO:4'], np.array([0] * n + [1] * 4), np.concatenate([ring, go], 1),
                     np.array([0] * n + [1] * 4), np.ones(n + 4, np.float32), 'go+ppi')
    t = pd.DataFrame(dict(gene=genes, label=y, summary='x')); t.attrs.update(kind='classification', task='ring')
    return GM.GenenData(g, torch.from_numpy(x), t, np.arange(n))


def test_genen_model_estimator():
    torch.set_num_threads(1)
    gd = _ring()
    m = GM.GenenModel(gd.graph, gd.x, conv='gcn', hidden=16, epochs=40, lr=0.05, dropout=0.0, patience=20)
    with pytest.raises(RuntimeError, match='not fitted'): m.predict(['g0'])
    genes, y = gd.task.gene.values, gd.task.label.values
    m.fit(genes[:40], y[:40])
    p = m.predict(genes[40:][::-1])
    assert p.shape == (20, 2) and np.allclose(p.sum(1), 1)
    assert np.allclose(p[::-1], m.predict(genes[40:]))                  # aligned with the input order
    ev = m.evaluate(genes[40:], y[40:])
    assert {'roc_auc', 'macro_f1', 'f1', 'accuracy'} <= set(ev.columns) and ev.method[0] == 'gcn'
    with pytest.raises(KeyError, match='not nodes'): m.predict(['g0', 'nope'])


def test_masking_protocol_never_masks_test_genes():
    torch.set_num_threads(1)
    gd = _ring()
    cand = GN.masking_candidates(gd.graph, 'go')
    assert set(gd.graph.node_type[cand]) == {1}
    for protocol in ('go', 'all'):
        r = GM.masking_curve(gd, rates=(0.0, 0.5, 1.0), protocol=protocol, k=3, hidden=8, epochs=5, patience=None,
                            progress=False)
        assert (r.n_test_masked == 0).all() and len(r) == 9
        full = r[r.rate == 1.0].n_masked
        assert (full == (4 if protocol == 'go' else gd.graph.n_nodes - 20)).all()


@pytest.mark.parametrize('rate', [0.0, 0.1, 0.33, 0.5, 0.75])
def test_masking_exact_fraction(rate):
    x = torch.rand(301, 4) + 0.1
    xm, idx = GN.mask_nodes(x, rate, seed=7)
    zero = (xm == 0).all(1)
    assert int(zero.sum()) == round(rate * 301) == len(idx) == len(set(idx.tolist()))
    assert torch.equal(xm[~zero], x[~zero])
    with pytest.raises(ValueError): GN.mask_nodes(x, 1.5)


def test_cv_folds_are_the_shared_folds():
    y = np.array([0] * 40 + [1] * 25)
    folds = GM.cv_folds(y, k=5, seed=1)
    for f, (_, te) in zip(folds, gmetrics.kfold(y, k=5, seed=1)):
        assert np.array_equal(f['test'], te)
        parts = [set(f[k].tolist()) for k in ('train', 'valid', 'test')]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        assert len(parts[0] | parts[1] | parts[2]) == 65
    with pytest.raises(ValueError, match='one class'): GM.cv_folds(np.ones(30, int))
    with pytest.raises(ValueError, match='fewer members than folds'): GM.cv_folds(np.array([0] * 30 + [1] * 2))


# ---------------------------------------------------------------- enrichment with a known answer
def test_go_enrichment_toy():
    ann = pd.DataFrame([(f'g{i}', 'T1') for i in range(4)] + [(f'g{i}', 'T2') for i in range(0, 20, 2)]
                       + [(f'g{i}', 'T0') for i in range(20)], columns=['gene', 'go_id'])
    cl = pd.Series(['a'] * 5 + ['b'] * 15, index=[f'g{i}' for i in range(20)])
    en = GS.go_enrichment(cl, ann, min_term_genes=1, max_term_genes=None).set_index(['cluster', 'go_id'])
    assert np.isclose(en.loc[('a', 'T1'), 'p'], comb(16, 1) / comb(20, 5))           # P(X>=4), N=20, K=4, n=5
    assert en.loc[('a', 'T1'), 'fdr'] == en['fdr'].min() and en.loc[('a', 'T1'), 'fdr'] < 0.05
    assert np.isclose(en.loc[('a', 'T0'), 'p'], 1.0)
    # T2 on every other gene: cluster a holds 3 of 10 in 5 -> not enriched
    assert en.loc[('a', 'T2'), 'fdr'] > 0.5
    q = GS.fdr_bh([0.01, 0.04, 0.03, 0.5])
    assert np.allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.5])


# ---------------------------------------------------------------- a short real run
@pytest.fixture(scope='module')
def solubility(root):
    n = torch.get_num_threads(); torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        yield GM.prepare('solubility', kind='go+ppi', n_genes=300, hops=0, min_go_genes=2, go_ancestors_=False,
                        progress=False)
    torch.set_num_threads(n)


def test_prepare_features(solubility):
    gd = solubility
    assert gd.x.shape == (gd.graph.n_nodes, 384) and len(gd.nodes) == len(gd.task) == 300
    assert [gd.graph.nodes[i] for i in gd.nodes] == gd.task['gene'].tolist()
    has = gd.texts.notna().values
    assert (gd.x[torch.as_tensor(has)].abs().sum(1) > 0).all() and (gd.x[torch.as_tensor(~has)] == 0).all()
    assert gd.texts[gd.task['gene'].iloc[0]] == gd.task['summary'].iloc[0]
    # the leak guards are on by default and reported
    assert gd.info['label_words'] == list(G.LABEL_WORDS['solubility']) and gd.info['dropped_go_terms']
    assert not any('membrane' in n.lower() for n in G.go_names(gd.graph.go_terms))
    assert sum(gd.info['text_sources'].values()) == 300


def test_solubility_gcn_beats_majority(solubility):
    m, oof = GM.run_cv(solubility, models=('gcn', 'lr'), hidden_grid=(64,), epochs=60, patience=10, progress=False)
    majority = solubility.task['label'].value_counts(normalize=True).max()
    gcn = m[m.model == 'gcn']
    assert len(gcn) == 5 and gcn['accuracy'].mean() > majority + 0.1, (gcn['accuracy'].mean(), majority)
    assert gcn['roc_auc'].mean() > 0.75 and {'macro_f1', 'f1'} <= set(m.columns)
    assert oof[oof.model == 'gcn']['gene'].nunique() == 300 == len(oof[oof.model == 'gcn'])
