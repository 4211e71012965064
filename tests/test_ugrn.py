"Tests of genenet.ugrn and genenet.ugrn_lodo: VVP/GDT features against their definitions, batching, the BEELINE LODO split, metrics."
import warnings
import numpy as np, pandas as pd, pytest, torch

torch.set_num_threads(1)  # the shared 2-core machine: OpenMP spin contention makes 2 threads ~50x slower

from genenet.scfm import ScGPT, scgpt_vocab
from genenet.scfm_pretrain import pretrained_scfm
from genenet.ugrn import (GeneContext, vvp_responses, gdt_jacobians, vvp_pair_loop, gdt_pair_loop, probe_values,
                          FeatureBank, pair_features, gdt_source_columns)
from genenet.ugrn_lodo import (train_projector, projector_logits, BeelineData, lodo_split, lodo_test_sets, drop_seen_pairs,
                               early_precision_ratio, all_tf_pairs, beeline_metrics, lodo_benchmark, rebalance,
                               read_genelink_folder, UgrnModel, CONTROLS)
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
    assert pair_features(b, pairs, 'Baseline-Pert-cells').shape == (2, 8) and pair_features(b, pairs, 'Origin-Attn').shape == (2,)
    X2 = X.copy(); X2[0, 0] = np.nan
    with pytest.raises(ValueError, match='NaN'): FeatureBank(model, ctx, X=X2)
    with pytest.raises(ValueError, match='needs expression'): pair_features(FeatureBank(model, ctx), pairs, 'Origin-Attn')

def test_baseline_pert_is_the_mean_cell_difference(model, ctx):
    X = np.abs(np.random.default_rng(1).normal(2, 1, (12, len(ctx)))).astype(np.float32)
    pairs = pd.DataFrame({'gene_a': ['GATA1', 'MYB'], 'gene_b': ['KLF1', 'SPI1']})
    f = pair_features(FeatureBank(model, ctx, X=X), pairs, 'Baseline-Pert')
    xbar = torch.tensor(X.mean(0))[None]
    def delta(a, b):  # Eq. 6: M(x̄)_b - M(x̄ with a knocked out)_b
        ko = xbar.clone(); ko[0, ctx.rows([a])[0]] = 0
        with torch.no_grad(): return (model.reconstruct(xbar, ctx.ids) - model.reconstruct(ko, ctx.ids))[0, ctx.rows([b])[0]].item()
    want = np.array([[delta(a, b), delta(b, a)] for a, b in zip(pairs.gene_a, pairs.gene_b)])
    np.testing.assert_allclose(f, want, atol=1e-5)
    np.testing.assert_allclose(pair_features(FeatureBank(model, ctx, X=X), pairs, 'Origin-Pert'), want[:, 0], atol=1e-5)

class _LinearToy(ScGPT):
    "M(x) = x @ W: a known regulatory sign."
    def __init__(self, W): super().__init__({'A': 0, 'B': 1, 'C': 2, '<pad>': 3, '<cls>': 4, '<eoc>': 5}, embsize=8, nheads=2, d_hid=8, nlayers=1); self.W = torch.as_tensor(W)
    def forward(self, ids, values, key_padding_mask=None, need_weights=False): return values @ self.W, []

def test_origin_pert_is_signed_on_a_toy_with_known_sign():
    W = torch.zeros(3, 3); W[0, 2], W[1, 2] = 0.8, -0.5   # A activates C, B represses C
    toy = _LinearToy(W).eval(); c = GeneContext(toy, ['A', 'B', 'C'], 'toy')
    s = pair_features(FeatureBank(toy, c, X=np.array([[1., 3., 0.], [3., 1., 2.]], np.float32)),
                      pd.DataFrame({'gene_a': ['A', 'B'], 'gene_b': ['C', 'C']}), 'Origin-Pert')
    assert s[0] > 0 > s[1] and s == pytest.approx([0.8 * 2.0, -0.5 * 2.0])

def test_baseline_emb_is_raw_embedding_sum(model, ctx):
    pairs = pd.DataFrame({'gene_a': ['GATA1', 'TAL1'], 'gene_b': ['KLF1', 'GFI1']})
    E = model.encoder.embedding.weight
    want = E[[model.vocab['GATA1'], model.vocab['TAL1']]] + E[[model.vocab['KLF1'], model.vocab['GFI1']]]
    np.testing.assert_allclose(pair_features(FeatureBank(model, ctx), pairs, 'Baseline-Emb'), want.numpy(), rtol=1e-6)

def test_gdt_source_reading_matches_its_definition(model, ctx):
    G, h, vb = len(GENES), 1e-2, 0.5
    C = gdt_source_columns(model, ctx, n_bases=3, v_base=vb, batch_tokens=40)
    b = float(probe_values(model, 3, 'base')[1])
    f = lambda v: model.reconstruct(torch.tensor(v, dtype=torch.float32)[None], ctx.ids)[0].numpy().astype(np.float64)
    x = np.full(G, vb); x[4] = b
    fd = (f(x + h*np.eye(G)[4]) - f(x - h*np.eye(G)[4])) / (2*h)
    assert np.abs(C[4, 1] - fd).max() <= 1e-2 * np.abs(fd).max()
    pairs = pd.DataFrame({'gene_a': ['GATA1', 'TAL1'], 'gene_b': ['KLF1', 'GFI1']})
    bank = FeatureBank(model, ctx, n_bases=3, v_base=vb, gdt_reading='source')
    np.testing.assert_allclose(pair_features(bank, pairs, 'GDT'), gdt_pair_loop(model, ctx, list(zip(pairs.gene_a, pairs.gene_b)), 3, 'source', vb), atol=1e-5)
    assert not np.allclose(pair_features(bank, pairs, 'GDT'), pair_features(FeatureBank(model, ctx, n_bases=3), pairs, 'GDT'), atol=1e-6), 'the readings differ'

def test_failed_call_leaves_feature_bank_usable(model):
    c = GeneContext(model, ['TP53', 'MDM2', 'GATA1'], 'p53')
    bank = FeatureBank(model, c, n_values=2, n_bases=2)
    good = pd.DataFrame({'gene_a': ['TP53'], 'gene_b': ['MDM2']})
    with pytest.raises(KeyError, match='NOT_A_GENE'): bank.features(pd.DataFrame({'gene_a': ['TP53'], 'gene_b': ['NOT_A_GENE']}), 'VVP')
    for m in ('VVP', 'GDT', 'Baseline-Emb'):
        np.testing.assert_allclose(bank.features(good, m), FeatureBank(model, c, n_values=2, n_bases=2).features(good, m), atol=1e-6)

def test_wrong_expression_width_is_a_clear_error(model, ctx):
    with pytest.raises(ValueError, match=f'{len(ctx)} genes'): FeatureBank(model, ctx, X=np.ones((4, len(ctx) - 1), np.float32))

def test_out_of_vocab_genes_reported(model):
    with pytest.warns(UserWarning, match='2 of 4 genes are outside'):
        c = GeneContext(model, ['GATA1', 'XX_ONE', 'TAL1', 'XX_TWO'], 'toy2')
    assert c.report == dict(dataset='toy2', genes=4, in_vocab=2, excluded=2, untrained=0, duplicates=0) and c.missing == ['XX_ONE', 'XX_TWO']

def test_untrained_genes_are_reported_and_excluded(model):
    model.trained_genes = {'GATA1', 'SPI1'}
    try:
        with pytest.warns(UserWarning, match='no trained scFM embedding'): c = GeneContext(model, ['GATA1', 'TAL1', 'SPI1'], 't')
        assert c.genes == ['GATA1', 'SPI1'] and c.untrained == ['TAL1'] and c.report['untrained'] == 1
        assert GeneContext(model, ['GATA1', 'TAL1'], 't', trained_only=False).genes == ['GATA1', 'TAL1']
    finally: model.trained_genes = None
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

def test_drop_seen_and_rebalance():
    tr = pd.DataFrame({'gene_a': ['A', 'C'], 'gene_b': ['B', 'D'], 'label': [1, 0]})
    te = pd.DataFrame({'gene_a': ['A', 'B', 'D', 'E'], 'gene_b': ['B', 'A', 'C', 'F'], 'label': [1, 1, 0, 0]})
    kept, n = drop_seen_pairs(te, tr)
    assert n == 3 and list(kept.gene_a) == ['E'], 'identical and reversed pairs are dropped'
    assert drop_seen_pairs(te, tr, reverse=False)[1] == 1
    p = pd.DataFrame({'gene_a': list('abcdefghij'), 'gene_b': list('klmnopqrst'), 'label': [1, 0, 0, 1, 0, 1, 0, 0, 1, 0]})
    for r, (npos, nneg) in {1: (4, 4), 2: (3, 6), 0.5: (4, 2), 3: (2, 6)}.items():
        q = rebalance(p, r)
        assert (q.label.sum(), (q.label == 0).sum()) == (npos, nneg), r

def test_read_genelink_folder_and_errors(tmp_path):
    f = tmp_path/'net'; f.mkdir()
    pd.DataFrame({'Gene': ['GATA1', 'TAL1', 'KLF1'], 'index': [0, 1, 2]}).to_csv(f/'Target.csv')
    pd.DataFrame({'TF': ['GATA1'], 'index': [0]}).to_csv(f/'TF.csv')
    pd.DataFrame({'TF': [0, 0], 'Target': [1, 2]}).to_csv(f/'Label.csv')
    b = read_genelink_folder(f)
    assert b.genes == ['GATA1', 'TAL1', 'KLF1'] and list(b.edges.target) == ['TAL1', 'KLF1'] and b.expression is None
    pd.DataFrame({'TF': [0], 'Target': [7]}).to_csv(f/'Label.csv')
    with pytest.raises(ValueError, match='outside'): read_genelink_folder(f)
    (f/'TF.csv').unlink()
    with pytest.raises(FileNotFoundError, match='TF.csv'): read_genelink_folder(f)

@pytest.fixture(scope='module')
def tiny(root): return pretrained_scfm(quick=True)

def test_lodo_split_never_shares_a_test_pair(tiny):
    tests = lodo_test_sets(cells=['mDC', 'hHEP'], sizes=[500], networks=['STRING', 'Specific'])
    assert set(tests.cell) == {'mDC', 'hHEP'} and 'hESC' not in set(lodo_test_sets().cell)
    sp = lodo_split(tiny, tests=tests, max_pos=200, seed=1, ratio=2)
    (src, tr), = sp['train']
    assert src.cell == 'hESC' and tr.label.mean() == 0.5 and len(tr) == 400 and set(tr.gene_a) <= set(src.tfs)
    seen = set(zip(tr.gene_a, tr.gene_b)); seen |= {(b, a) for a, b in seen}
    for d, te, rep in sp['tests']:
        assert not seen & set(zip(te.gene_a, te.gene_b)), d.name
        assert (te.label == 0).sum() == 2 * (te.label == 1).sum(), 'exactly 2:1 after dropping'
        assert set(te.gene_a) <= set(d.tfs) and set(te.gene_a) | set(te.gene_b) <= set(d.ctx.genes)
        neg = te[te.label == 0]
        assert not set(zip(neg.gene_a, neg.gene_b)) & set(zip(d.edges.gene_a, d.edges.gene_b)), 'negatives are non-edges'
        r = d.report
        assert r['in_vocab'] + r['excluded'] + r['untrained'] + r['duplicates'] == r['genes']
        assert rep['C1'] + rep['C2'] + rep['C3'] == pytest.approx(1)

def test_multi_source_training_pools_sources(tiny):
    tests = lodo_test_sets(cells=['mHSC-L'], sizes=[500], networks=['STRING'])
    sp = lodo_split(tiny, [('hESC', 'STRING', 500), ('mDC', 'STRING', 500)], tests, max_pos=30)
    assert [d.cell for d, _ in sp['train']] == ['hESC', 'mDC'] and all(len(p) == 60 for _, p in sp['train'])
    assert set(lodo_test_sets([('hESC', 'STRING', 500), ('mDC', 'STRING', 500)]).cell).isdisjoint({'hESC', 'mDC'})

def test_lodo_benchmark_end_to_end(tiny):
    tests = lodo_test_sets(cells=['hHEP'], sizes=[500], networks=['STRING'])
    res = lodo_benchmark(tiny, tests=tests, methods=('Origin-Attn', 'Baseline-Pert', 'Baseline-Emb', 'VVP', 'Ens'), max_pos=40,
                         epochs=5, bank_kw=dict(n_values=2, n_bases=2, attn_cells=4), progress=False)
    r = res.set_index('method')
    assert r.loc['Baseline-Pert', 'note'] == 'a training source has no expression'
    assert set(res[res.kind == 'control'].method) == set(CONTROLS)
    ok = res[res.note == '']
    assert ok.n.nunique() == 1 and (ok.n == 2 * ok.n_pos).all(), 'methods and controls on the same, exactly 1:1 test pairs'
    assert set(ok.method) == {'Origin-Attn', 'Baseline-Emb', 'VVP', 'Ens', *CONTROLS}

def test_ugrn_model_estimator(tiny):
    d = BeelineData(tiny, 'mDC', 'STRING', 500)
    p = d.pairs(1, 0, max_pos=60)
    tr, te = p.iloc[:80], p.iloc[80:]
    um = UgrnModel(tiny, features=('Baseline-Emb', 'VVP', 'Ens'), epochs=3, bank_kw=dict(n_values=2, n_bases=2)).fit(tr, d)
    s = um.predict(te, d)
    assert list(s.columns) == ['Baseline-Emb', 'VVP', 'Ens'] and s.index.equals(te.index) and s.notna().all().all()
    shuffled = te.sample(frac=1, random_state=0)
    np.testing.assert_allclose(um.predict(shuffled, d).loc[te.index].to_numpy(), s.to_numpy(), rtol=1e-5, atol=1e-6)
    tab = um.evaluate(te, d, n_boot=20)
    assert set(tab.method) == {'Baseline-Emb', 'VVP', 'Ens', *CONTROLS} and set(tab.kind) == {'method', 'control'}
    with pytest.raises(ValueError, match='unknown feature'): UgrnModel(tiny, features=('VVQ',))
    with pytest.raises(ValueError, match='both classes'): UgrnModel(tiny, features=('VVP',)).fit(tr[tr.label == 1], d)

def test_all_tf_pairs_universe(tiny):
    d = BeelineData(tiny, 'mHSC-L', 'STRING', 500)
    p = all_tf_pairs(d)
    assert len(p) == len(d.tfs) * (len(d.ctx.genes)) - len(d.tfs) and p.label.sum() == len(d.edges)

def test_beeline_universe_option(tiny):
    tests = lodo_test_sets(cells=['mHSC-GM'], sizes=[500], networks=['STRING'])
    res = lodo_benchmark(tiny, tests=tests, methods=('Baseline-Emb',), max_pos=40, epochs=3, progress=False, universe='beeline', controls=False)
    r = res.iloc[0]
    d = BeelineData(tiny, 'mHSC-GM', 'STRING', 500)
    assert r.n == len(all_tf_pairs(d)) - r.removed_seen and r.density == pytest.approx(r.n_pos / r.n)
    assert r.density < 0.2 and r.epr >= 0 and r.auprc_all == pytest.approx(r.auprc)

def _folder(path, genes, tfs, edges, X=None):
    path.mkdir()
    pd.DataFrame({'Gene': genes, 'index': range(len(genes))}).to_csv(path/'Target.csv')
    pd.DataFrame({'TF': tfs, 'index': [genes.index(t) for t in tfs]}).to_csv(path/'TF.csv')
    pd.DataFrame({'TF': [genes.index(a) for a, _ in edges], 'Target': [genes.index(b) for _, b in edges]}).to_csv(path/'Label.csv')
    if X is not None: pd.DataFrame(X.T, index=genes).to_csv(path/'BL--ExpressionData.csv.gz')
    return path

def test_folders_as_source_and_test_with_all_pairs(tiny, tmp_path):
    rng = np.random.default_rng(0)
    g = sorted(tiny.trained_genes)[:40]
    tfs = g[:6]
    edges = sorted({(t, g[k]) for t in tfs for k in rng.choice(range(6, 40), 4, replace=False)})
    src = _folder(tmp_path/'src', g[:20] + g[20:30], tfs, [e for e in edges if e[1] in g[:30]])
    tst = _folder(tmp_path/'tst', g, tfs, edges, X=np.abs(rng.normal(2, 1, (30, 40))).astype(np.float32))
    res = lodo_benchmark(tiny, str(src), [str(tst)], methods=('Origin-Pert', 'Baseline-Emb', 'VVP', 'GDT', 'Ens'), epochs=2,
                         bank_kw=dict(n_values=2, n_bases=2), progress=False)
    ok = res[res.note == '']
    assert set(ok.method) == {'Origin-Pert', 'Baseline-Emb', 'VVP', 'GDT', 'Ens', *CONTROLS} and (ok.n == 2 * ok.n_pos).all()
    assert res.cell.iloc[0] == 'tst' and res.removed_seen.iloc[0] >= 0
