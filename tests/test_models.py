"Model layer: offline loading and conversion cache, mean pooling properties, hidden states, gradients, generation."
import os, threading, time
os.environ.setdefault('HF_HUB_OFFLINE', '1')

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st, HealthCheck

from genenet import models as M


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    "Tiny models on a shared 2-core box: one torch thread is ~10x faster than two contending ones."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------- mean_pool: properties on random inputs ----------

@st.composite
def hidden_and_mask(draw):
    B, T, d = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(B, T, d, generator=g, dtype=torch.float64)
    lens = draw(st.lists(st.integers(0, T), min_size=B, max_size=B))
    left = draw(st.booleans())   # padding side
    m = torch.zeros(B, T, dtype=torch.long)
    for i, n in enumerate(lens):
        if n and left: m[i, T-n:] = 1
        elif n: m[i, :n] = 1
    return h, m, lens, left

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hidden_and_mask())
def test_mean_pool_is_mean_of_real_tokens(x):
    h, m, lens, left = x
    out = M.mean_pool(h, m)
    assert out.shape == (h.shape[0], h.shape[2])
    for i, n in enumerate(lens):
        rows = h[i][m[i].bool()]
        exp = rows.mean(0) if n else torch.zeros(h.shape[2], dtype=h.dtype)
        assert torch.allclose(out[i], exp)

@settings(max_examples=40, deadline=None)
@given(hidden_and_mask(), st.floats(-1e3, 1e3))
def test_mean_pool_ignores_padding_content(x, junk):
    h, m, _, _ = x
    h2 = torch.where(m.bool().unsqueeze(-1), h, torch.full_like(h, junk))
    assert torch.allclose(M.mean_pool(h, m), M.mean_pool(h2, m))

@settings(max_examples=40, deadline=None)
@given(hidden_and_mask(), st.floats(-10, 10))
def test_mean_pool_of_constant_is_constant_and_bounded(x, c):
    h, m, lens, _ = x
    out = M.mean_pool(torch.full_like(h, c), m)
    for i, n in enumerate(lens):
        assert torch.allclose(out[i], torch.full_like(out[i], c if n else 0.0))
    out = M.mean_pool(h, m)
    for i, n in enumerate(lens):
        if n:
            rows = h[i][m[i].bool()]
            assert (out[i] <= rows.max(0).values + 1e-9).all() and (out[i] >= rows.min(0).values - 1e-9).all()

def test_mean_pool_hand_example():
    h = torch.tensor([[[1., 2.], [3., 4.], [100., 100.]]])
    assert torch.allclose(M.mean_pool(h, torch.tensor([[1, 1, 0]])), torch.tensor([[2., 3.]]))


# ---------- devices, names, errors ----------

def test_device_and_dtype():
    assert M.get_device('cpu') == torch.device('cpu')
    assert M.default_dtype('cpu') == torch.float32 and M.default_dtype('cuda') == torch.bfloat16
    assert M.resolve_model_name('gemma3-4b-it') == 'google/gemma-3-4b-it'
    assert M.resolve_model_name('smollm2-135m') == 'smollm2-135m'
    assert {'smollm2-135m', 'gemma3-270m', 'minilm'} <= set(M.OFFLINE_MODELS)
    for info in M.OFFLINE_MODELS.values(): assert {'package', 'kind'} <= set(info)

def test_missing_offline_package_names_pip_install(monkeypatch):
    monkeypatch.setitem(M.OFFLINE_MODELS, 'nope', dict(package='nope-model-pkg', module='nope_model_pkg_xyz',
                                                       kind='causal_lm', format='gguf', file='x.gguf'))
    with pytest.raises(M.OfflineModelMissing, match='pip install nope-model-pkg'): M.load_causal_lm('nope')
    assert not M.offline_model_available('nope')
    assert not (M.cache_dir('models')/'nope').exists(), 'nothing written for a missing package'

def test_unknown_hf_id_offline_is_clear():
    with pytest.raises(OSError, match='could not load'): M.load_causal_lm('no-such-org/no-such-model-xyz')


# ---------- conversion cache: once, atomic, safe with two converters ----------

def test_conversion_runs_once_with_concurrent_callers(tmp_path, monkeypatch):
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path))
    monkeypatch.setitem(M.OFFLINE_MODELS, 'fake', dict(package='x', module='x', kind='causal_lm', format='gguf', file='f'))
    calls = []
    def fake_convert(name, folder):
        calls.append(name); time.sleep(0.3); (folder/'config.json').write_text('{}')
    monkeypatch.setattr(M, '_convert_into', fake_convert)
    out = []
    ts = [threading.Thread(target=lambda: out.append(M.convert_gguf('fake'))) for _ in range(3)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert calls == ['fake'] and len(set(out)) == 1
    d = out[0]
    assert (d/'config.json').exists() and (d/M._MARKER).exists()
    assert not [p for p in d.parent.iterdir() if p.name.startswith('.converting')], 'no temporary folder left'
    M.convert_gguf('fake'); assert calls == ['fake']

def test_failed_conversion_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path))
    monkeypatch.setitem(M.OFFLINE_MODELS, 'fake', dict(package='x', module='x', kind='causal_lm', format='gguf', file='f'))
    def boom(name, folder): (folder/'half.bin').write_text('x'); raise RuntimeError('killed')
    monkeypatch.setattr(M, '_convert_into', boom)
    with pytest.raises(RuntimeError): M.convert_gguf('fake')
    assert not M.converted_dir('fake').exists()
    assert not [p for p in M.converted_dir('fake').parent.iterdir() if p.name.startswith('.converting')]


# ---------- real offline models ----------

@pytest.fixture(scope='module')
def smol():
    return M.load_causal_lm('smollm2-135m', device='cpu')

@pytest.fixture(scope='module')
def minilm():
    return M.load_text_encoder('minilm', device='cpu')

TEXTS = ['TP53 is a tumour suppressor.', 'MYC', 'GATA1 drives erythroid differentiation in the bone marrow.']

def test_smollm2_loads_frozen_fp32(smol):
    lm, tok = smol
    assert lm.config.hidden_size == 576 and lm.config.num_hidden_layers == 30
    assert lm.dtype == torch.float32 and not lm.training
    assert not any(p.requires_grad for p in lm.parameters())
    assert tok.pad_token is not None and tok.chat_template
    assert (M.converted_dir('smollm2-135m')/M._MARKER).exists()

def test_hidden_states_shapes_and_batch_invariance(smol):
    lm, tok = smol
    H = M.hidden_states(lm, tok, TEXTS, batch_size=3, progress=False)
    assert H.shape == (3, 576) and H.dtype == torch.float32 and torch.isfinite(H).all()
    H1 = torch.cat([M.hidden_states(lm, tok, [t], progress=False) for t in TEXTS])
    assert torch.allclose(H, H1, atol=1e-4)
    L = M.hidden_states(lm, tok, TEXTS, pool='last', layer=-2, progress=False)
    assert L.shape == (3, 576) and not torch.allclose(L, H)
    assert M.hidden_states(lm, tok, [], progress=False).shape == (0, 576)
    with pytest.raises(TypeError): M.hidden_states(lm, tok, ['a', None], progress=False)

def test_gradient_reaches_inputs_embeds_through_frozen_lm(smol):
    lm, tok = smol
    enc = tok(TEXTS[:2], padding=True, return_tensors='pt')
    emb = lm.get_input_embeddings()(enc['input_ids']).detach().requires_grad_(True)
    out = lm(inputs_embeds=emb, attention_mask=enc['attention_mask'])
    out.logits[:, -1].logsumexp(-1).sum().backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    assert all(p.grad is None for p in lm.parameters())
    emb.grad = None
    v = M.pooled_from_embeds(lm, emb, enc['attention_mask'])
    assert v.shape == (2, 576)
    v.sum().backward()
    assert emb.grad.abs().sum() > 0

def test_generate_chat(smol):
    lm, tok = smol
    side = tok.padding_side
    r = M.generate_chat(lm, tok, ['What is the capital of France?', 'Name one gene.'], max_new_tokens=8,
                        system='Answer briefly.', progress=False)
    assert isinstance(r, list) and len(r) == 2 and all(isinstance(x, str) and x for x in r)
    assert M.generate_chat(lm, tok, 'Name one gene.', max_new_tokens=8, system='Answer briefly.', progress=False) == r[1:]
    msgs = [[{'role': 'system', 'content': 'Answer briefly.'}, {'role': 'user', 'content': 'Name one gene.'}]]
    assert M.generate_chat(lm, tok, msgs, max_new_tokens=8, progress=False) == r[1:]
    assert tok.padding_side == side
    s = M.generate_chat(lm, tok, ['Say hi.'] * 2, max_new_tokens=5, temperature=1.0, seed=0, progress=False)
    assert len(s) == 2 and all(isinstance(x, str) for x in s)

def test_minilm_encode_texts(minilm):
    model, tok = minilm
    assert model.config.hidden_size == 384 and not any(p.requires_grad for p in model.parameters())
    E = M.encode_texts(['tumour suppressor protein', 'a protein that suppresses tumours', 'sunny weather today'],
                       encoder=(model, tok), normalize=True, progress=False)
    assert E.shape == (3, 384) and E.dtype == np.float32
    assert np.allclose(np.linalg.norm(E, axis=1), 1, atol=1e-5)
    S = E @ E.T
    assert S[0, 1] > S[0, 2] + 0.2
    E2 = M.encode_texts(['tumour suppressor protein'], encoder='minilm', device='cpu', progress=False, normalize=True)
    assert np.allclose(E2[0], E[0], atol=1e-5)
