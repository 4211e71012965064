"Tests of genenet.scfm: the scGPT-architecture scFM, its checkpoint format and the offline pretraining."
import json, warnings
import numpy as np, pytest, torch, torch.nn as nn

torch.set_num_threads(1)  # the shared 2-core machine: OpenMP spin contention makes 2 threads ~50x slower

from genenet.scfm import (ScGPT, scgpt_vocab, save_scgpt, load_scgpt, check_log_values, MaskedCells,
                          MaskedValueLoss, pretrained_scfm, loss_curve, SCFM_PRESETS)

GENES = ['GATA1', 'TAL1', 'SPI1', 'CEBPA', 'KLF1', 'RUNX1']

@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return ScGPT(scgpt_vocab(), embsize=32, nheads=4, d_hid=64, nlayers=2).eval()

def test_vocab_is_scgpts():
    v = scgpt_vocab()
    assert len(v) == 48_292 + 3 and v['<pad>'] == 48_292 and v['<cls>'] == 48_293
    assert v['TP53'] == json.load(open(__import__('genenet').__path__[0] + '/assets/scgpt_gene_vocab.json'))['TP53']

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

def _scgpt_format_folder(folder, d=16, nhead=2, d_hid=32, nlayers=2, seed=3):
    "A checkpoint folder in scGPT's own format: flash-attention Wqkv names, extra heads, scGPT args.json keys."
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3
    vocab = scgpt_vocab(); n = len(vocab)
    sd = {'encoder.embedding.weight': r(n, d), 'encoder.enc_norm.weight': 1 + r(d), 'encoder.enc_norm.bias': r(d),
          'value_encoder.linear1.weight': r(d, 1), 'value_encoder.linear1.bias': r(d), 'value_encoder.linear2.weight': r(d, d),
          'value_encoder.linear2.bias': r(d), 'value_encoder.norm.weight': 1 + r(d), 'value_encoder.norm.bias': r(d)}
    for l in range(nlayers):
        p = f'transformer_encoder.layers.{l}.'
        sd |= {p+'self_attn.Wqkv.weight': r(3*d, d), p+'self_attn.Wqkv.bias': r(3*d), p+'self_attn.out_proj.weight': r(d, d),
               p+'self_attn.out_proj.bias': r(d), p+'linear1.weight': r(d_hid, d), p+'linear1.bias': r(d_hid),
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
    x = torch.rand(3, 6) * 20
    with torch.no_grad():
        ids = torch.cat([torch.tensor([m.vocab['<cls>']]), m.gene_ids(GENES)[0]])[None].expand(3, -1)
        h = ref(m.encoder(ids) + m.value_encoder(torch.cat([torch.full((3, 1), -2.), x], 1)))
        assert torch.allclose(m.decoder(h)[:, 1:], m.reconstruct(x, GENES), atol=1e-5)
    with pytest.raises(KeyError): load_scgpt(tmp_path/'scgpt', strict_unused=True)

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
    assert len(c) == SCFM_PRESETS['tiny']['epochs'] and np.isfinite(c.train_loss).all()
    assert m.config['embsize'] == SCFM_PRESETS['tiny']['embsize'] and m.value_range[1] > 3
    args = json.loads((m.load_report and __import__('pathlib').Path(m.load_report['folder'])/'args.json').read_text())
    corpus = args['pretraining']['corpus']
    assert 'pbmc68k_reduced' in corpus and any(k.startswith('BEELINE mDC') for k in corpus)
    assert all(v['in_vocab'] + v['excluded'] == v['genes'] for v in corpus.values())
    x = torch.rand(2, 4) * 3
    with torch.no_grad(): y = m.reconstruct(x, ['GATA1', 'SPI1', 'CEBPA', 'KLF1'])
    assert torch.isfinite(y).all()
