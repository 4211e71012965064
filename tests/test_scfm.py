"Tests of genenet.scfm (the scGPT-architecture scFM, its checkpoint format) and genenet.scfm_pretrain (the offline pretraining)."
import json, warnings
import numpy as np, pytest, torch, torch.nn as nn

torch.set_num_threads(1)  # the shared 2-core machine: OpenMP spin contention makes 2 threads ~50x slower

from genenet.scfm import ScGPT, scgpt_vocab, save_scgpt, load_scgpt, check_log_values, bin_values
from genenet.scfm_pretrain import (MaskedCells, MaskedValueLoss, pretrained_scfm, loss_curve, SCFM_PRESETS, extend_vocab,
                                   benchmark_genes, pretraining_report, pretraining_corpus, masked_value_error, split_cells)

GENES = ['GATA1', 'TAL1', 'SPI1', 'CEBPA', 'KLF1', 'RUNX1']

@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return ScGPT(scgpt_vocab(), embsize=32, nheads=4, d_hid=64, nlayers=2).eval()

def test_vocab_is_scgpts():
    v = scgpt_vocab()
    assert len(v) == 48_292 + 3 and v['<pad>'] == 48_292 and v['<cls>'] == 48_293
    assert sorted(v.values()) == list(range(len(v))), 'ids are unique and contiguous'
    assert {'TP53', 'MDM2', 'GATA1', 'POU5F1'} <= set(v) and not any(k.startswith('<') for k in v if v[k] < 48_292)

def test_extend_vocab_appends_missing_genes_only():
    v = {'A': 0, 'B': 1, '<pad>': 2}
    e = extend_vocab(v, ['b', 'C', 'c', 'D'])
    assert e == {'A': 0, 'B': 1, '<pad>': 2, 'C': 3, 'D': 4} and v == {'A': 0, 'B': 1, '<pad>': 2}

def test_bin_values_is_per_cell_quantile_binning():
    X = np.array([[0., 1., 2., 3., 4.], [0., 0., 10., 10., 20.], [0., 0., 0., 0., 0.]], np.float32)
    B = bin_values(X, 5)
    assert B[0].tolist() == [0, 1, 2, 3, 4], 'distinct values -> consecutive bins 1..n_bins-1'
    assert (B[X == 0] == 0).all() and B[1, 2] == B[1, 3] < B[1, 4] == 4 and (B[2] == 0).all()
    assert np.array_equal(bin_values(X * 7.3, 5), B), 'binning is invariant to a per-cell scale'

def test_reconstruct_is_differentiable(model):
    x = (torch.rand(4, 6) * 5).requires_grad_()
    y = model.reconstruct(x, GENES)
    assert y.shape == (4, 6)
    g, = torch.autograd.grad(y[:, 3].sum(), x)
    assert torch.isfinite(g).all() and (g[:, [0, 1, 2, 4, 5]].abs().sum() > 0), 'gradient reaches the other genes\' values'
    # a finite-difference check of one entry
    h, i = 1e-2, 1
    xp, xm = x.detach().clone(), x.detach().clone(); xp[0, i] += h; xm[0, i] -= h
    with torch.no_grad(): fd = (model.reconstruct(xp, GENES)[0, 3] - model.reconstruct(xm, GENES)[0, 3]) / (2*h)
    assert abs(fd.item() - g[0, i].item()) <= 1e-2 * max(abs(fd.item()), 1e-3) + 1e-4

def test_attention_maps_shapes_and_fused_path(model):
    x = torch.rand(2, 6) * 5
    A = model.attention_maps(x, GENES)
    assert A.shape == (2, 2, 4, 6, 6) and (A >= 0).all() and (A.sum(-1) <= 1 + 1e-5).all()
    with torch.no_grad():
        ids = model.gene_ids(GENES)[0]
        assert torch.allclose(model(ids, x)[0], model(ids, x, need_weights=True)[0], atol=1e-5)

def test_out_of_vocab_genes_are_reported(model):
    with pytest.raises(KeyError, match='1 of 3 genes'): model.gene_ids(['GATA1', 'TAL1', 'XX_NOT_A_GENE'])
    ids, missing = model.gene_ids(['gata1', 'XX_NOT_A_GENE'], errors='report')
    assert missing == ['XX_NOT_A_GENE'] and ids[0] == model.vocab['GATA1'] and ids[1] == -1

def test_checkpoint_round_trip(model, tmp_path):
    save_scgpt(model, tmp_path/'ck')
    assert {p.name for p in (tmp_path/'ck').iterdir()} == {'vocab.json', 'args.json', 'best_model.pt'}
    m2 = load_scgpt(tmp_path/'ck')
    x = torch.rand(3, 6) * 4
    with torch.no_grad(): assert torch.equal(model.reconstruct(x, GENES), m2.reconstruct(x, GENES))
    assert m2.config == model.config and not any(p.requires_grad for p in m2.parameters())
    save_scgpt(m2, tmp_path/'ck')  # overwrite in place (atomic replace)
    assert not list(tmp_path.glob('.ck.*')) and not (tmp_path/'ck.old').exists()

def _scgpt_format_folder(folder, d=16, nhead=2, d_hid=32, nlayers=2, seed=3, layout='flash'):
    "A checkpoint folder in scGPT's own format: attention keys in `layout` ('torch', 'flash' Wqkv, 'flash_impl' _impl.Wqkv), extra heads."
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3
    vocab = scgpt_vocab(); n = len(vocab)
    sd = {'encoder.embedding.weight': r(n, d), 'encoder.enc_norm.weight': 1 + r(d), 'encoder.enc_norm.bias': r(d),
          'value_encoder.linear1.weight': r(d, 1), 'value_encoder.linear1.bias': r(d), 'value_encoder.linear2.weight': r(d, d),
          'value_encoder.linear2.bias': r(d), 'value_encoder.norm.weight': 1 + r(d), 'value_encoder.norm.bias': r(d)}
    for l in range(nlayers):
        p = f'transformer_encoder.layers.{l}.'
        a = p + ('self_attn._impl.' if layout == 'flash_impl' else 'self_attn.'); q = a + ('in_proj_' if layout == 'torch' else 'Wqkv.')
        sd |= {q+'weight': r(3*d, d), q+'bias': r(3*d), a+'out_proj.weight': r(d, d), a+'out_proj.bias': r(d), p+'linear1.weight': r(d_hid, d), p+'linear1.bias': r(d_hid),
               p+'linear2.weight': r(d, d_hid), p+'linear2.bias': r(d), p+'norm1.weight': 1 + r(d), p+'norm1.bias': r(d),
               p+'norm2.weight': 1 + r(d), p+'norm2.bias': r(d)}
    for i in (0, 2, 4): sd |= {f'decoder.fc.{i}.weight': r(1 if i == 4 else d, d), f'decoder.fc.{i}.bias': r(1 if i == 4 else d)}
    sd |= {'cls_decoder._decoder.0.weight': r(d, d), 'mvc_decoder.gene2query.weight': r(d, d), 'mvc_decoder.W.weight': r(d, d)}
    folder.mkdir(parents=True)
    torch.save(sd, folder/'best_model.pt')
    (folder/'vocab.json').write_text(json.dumps({k: v for k, v in vocab.items() if not k.startswith('<')}))  # as scGPT ships it
    (folder/'args.json').write_text(json.dumps(dict(embsize=d, nheads=nhead, d_hid=d_hid, nlayers=nlayers, n_layers_cls=3, dropout=0.2,
        pad_token='<pad>', pad_value=-2, mask_value=-1, n_bins=51, input_emb_style='continuous', fast_transformer=True)))
    return sd

def test_loads_scgpt_format_and_matches_torch_transformer(tmp_path):
    sd = _scgpt_format_folder(tmp_path/'scgpt')
    m = load_scgpt(tmp_path/'scgpt')
    assert m.value_range == (0.0, 50.0)
    assert set(m.load_report['unused']) == {'cls_decoder._decoder.0.weight', 'mvc_decoder.gene2query.weight', 'mvc_decoder.W.weight'}
    ref = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, 0.0, batch_first=True), 2, enable_nested_tensor=False).eval()
    ref.load_state_dict({k[len('transformer_encoder.'):].replace('Wqkv.', 'in_proj_'): v for k, v in sd.items() if k.startswith('transformer_encoder.')})
    assert m.input_values == 'binned'
    x = torch.rand(3, 6) * 20
    with torch.no_grad():
        ids = torch.cat([torch.tensor([m.vocab['<cls>']]), m.gene_ids(GENES)[0]])[None].expand(3, -1)
        h = ref(m.encoder(ids) + m.value_encoder(torch.cat([torch.full((3, 1), -2.), x], 1)))
        assert torch.allclose(m.decoder(h)[:, 1:], m.reconstruct(x, GENES), atol=1e-5)
    with pytest.raises(KeyError): load_scgpt(tmp_path/'scgpt', strict_unused=True)

@pytest.mark.parametrize('layout', ['torch', 'flash_impl'])
def test_every_attention_key_layout_loads_to_the_same_model(tmp_path, layout):
    _scgpt_format_folder(tmp_path/'flash')                      # same seed -> same weights
    _scgpt_format_folder(tmp_path/layout, layout=layout)
    x = torch.rand(2, 6) * 20
    with torch.no_grad():
        assert torch.equal(load_scgpt(tmp_path/'flash').reconstruct(x, GENES), load_scgpt(tmp_path/layout).reconstruct(x, GENES))

def test_args_without_n_bins_is_a_clear_error(tmp_path):
    _scgpt_format_folder(tmp_path/'a')
    a = json.loads((tmp_path/'a'/'args.json').read_text()); del a['n_bins']; (tmp_path/'a'/'args.json').write_text(json.dumps(a))
    with pytest.raises(ValueError, match='n_bins'): load_scgpt(tmp_path/'a')

def test_binned_model_bins_expression_continuous_model_does_not(tmp_path):
    _scgpt_format_folder(tmp_path/'a')
    X = np.abs(np.random.default_rng(0).normal(2, 1, (4, 6))).astype(np.float32)
    assert np.array_equal(load_scgpt(tmp_path/'a').prepare_values(X), bin_values(X, 51))
    m = ScGPT({'A': 0, '<pad>': 1, '<cls>': 2}, embsize=8, nheads=2, d_hid=8, nlayers=1)
    assert m.input_values == 'continuous' and np.array_equal(m.prepare_values(X), X)

def test_embedding_rows_are_raw(model):
    E = model.embedding_rows(['TP53', 'MDM2'])
    assert torch.equal(E, model.encoder.embedding.weight[[model.vocab['TP53'], model.vocab['MDM2']]])
    assert not torch.allclose(E, model.gene_embeddings(['TP53', 'MDM2']))

def test_missing_or_misshaped_parameters_raise(tmp_path):
    sd = _scgpt_format_folder(tmp_path/'a')
    del sd['value_encoder.linear2.bias']; torch.save(sd, tmp_path/'a'/'best_model.pt')
    with pytest.raises(KeyError, match='value_encoder.linear2.bias'): load_scgpt(tmp_path/'a')
    sd = _scgpt_format_folder(tmp_path/'b'); sd['decoder.fc.0.weight'] = torch.zeros(3, 3); torch.save(sd, tmp_path/'b'/'best_model.pt')
    with pytest.raises(ValueError, match='shape mismatch'): load_scgpt(tmp_path/'b')
    with pytest.raises(FileNotFoundError): load_scgpt(tmp_path/'nowhere')

def test_bad_expression_is_refused():
    with pytest.raises(ValueError, match='NaN'): check_log_values(np.array([[1.0, np.nan]]), 'x')
    with pytest.raises(ValueError, match='negative'): check_log_values(np.array([[1.0, -2.0]]), 'x')
    assert check_log_values(np.array([[0.0, 3.0]])).dtype == np.float32

def test_masked_cells_and_loss():
    corpus = [dict(name='toy', genes=['GATA1', 'TAL1', 'NOT_A_GENE', 'SPI1'], X=np.abs(np.random.default_rng(0).normal(2, 1, (10, 4))).astype(np.float32))]
    m = ScGPT({'GATA1': 0, 'TAL1': 1, 'SPI1': 2, '<pad>': 3, '<cls>': 4, '<eoc>': 5}, embsize=8, nheads=2, d_hid=16, nlayers=1)
    ds = MaskedCells(corpus, m.vocab, n_ctx=3, mask_ratio=0.5)
    assert ds.report['toy'] == dict(genes=4, in_vocab=3, excluded=1, cells=10)
    it = ds[0]
    assert it['ids'].shape == (3,) and torch.all(it['values'][it['mask']] == -1) and torch.all(it['values'][~it['mask']] == it['target'][~it['mask']])
    b = torch.utils.data.default_collate([ds[i] for i in range(8)])
    loss = MaskedValueLoss(m)(b)
    assert loss.ndim == 0 and torch.isfinite(loss)

def test_tiny_pretrained_model(root):
    m = pretrained_scfm(quick=True)   # built on first use (seconds), then read from the cache
    c = loss_curve(m)
    assert len(c) == SCFM_PRESETS['tiny']['epochs'] and np.isfinite(c[['train_loss', 'heldout_loss']].to_numpy()).all()
    assert m.config['embsize'] == SCFM_PRESETS['tiny']['embsize'] and m.value_range[1] > 3 and m.input_values == 'continuous'
    rep = pretraining_report(m); corpus = rep['corpus']
    assert {'pbmc68k_reduced', 'Norman 2019 + McFaline 2023', 'BEELINE mDC', 'BEELINE hHEP'} <= set(corpus)
    assert all(v['in_vocab'] == v['genes'] for v in corpus.values()), 'the vocabulary covers every corpus gene'
    assert {'masked_mse', 'gene_mean_mse', 'cell_mean_mse'} <= set(rep['heldout'])
    # every benchmark gene has a token; the trained ones are exactly the genes some corpus dataset measures
    bg = benchmark_genes()
    assert m.gene_ids(bg, errors='report')[1] == []
    measured = {g.upper() for d in pretraining_corpus(max_cells=2) for g in d['genes']}
    assert {g.upper() for g in m.trained_genes} == measured
    f = __import__('pathlib').Path(m.load_report['folder'])
    assert not f.with_name(f.name + '.ckpt').exists(), 'the resume checkpoint is removed after a build'

def test_split_cells_and_heldout_error():
    rng = np.random.default_rng(0)
    corpus = [dict(name='toy', genes=['GATA1', 'TAL1', 'SPI1'], X=np.abs(rng.normal(2, 1, (100, 3))).astype(np.float32))]
    tr, ho = split_cells(corpus, 0.1)
    assert len(tr[0]['X']) == 90 and len(ho[0]['X']) == 10
    m = ScGPT({'GATA1': 0, 'TAL1': 1, 'SPI1': 2, '<pad>': 3, '<cls>': 4, '<eoc>': 5}, embsize=8, nheads=2, d_hid=16, nlayers=1).eval()
    ds = MaskedCells(ho, m.vocab, n_ctx=3, mask_ratio=0.5, fixed=True)
    a, b = ds[3], ds[3]
    assert torch.equal(a['mask'], b['mask']) and torch.equal(a['ids'], b['ids']), 'held-out items are fixed'
    e = masked_value_error(m, ds, MaskedCells(tr, m.vocab).gene_means())
    assert e['n_masked'] > 0 and e['gene_mean_mse'] < e['cell_mean_mse'] + 5 and np.isfinite(e['masked_mse'])
