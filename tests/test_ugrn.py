"Tests of genenet.ugrn: VVP/GDT features against their definitions, batching, the BEELINE LODO split, metrics."
import warnings
import numpy as np, pandas as pd, pytest, torch

torch.set_num_threads(1)  # the shared 2-core machine: OpenMP spin contention makes 2 threads ~50x slower

from genenet.scfm import ScGPT, scgpt_vocab, pretrained_scfm
from genenet.ugrn import (GeneContext, vvp_responses, gdt_jacobians, vvp_pair_loop, gdt_pair_loop, probe_values,
                          FeatureBank, pair_features, train_projector, projector_logits, BeelineData, lodo_split,
                          lodo_test_sets, drop_seen_pairs, early_precision_ratio, all_tf_pairs, beeline_metrics, lodo_benchmark)
from genenet.metrics import binary_metrics

GENES = ['GATA1', 'TAL1', 'SPI1', 'CEBPA', 'KLF1', 'RUNX1', 'GFI1', 'MYB', 'FLI1']

@pytest.fixture(scope='module')
def model():
    torch.manual_seed(1)
    m = ScGPT(scgpt_vocab(), embsize=32, nheads=4, d_hid=64, nlayers=2, value_range=(0, 8)).eval()
    for p in m.parameters(): p.requires_grad_(False)
    return m

@pytest.fixture(scope='module')
def ctx(model): return GeneContext(model, GENES, 'toy')

def test_vvp_is_difference_of_two_forwards(model, ctx):
    R = vvp_responses(model, ctx, n_values=4, v_base=0.5, batch_tokens=25)
    G = len(GENES)
    for s, p in [(0, 0), (3, 2), (8, 3)]:
        x = torch.full((1, G), 0.5); x[0, s] = float(probe_values(model, 4)[p])
        with torch.no_grad(): d = model.reconstruct(x, GENES) - model.reconstruct(torch.full((1, G), 0.5), GENES)
        np.testing.assert_allclose(R[s, p], d[0].numpy(), atol=1e-5)
    assert np.abs(R).max() > 0

def test_gdt_matches_finite_difference(model, ctx):
    J = gdt_jacobians(model, ctx, n_bases=3, batch_tokens=40)
    G, h = len(GENES), 1e-2
    b = float(probe_values(model, 3, 'base')[2])
    f = lambda v: model.reconstruct(torch.tensor(v, dtype=torch.float32)[None], ctx.ids)[0].numpy().astype(np.float64)
    fd = np.stack([(f(np.full(G, b) + h*np.eye(G)[i]) - f(np.full(G, b) - h*np.eye(G)[i])) / (2*h) for i in range(G)], 1)
    # tolerance: 1% of the largest |entry| (central differences, h = 1e-2, float32 forwards)
    assert np.abs(J[2] - fd).max() <= 1e-2 * np.abs(fd).max() and np.abs(fd).max() > 0

def test_batched_features_equal_per_pair_loop(model, ctx):
    pairs = pd.DataFrame({'gene_a': ['GATA1', 'TAL1', 'SPI1', 'MYB', 'FLI1'], 'gene_b': ['KLF1', 'GFI1', 'CEBPA', 'GATA1', 'RUNX1']})
    bank = FeatureBank(model, ctx, n_values=3, n_bases=2, batch_tokens=33)
    pl = list(zip(pairs.gene_a, pairs.gene_b))
    np.testing.assert_allclose(pair_features(bank, pairs, 'VVP'), vvp_pair_loop(model, ctx, pl, n_values=3), atol=1e-5)
    np.testing.assert_allclose(pair_features(bank, pairs, 'GDT'), gdt_pair_loop(model, ctx, pl, n_bases=2), atol=1e-5)
    # direction matters: swapping the pair swaps the two halves
    sw = pairs.rename(columns={'gene_a': 'gene_b', 'gene_b': 'gene_a'})
    f, fs = pair_features(bank, pairs, 'VVP'), pair_features(bank, sw, 'VVP')
    np.testing.assert_allclose(f[:, :3], fs[:, 3:]) ; np.testing.assert_allclose(f[:, 3:], fs[:, :3])

def test_expression_methods_and_bad_input(model, ctx):
    X = np.abs(np.random.default_rng(0).normal(2, 1, (15, len(ctx)))).astype(np.float32)
    pairs = pd.DataFrame({'gene_a': ['GATA1', 'TAL1'], 'gene_b': ['KLF1', 'GFI1']})
    b = FeatureBank(model, ctx, X=X, n_cells=4, attn_cells=5)
    assert pair_features(b, pairs, 'Baseline-Pert').shape == (2, 8)
    assert (pair_features(b, pairs, 'Origin-Pert') >= 0).all() and pair_features(b, pairs, 'Origin-Attn').shape == (2,)
    X2 = X.copy(); X2[0, 0] = np.nan
    with pytest.raises(ValueError, match='NaN'): FeatureBank(model, ctx, X=X2)
    with pytest.raises(ValueError, match='needs expression'): pair_features(FeatureBank(model, ctx), pairs, 'Origin-Attn')

def test_out_of_vocab_genes_reported(model):
    with pytest.warns(UserWarning, match='2 of 4 genes are outside'):
        c = GeneContext(model, ['GATA1', 'XX_ONE', 'TAL1', 'XX_TWO'], 'toy2')
    assert c.report == dict(dataset='toy2', genes=4, in_vocab=2, excluded=2, duplicates=0) and c.missing == ['XX_ONE', 'XX_TWO']
    with pytest.raises(KeyError, match='XX_ONE'): c.rows(['XX_ONE'])

def test_projector_learns():
    rng = np.random.default_rng(0); X = rng.normal(size=(500, 8)).astype(np.float32) * 1e-3  # tiny scale: standardised inside
    y = (X[:, 2] > 0).astype(float)
    p = train_projector(X[:400], y[:400], epochs=15)
    assert binary_metrics(y[400:], projector_logits(p, X[400:]))['roc_auc'] > 0.95

def test_epr_and_beeline_metrics():
    assert early_precision_ratio([1, 0, 0, 1, 0, 0], [.9, .8, .1, .7, .2, .3]) == pytest.approx(1.5)
    m = beeline_metrics([1, 0, 0, 0], [0.9, 0.1, 0.2, 0.3])
    assert m['epr'] == 4.0 and m['density'] == 0.25 and m['auprc_all'] == pytest.approx(1.0)

@pytest.fixture(scope='module')
def tiny(root): return pretrained_scfm(quick=True)

def test_lodo_split_never_shares_a_test_pair(tiny):
    tests = lodo_test_sets(cells=['mDC', 'hHEP'], sizes=[500], networks=['STRING', 'Specific'])
    assert set(tests.cell) == {'mDC', 'hHEP'} and 'hESC' not in set(lodo_test_sets().cell)
    sp = lodo_split(tiny, tests=tests, max_pos=200, seed=1)
    src, tr = sp['train']
    assert src.cell == 'hESC' and tr.label.mean() == 0.5 and len(tr) == 400 and set(tr.gene_a) <= set(src.tfs)
    train_pairs = set(zip(tr.gene_a, tr.gene_b))
    for d, te, n_rm in sp['tests']:
        assert not train_pairs & set(zip(te.gene_a, te.gene_b)), d.name
        assert set(te.gene_a) <= set(d.tfs) and set(te.gene_a) | set(te.gene_b) <= set(d.ctx.genes)
        neg = te[te.label == 0]
        assert not set(zip(neg.gene_a, neg.gene_b)) & set(zip(d.edges.gene_a, d.edges.gene_b)), 'negatives are non-edges'
        assert d.report['in_vocab'] + d.report['excluded'] + d.report['duplicates'] == d.report['genes']
    # and drop_seen_pairs really removes a shared pair
    te = pd.DataFrame({'gene_a': [tr.gene_a[0], 'A'], 'gene_b': [tr.gene_b[0], 'B'], 'label': [1, 0]})
    kept, n = drop_seen_pairs(te, tr)
    assert n == 1 and list(kept.gene_a) == ['A']

def test_lodo_benchmark_end_to_end(tiny):
    tests = lodo_test_sets(cells=['hHEP'], sizes=[500], networks=['STRING'])
    res = lodo_benchmark(tiny, tests=tests, methods=('Origin-Attn', 'Baseline-Pert', 'Baseline-Emb', 'VVP', 'Ens'), max_pos=40,
                         epochs=5, bank_kw=dict(n_values=2, n_bases=2, attn_cells=4), progress=False)
    r = res.set_index('method')
    assert r.loc['Baseline-Pert', 'note'].startswith('source hESC') and r.loc['Ens', 'note'] == 'needs VVP and GDT'
    for m in ('Origin-Attn', 'Baseline-Emb', 'VVP'):
        assert 0 <= r.loc[m, 'auprc'] <= 1 and r.loc[m, 'n_pos'] >= 35

def test_all_tf_pairs_universe(tiny):
    d = BeelineData(tiny, 'mHSC-L', 'STRING', 500)
    p = all_tf_pairs(d)
    assert len(p) == len(d.tfs) * (len(d.ctx.genes)) - len(d.tfs) and p.label.sum() == len(d.edges)

def test_beeline_universe_option(tiny):
    tests = lodo_test_sets(cells=['mHSC-GM'], sizes=[500], networks=['STRING'])
    res = lodo_benchmark(tiny, tests=tests, methods=('Baseline-Emb',), max_pos=40, epochs=3, progress=False, universe='beeline')
    r = res.iloc[0]
    d = BeelineData(tiny, 'mHSC-GM', 'STRING', 500)
    assert r.n == len(all_tf_pairs(d)) - r.removed_seen and r.density == pytest.approx(r.n_pos / r.n)
    assert r.density < 0.2 and r.epr >= 0 and r.auprc_all == pytest.approx(r.auprc)
