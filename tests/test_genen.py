"Genen: graphs against the source files, message passing, masking, CV hygiene and a short real run on solubility."
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from genenet import genen as G


# ---------------------------------------------------------------- graphs vs source files
def test_ppi_graph_matches_string(root):
    s = G._need('data', 'load_string')()
    g = G.build_graph('ppi', min_score=150, cache=False)
    keep = s[(s.combined_score > 150) & (s.gene_a != s.gene_b)]
    pairs = {tuple(sorted(p)) for p in zip(keep.gene_a, keep.gene_b)}
    c = g.counts()
    assert c['e_ppi'] == len(pairs) and c['e_gene_go'] == c['e_go_go'] == c['n_go'] == 0
    assert c['n_gene'] == len(set(keep.gene_a) | set(keep.gene_b))
    # scores are STRING's combined score / 1000, every edge exactly once, no self-loops
    assert g.edge_score.min() > 0.15 and g.edge_score.max() <= 1.0
    e = np.sort(g.edges, 0)
    assert len(np.unique(e, axis=1).T) == g.edges.shape[1] and (g.edges[0] != g.edges[1]).all()
    # a higher threshold keeps exactly the edges above it
    g7 = G.build_graph('ppi', min_score=700, cache=False)
    k7 = s[(s.combined_score > 700) & (s.gene_a != s.gene_b)]
    assert g7.counts()['e_ppi'] == len({tuple(sorted(p)) for p in zip(k7.gene_a, k7.gene_b)})


def test_go_graph_matches_gaf_and_obo(root):
    g = G.build_graph('go', cache=False)
    goa = G._need('data', 'load_goa')()
    ont = G._need('data', 'load_go')()
    pairs = goa[~goa.qualifier.astype(str).str.contains('NOT') & goa.go_id.isin(set(ont.nodes))][['gene', 'go_id']].drop_duplicates()
    c = g.counts()
    assert c['e_gene_go'] == len(pairs) and c['e_ppi'] == 0
    assert c['n_gene'] == pairs.gene.nunique()
    # GO nodes: annotated terms and their is_a/part_of ancestors; GO-GO edges: those relations among them
    terms = set(g.go_terms)
    assert set(pairs.go_id) <= terms and len(terms) <= ont.number_of_nodes()
    rel = {(u, v) for u, v, k in ont.edges(keys=True) if k in ('is_a', 'part_of') and u in terms and v in terms}
    assert c['e_go_go'] == len(rel)
    for u, v, k in ont.edges(keys=True):   # closed under ancestors
        if k == 'is_a' and u in terms: assert v in terms
    types = pd.Series(g.edge_type).map(dict(enumerate(G.EDGE_TYPES))).value_counts().to_dict()
    assert set(types) == {'gene_go', 'go_go'}


def test_go_ppi_is_union_and_missing_genes_reported(root):
    genes = ['TP53', 'BRCA1', 'EGFR', 'NOT_A_GENE_X1']
    with pytest.warns(UserWarning, match='1 of 4 genes of interest'):
        g = G.build_graph('go+ppi', genes=genes, restrict=True, hops=1, cache=False)
    assert g.info['missing'] == ['NOT_A_GENE_X1'] and g.info['n_missing'] == 1
    assert g.nodes[:4] == genes and g.degree()[3] == 0           # added as an isolated node
    assert all(g.degree()[:3] > 0)
    c = g.counts(); assert c['e_ppi'] > 0 and c['e_gene_go'] > 0 and c['e_go_go'] > 0
    with pytest.warns(UserWarning, match='left out'):
        g2 = G.build_graph('go+ppi', genes=genes, restrict=True, hops=1, add_missing=False, cache=False)
    assert 'NOT_A_GENE_X1' not in g2.nodes and g2.n_nodes == g.n_nodes - 1
    # the PPI and GO graphs over the same genes are the edge-type subsets of GO+PPI
    ppi = G.build_graph('ppi', genes=genes[:3], restrict=True, hops=1, cache=False)
    assert ppi.counts()['e_ppi'] == c['e_ppi']


def test_graph_cache_roundtrip(root, tmp_path, monkeypatch):
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path))
    a = G.build_graph('go+ppi', genes=['TP53', 'MDM2'], restrict=True, hops=0)
    assert list((tmp_path/'genen'/'graphs').glob('*.pt'))
    b = G.build_graph('go+ppi', genes=['TP53', 'MDM2'], restrict=True, hops=0)
    assert a.nodes == b.nodes and np.array_equal(a.edges, b.edges) and np.array_equal(a.edge_type, b.edge_type)


# ---------------------------------------------------------------- message passing on a hand-built graph
def _toy():
    # A - B (PPI), C isolated, A - T (gene-GO), T - P (GO-GO)
    return G.GenenGraph(['A', 'B', 'C', 'GO:T', 'GO:P'], np.array([0, 0, 0, 1, 1]),
                        np.array([[0, 0, 3], [1, 3, 4]]), np.array([0, 1, 2]), np.array([0.5, 1, 1], dtype=np.float32))


@pytest.mark.parametrize('arch', ['gcn', 'gat'])
def test_message_passing_isolated_vs_connected(arch):
    d = _toy().to_data(torch.eye(5))
    torch.manual_seed(0)
    m = G.GenenGNN(5, 3, hidden=8, arch=arch, heads=2, dropout=0.0).eval()
    with torch.no_grad():
        out = m(d.x, d.edge_index, d.edge_weight, d.edge_type)
        x2 = d.x.clone(); x2[1] += 3.0                 # change B
        out2 = m(x2, d.edge_index, d.edge_weight, d.edge_type)
        x3 = d.x.clone(); x3[4] += 3.0                 # change P (3 hops from A, 4 from B)
        out3 = m(x3, d.edge_index, d.edge_weight, d.edge_type)
    assert not torch.allclose(out2[0], out[0])         # A hears its neighbour B
    assert torch.allclose(out2[2], out[2])             # isolated C does not
    # P reaches A (distance 2) and B (distance 3) within the depth (GCN 4, GAT 3 graph layers), never C
    assert len(m.convs) + 1 >= 3
    assert not torch.allclose(out3[0], out[0]) and not torch.allclose(out3[1], out[1])
    assert torch.allclose(out3[2], out[2])


def test_isolated_node_is_its_own_transform():
    # one GCN layer with identity weight: the isolated node keeps its features, a connected one averages
    d = _toy().to_data(torch.eye(5))
    m = G.GenenGNN(5, 5, n_hidden=0, dropout=0.0, edge_weight='none').eval()
    with torch.no_grad():
        m.out.lin.weight.copy_(torch.eye(5)); m.out.bias.zero_()
        out = m(d.x, d.edge_index)
    assert torch.allclose(out[2], d.x[2])
    # B: degree 1 (+ self-loop) = 2, A: degree 2 (+1) = 3  ->  out_B = x_B/2 + x_A/sqrt(6)
    assert torch.allclose(out[1], torch.tensor([6 ** -.5, .5, 0, 0, 0]), atol=1e-6)


# ---------------------------------------------------------------- masking, folds, bad input
@pytest.mark.parametrize('rate', [0.0, 0.1, 0.33, 0.5, 0.75])
def test_masking_exact_fraction(rate):
    x = torch.rand(301, 4) + 0.1
    xm, idx = G.mask_nodes(x, rate, seed=7)
    zero = (xm == 0).all(1)
    assert int(zero.sum()) == round(rate * 301) == len(idx) == len(set(idx.tolist()))
    assert torch.equal(xm[~zero], x[~zero])
    with pytest.raises(ValueError): G.mask_nodes(x, 1.5)


def test_cv_folds_disjoint_and_one_class_error():
    y = np.array([0] * 40 + [1] * 25)
    folds = G.cv_splits(y, n_splits=5, seed=1)
    tests = np.concatenate([f['test'] for f in folds])
    assert len(tests) == 65 and len(set(tests.tolist())) == 65      # test folds partition the genes
    for f in folds:
        parts = [set(f[k].tolist()) for k in ('train', 'valid', 'test')]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    with pytest.raises(ValueError, match='one class'): G.cv_splits(np.ones(30, int))
    with pytest.raises(ValueError, match='fewer members than folds'): G.cv_splits(np.array([0] * 30 + [1] * 2))


# ---------------------------------------------------------------- a short real run
@pytest.fixture(scope='module')
def solubility(root):
    # the quick-mode subset shared with the repro notebooks (same genes -> same cached embeddings); one torch thread:
    # on a ~1k-node graph and busy shared cores it is ~10x faster than two
    n = torch.get_num_threads(); torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        yield G.prepare('solubility', kind='go+ppi', n_genes=300, hops=0, min_go_genes=2, go_ancestors_=False,
                        progress=False)
    torch.set_num_threads(n)


def test_prepare_features(solubility):
    gd = solubility
    assert gd.x.shape == (gd.graph.n_nodes, 384) and len(gd.nodes) == len(gd.task) == 300
    assert [gd.graph.nodes[i] for i in gd.nodes] == gd.task['gene'].tolist()
    has = gd.texts.notna().values
    assert (gd.x[torch.as_tensor(has)].abs().sum(1) > 0).all()          # every node with text has a feature vector
    assert (gd.x[torch.as_tensor(~has)] == 0).all()                      # and the others are recorded and zero
    assert set(gd.texts.attrs['no_text']) == set(gd.texts.index[~has])
    # task genes use the task's own summary
    assert gd.texts[gd.task['gene'].iloc[0]] == gd.task['summary'].iloc[0]


def test_solubility_gcn_beats_majority(solubility):
    m, oof = G.run_cv(solubility, models=('gcn', 'lr'), hidden_grid=(64,), epochs=60, patience=10, progress=False)
    majority = solubility.task['label'].value_counts(normalize=True).max()
    gcn = m[m.model == 'gcn']
    assert len(gcn) == 5 and gcn['accuracy'].mean() > majority + 0.1, (gcn['accuracy'].mean(), majority)
    assert gcn['auc'].mean() > 0.75
    # out-of-fold predictions cover every gene once per model
    assert oof[oof.model == 'gcn']['gene'].nunique() == 300 == len(oof[oof.model == 'gcn'])
