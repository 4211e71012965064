"GRASP: cached == full (fp32 and bf16), bounded-memory training path, estimator properties, protocols and analyses."
import warnings
import numpy as np
import pandas as pd
import pytest
import torch

from genenet.models import load_causal_lm
from genenet.grasp import (GeneVectorTable, MissingGenesError, GraspPrompt, TaskSoftPrompt, PoolingHead, build_queries,
                           tokenize_queries, clean_pairs, pair_key)
from genenet.grasp_cache import GraspClassifier, QueryCache, choose_train_path, query_cache_bytes
from genenet.grasp_model import GraspModel, pair_inputs, predict_proba, method_queries
from genenet.grasp_tasks import (task_pairs, ksr_positives, KSR_SOURCES, regulatory_pairs, per_gene_error, delta_error,
                                 hidden_positives, hidden_positive_stats, perturbation_effects, statistical_eval, grnboost2_edges)
from genenet.metrics import binary_metrics

PAIRS = pd.DataFrame({'gene_a': ['CDK1', 'MAPK1', 'CSNK2A1', 'AKT1'], 'gene_b': ['RB1', 'ELK1', 'TP53', 'GSK3B']})
GENES = sorted(set(PAIRS.gene_a) | set(PAIRS.gene_b))


def _classifier(lm, tok, query_len, prompt_cls=GraspPrompt, position='suffix'):
    d = lm.config.hidden_size
    tab = GeneVectorTable(GENES, np.random.default_rng(0).normal(size=(len(GENES), d)))
    ids, mask = tokenize_queries(tok, build_queries(PAIRS, 'ksr'), query_len)
    torch.manual_seed(0)
    prompt = GraspPrompt(d, d, r=16) if prompt_cls is GraspPrompt else TaskSoftPrompt(d)
    clf = GraspClassifier(lm, tab, query_len=query_len, prompt=prompt, position=position)
    batch = dict(input_ids=ids, attention_mask=mask, a=tab.index(PAIRS.gene_a), b=tab.index(PAIRS.gene_b))
    return clf, batch


@pytest.fixture(scope='module')
def smollm():
    torch.set_num_threads(1)
    return load_causal_lm('smollm2-135m', device='cpu', n_layers=4)


def test_cached_per_batch_and_full_agree_on_smollm2(smollm, tmp_path):
    clf, batch = _classifier(*smollm, 80)
    with torch.no_grad():
        full = clf.forward_full(batch['input_ids'], batch['attention_mask'], batch['a'], batch['b'])
        per_batch = clf(batch)
        clf.cache = QueryCache.build(smollm[0], batch['input_ids'], batch['attention_mask'], progress=False)
        cached = clf(batch)
        QueryCache.build(smollm[0], batch['input_ids'], batch['attention_mask'], storage='disk', path=tmp_path, progress=False)
        clf.cache = QueryCache.open(tmp_path)
        disk = clf(batch)
        swapped = clf({**batch, 'a': batch['b'], 'b': batch['a']})
    assert (full - per_batch).abs().max() < 1e-4 and (full - cached).abs().max() < 1e-4
    assert (full - disk).abs().max() < 0.05 * full.abs().max() + 0.02          # bf16 on disk
    assert (swapped - cached).abs().max() > 1e-4                               # the check above is not vacuous
    assert clf.cache.hidden.dtype == np.uint16 and clf.cache.storage == 'disk'


def test_gradients_reach_prompt_and_head_not_backbone(smollm):
    clf, batch = _classifier(*smollm, 80)
    out = clf(batch)
    torch.nn.functional.binary_cross_entropy_with_logits(out, torch.tensor([1., 0., 1., 0.])).backward()
    pr = clf.prompt
    for name, p in [('bases', pr.bases), ('W_c gene', pr.gene.coef.weight), ('W_c rel', pr.rel.coef.weight),
                    ('alpha', pr.gene.mix.weight), ('head', clf.head.mlp[0].weight), ('head a', clf.head.a)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None and not p.requires_grad for p in smollm[0].parameters())
    assert {n.split('.')[0] for n, p in clf.named_parameters() if p.requires_grad} == {'prompt', 'head'}


def test_prefix_baseline_uses_full_recompute(smollm):
    clf, batch = _classifier(*smollm, 80, TaskSoftPrompt, 'prefix')
    with torch.no_grad():
        assert torch.allclose(clf(batch), clf.forward_full(batch['input_ids'], batch['attention_mask'], batch['a'], batch['b']))


@pytest.mark.parametrize('name', ['tiny-random/gemma3', 'tiny-random/llama'])
@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_half_precision_cached_and_full_agree_without_autocast(name, dtype):
    lm, tok = load_causal_lm(name, device='cpu', dtype=dtype)
    clf, batch = _classifier(lm, tok, 160)   # 160 > Gemma-3 tiny sliding window (64): the window is respected in both paths
    clf.prompt.float(); clf.head.float()
    with torch.no_grad():
        full = clf.forward_full(batch['input_ids'], batch['attention_mask'], batch['a'], batch['b'])
        clf.cache = QueryCache.build(lm, batch['input_ids'], batch['attention_mask'], progress=False)
        assert clf.cache.kv.dtype == dtype
        cached = clf(batch)
    assert full.dtype == cached.dtype == torch.float32
    assert (full - cached).abs().max() < 0.02 + 0.02 * full.abs().max()
    p = predict_proba(clf, batch)                                        # no autocast anywhere
    assert p.shape == (4,) and np.isfinite(p).all()


def test_full_precision_gemma3_matches_past_sliding_window():
    lm, tok = load_causal_lm('tiny-random/gemma3', device='cpu')
    assert type(lm).__name__ == 'Gemma3ForCausalLM'                      # the text model of the multimodal checkpoint
    clf, batch = _classifier(lm, tok, 160)
    with torch.no_grad():
        full = clf.forward_full(batch['input_ids'], batch['attention_mask'], batch['a'], batch['b'])
        assert (clf(batch) - full).abs().max() < 1e-5


def test_bos_starts_every_query():
    lm, tok = load_causal_lm('tiny-random/gemma3', device='cpu')
    ids, mask = tokenize_queries(tok, build_queries(PAIRS, 'ppi'), 160)
    first = ids[torch.arange(len(ids)), mask.argmax(1)]
    assert tok.bos_token_id is not None and (first == tok.bos_token_id).all()


def test_cache_budget_decides_the_training_path():
    cfg = load_causal_lm('tiny-random/llama', device='cpu')[0].config
    need = query_cache_bytes(cfg, 1000, 80, torch.float32)
    assert choose_train_path(cfg, 1000, 80, 'cpu', budget_gb=need / 2**30)['path'] == 'cached'
    assert choose_train_path(cfg, 1000, 80, 'cpu', budget_gb=0.99 * need / 2**30)['path'] == 'per_batch'
    assert choose_train_path(cfg, 1000, 80, 'cuda')['path'] == 'per_batch'
    assert choose_train_path(cfg, 10, 80, 'cpu', storage='disk')['dtype'] == torch.bfloat16


def _toy_pairs(n=24, seed=0):
    rng = np.random.default_rng(seed)
    genes = ['CDK1', 'MAPK1', 'CSNK2A1', 'AKT1', 'RB1', 'ELK1', 'TP53', 'GSK3B', 'MYC', 'JUN', 'FOS', 'EGFR']
    p = pd.DataFrame({'gene_a': rng.choice(genes[:6], n), 'gene_b': rng.choice(genes[6:], n)}).drop_duplicates()
    return p.assign(label=np.arange(len(p)) % 2).reset_index(drop=True)


def test_estimator_rows_aligned_order_free_and_paths_agree():
    lm, tok = load_causal_lm('tiny-random/llama', device='cpu')
    pairs = _toy_pairs()
    kw = dict(backbone_name='tiny-random/llama', task='ksr', r=8, query_len=160, epochs=2, batch_size=8,
              text_source='offline', text_max_length=32, progress=False)
    cached = GraspModel((lm, tok), **kw).fit(pairs)
    per_batch = GraspModel((lm, tok), cache_budget_gb=0, **kw).fit(pairs)
    assert cached.plan_['path'] == 'cached' and per_batch.plan_['path'] == 'per_batch'
    assert np.allclose(cached.history_.train_loss, per_batch.history_.train_loss, atol=1e-5)
    p = cached.predict(pairs)
    perm = np.random.default_rng(3).permutation(len(pairs))
    assert np.allclose(cached.predict(pairs.iloc[perm])[np.argsort(perm)], p, atol=1e-6)
    lr = cached.history_.lr.to_numpy()
    assert lr[-1] < lr.max() / 2                                         # linear decay after warm-up (HF default)
    new = pd.DataFrame({'gene_a': ['CDK1', 'NOTAGENE1'], 'gene_b': ['EGFR', 'TP53']})
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        q = cached.predict(new)
    assert np.isfinite(q[0]) and np.isnan(q[1])                          # unseen gene with text gets a vector; no text → NaN
    ev = cached.evaluate(pairs, n_boot=0)
    assert list(ev.method) == ['grasp', 'degree', 'node_identity', 'input_similarity', 'random']
    assert set(ev.kind) == {'method', 'control'}


def test_role_matched_ksr_defeats_the_kinase_detector():
    pairs = task_pairs('ksr', n_pos=300, seed=1)
    kinases = set(pairs[pairs.label == 1].gene_a)
    rule = pairs.gene_a.isin(kinases).astype(float)
    assert abs(binary_metrics(pairs.label, rule + 1e-9 * np.random.default_rng(0).random(len(pairs)))['roc_auc'] - 0.5) < 0.05
    known = set()
    for s in KSR_SOURCES:
        p = ksr_positives(s); known |= set(pair_key(p.gene_a, p.gene_b, directed=True))
    neg = pairs[pairs.label == 0]
    assert not set(pair_key(neg.gene_a, neg.gene_b, directed=True)) & known
    und = task_pairs('ksr', n_pos=300, seed=1, ksr_protocol='undirected')
    undirected_known = {tuple(sorted(k)) for k in known}
    n = und[und.label == 0]
    assert not set(pair_key(n.gene_a, n.gene_b)) & undirected_known and und.attrs['protocol']['negatives'] == 'uniform'


def test_regulatory_pairs_remove_ppi_training_pairs_and_keep_tf_sources():
    base = regulatory_pairs('trrust', n_pos=200, seed=0)
    assert set(base[base.label == 0].gene_a) <= set(base[base.label == 1].gene_a)
    excl = base.iloc[:20][['gene_b', 'gene_a']].rename(columns={'gene_b': 'gene_a', 'gene_a': 'gene_b'})
    out = regulatory_pairs('trrust', exclude=excl, n_pos=200, seed=0)
    assert out.attrs['n_removed'] == 20 and len(out) == len(base) - 20


def test_hidden_positives_follow_the_paper_protocol():
    train = pd.DataFrame({'gene_a': ['A', 'B', 'C', 'D', 'E'], 'gene_b': ['X', 'Y', 'Z', 'W', 'V'], 'label': [1, 0, 0, 0, 0]})
    g = hidden_positives(train, pd.DataFrame({'gene_a': ['Y', 'X', 'E'], 'gene_b': ['B', 'A', 'V']}))
    assert g.group.tolist() == ['hidden positive', 'true negative', 'true negative', 'hidden positive']
    hs = hidden_positive_stats([1, 1, 2, 2], [0, 0, 1, 1])
    assert hs['wasserstein'] == pytest.approx(1.0) and hs['cohens_d'] == pytest.approx(1/np.std([0, 0, 1, 1], ddof=1))


def test_per_gene_and_delta_error():
    pairs = pd.DataFrame({'gene_a': ['A', 'A', 'B'], 'gene_b': ['B', 'C', 'C'], 'label': [1, 0, 1]})
    pg = per_gene_error(pairs, [0.9, 0.9, 0.1]).set_index('gene')
    assert pg.loc['A', 'error_rate'] == 0.5 and pg.loc['C', 'error_rate'] == 1.0
    de = delta_error(pairs, [0.9, 0.9, 0.1], [0.9, 0.1, 0.9], pairs[pairs.label == 1]).set_index('gene')
    assert de.loc['C', 'delta'] == 1.0 and de.loc['A', 'delta'] == 0.5 and de.loc['C', 'degree'] == 1


def test_statistical_eval_planted_edge_beats_null_edge():
    import anndata as ad
    rng = np.random.default_rng(1)
    cond = np.array(['control'] * 150 + ['TF1'] * 150)
    X = rng.normal(0, 1, (300, 3)); X[150:, 0] -= 2; X[:, 1] += 0.8 * X[:, 0]
    a = ad.AnnData(X, obs=pd.DataFrame({'condition': cond}, index=[f'c{i}' for i in range(300)]), var=pd.DataFrame(index=['TF1', 'T1', 'T2']))
    ef = perturbation_effects(a, pd.DataFrame({'gene_a': ['TF1', 'TF1'], 'gene_b': ['T1', 'T2']}))
    assert ef.wasserstein[0] > ef.wasserstein[1] and ef.p[0] < 0.001 < ef.p[1]
    good, bad = (statistical_eval(ef.assign(s=s), 's', k=1) for s in ([1, 0], [0, 1]))
    assert good['mean_wasserstein'] > bad['mean_wasserstein'] and good['false_omission_rate'] < bad['false_omission_rate']


def test_grnboost2_ranks_the_planted_regulator_first():
    import anndata as ad
    rng = np.random.default_rng(2)
    E = rng.normal(0, 1, (400, 6))
    E[:, 5] = np.exp(-E[:, 1]**2) * 2 + 0.3 * rng.normal(0, 1, 400)   # target = f(TF1) + noise, non-monotone in TF1
    a = ad.AnnData(E, var=pd.DataFrame(index=['TF0', 'TF1', 'TF2', 'TF3', 'TF4', 'T']))
    g = grnboost2_edges(a, ['TF0', 'TF1', 'TF2', 'TF3', 'TF4'], targets=['T'], seed=3, progress=False)
    g = g.sort_values('score', ascending=False)
    assert g.gene_a.iloc[0] == 'TF1' and g.score.iloc[0] > 3 * g.score.iloc[1]
    assert set(g.gene_a) == {'TF0', 'TF1', 'TF2', 'TF3', 'TF4'} and (g.n_estimators > 0).all()


def test_bad_input():
    tab = GeneVectorTable(['TP53', 'MDM2'], np.eye(2))
    pairs = pd.DataFrame({'gene_a': ['TP53', 'NOPE1'], 'gene_b': ['MDM2', 'NOPE2'], 'label': [1, 0]})
    with pytest.raises(MissingGenesError, match='NOPE1'):
        tab.filter_pairs(pairs)
    with pytest.raises(ValueError, match='self pairs'):
        clean_pairs(pd.DataFrame({'gene_a': ['TP53'], 'gene_b': ['TP53']}))
    with pytest.raises(ValueError, match='unknown method'):
        GraspModel('tiny-random/llama', method='nope')
    with pytest.raises(KeyError, match='input_ids'):
        GraspClassifier(load_causal_lm('tiny-random/llama', device='cpu')[0], tab, query_len=8)({'a': torch.tensor([0])})
    with pytest.raises(RuntimeError, match='fit'):
        GraspModel('tiny-random/llama').predict(pairs)


def test_grnboost2_default_window_is_arboretos():
    "grnboost2_edges keeps arboreto's early-stopping window as its default (written out to avoid importing dask)."
    import inspect
    from arboreto.core import EARLY_STOP_WINDOW_LENGTH
    from genenet.grasp_tasks import grnboost2_edges
    assert inspect.signature(grnboost2_edges).parameters['early_stop_window_length'].default == EARLY_STOP_WINDOW_LENGTH
