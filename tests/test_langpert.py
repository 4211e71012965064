"LangPert: parser robustness, cache durability, HTTP backend, aggregation/metrics, CV leakage, real-data baselines."
import json, os, signal, subprocess, sys, textwrap, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

from genenet.core import DiskCache
from genenet.langpert import (parse_reply, build_prompt, knn_json_schema, aggregate, CachedLLM, ReplayBackend,
                              OpenAIBackend, LlamaCppBackend, LangPert, predict_from_neighbours)
from genenet.langpert_eval import (delta_metrics, cv_splits, run_cv, summarise_cv, mean_selector, oracle_selector,
                                   random_selector, langpert_selector, rank_metrics)

CANDS = ['MAP2K3', 'MAP2K6', 'SGK1', 'KLF1', 'MAPK1', 'TGFBR2']

# ---------------------------------------------------------------- parser on hostile replies
_gene = st.sampled_from(CANDS + ['TP53', 'map2k3', ' KLF1 ', '1. SGK1', '', 'MAPK3', 'null'])
_item = st.one_of(_gene, st.integers(), st.none(), st.floats(allow_nan=True), st.text(max_size=8),
                  st.fixed_dictionaries({'gene': _gene}))
_obj = st.fixed_dictionaries({'reasoning': st.text(max_size=30), 'kNN': st.lists(_item, max_size=12)})

def _render(obj, style):
    s = json.dumps(obj)
    if style == 1: s = f'```json\n{s}\n```'
    if style == 2: s = f'Sure, here you go: {s} Hope it helps!'
    if style == 3: s = s.replace('"', "'")
    if style == 4: s = s.replace(']', ',]')
    if style == 5: s = s[:max(1, len(s) * 2 // 3)]   # truncated by max_new_tokens
    return s

def _check(r, raw_list=None):
    assert isinstance(r.genes, list) and len(r.genes) == len(set(r.genes))
    assert set(r.genes) <= set(CANDS) and 'MAPK3' not in r.genes
    assert all(set(d) == {'name', 'reason'} for d in r.dropped)
    if raw_list is not None and r.status in ('json', 'repaired'):
        # every proposed item is either kept or recorded as dropped
        assert len(r.genes) + len(r.dropped) == r.n_proposed == len(raw_list)

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=_obj, style=st.integers(0, 5))
def test_parser_structured_junk(obj, style):
    r = parse_reply(_render(obj, style), CANDS, query='MAPK3', normalise=False)
    _check(r, obj['kNN'] if style in (0, 1, 2) else None)
    if style in (0, 1, 2):
        assert r.status == 'json'
        mentions = any(c.lower() in json.dumps(x).lower() for x in obj['kNN'] for c in CANDS)
        if not mentions: assert not r.ok            # nothing offered was named: no neighbours
        if any(isinstance(x, str) and x in CANDS for x in obj['kNN']): assert r.ok

@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parser_random_text_never_crashes(text):
    _check(parse_reply(text, CANDS, query='MAPK3', normalise=False))

@settings(max_examples=100, deadline=None)
@given(st.text(alphabet='{}[]",\': kNN abc\n`', max_size=200))
def test_parser_bracket_soup_never_crashes(text):
    _check(parse_reply(text, CANDS, normalise=False))

def test_parser_records_drops_and_order():
    r = parse_reply('{"reasoning": "r", "kNN": ["KLF1", "TP53", "klf1", "MAPK3", "SGK1", 7]}', CANDS, query='MAPK3')
    assert r.genes == ['KLF1', 'SGK1']
    assert [(d['name'], d['reason']) for d in r.dropped] == [
        ('TP53', 'not offered'), ('klf1', 'duplicate'), ('MAPK3', 'query gene'), ('7', 'not a gene name')]
    assert r.raw.startswith('{"reasoning"') and r.reasoning == 'r'
    for raw in ['{"kNN": []}', '', '[]', '{}', 'kNN:', '{"kNN": "   "}']:
        r = parse_reply(raw, CANDS)
        assert r.genes == [] and not r.ok

def test_parser_maps_previous_symbols():
    # aliases and the previous symbol map to the offered symbol through the shared normaliser (NCBI 2016 table)
    pytest.importorskip('genenet.genes')
    r = parse_reply('{"kNN": ["MLK4", "sgk", "ERK2", "TP53"]}', ['KIAA1804', 'SGK1', 'MAPK1'])
    assert r.genes == ['KIAA1804', 'SGK1', 'MAPK1'], r.dropped
    assert r.dropped == [{'name': 'TP53', 'reason': 'not offered'}]
    assert parse_reply('{"kNN": ["MLK4"]}', ['KIAA1804'], normalise=False).genes == []

def test_prompts_and_schema():
    for cl in ('k562', 'rpe1'):
        p = build_prompt('MYC', CANDS, cl)
        assert ', '.join(CANDS) in p and 'Provide ONLY ONE JSON response' in p and '"reasoning"' in p and '5-10' in p
    s = knn_json_schema(CANDS)
    assert s['properties']['kNN']['items']['enum'] == CANDS and s['required'] == ['reasoning', 'kNN']

# ---------------------------------------------------------------- cache durability
_WORKER = textwrap.dedent('''
    import sys
    from genenet.langpert import CachedLLM, ReplayBackend
    llm = CachedLLM(ReplayBackend(lambda p: 'reply to ' + p, delay=0.05), sys.argv[1], progress=False)
    llm.backend.chunk_size = 1
    llm.complete([f'prompt {i}' for i in range(400)])
''')

def test_cache_survives_killed_run(tmp_path):
    d = tmp_path / 'cache'
    env = {**os.environ, 'PYTHONPATH': str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, '-c', _WORKER, str(d)], env=env)
    try:
        t0 = time.time()
        while len(list(d.glob('*/*.json'))) < 5 and time.time() - t0 < 60: time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally: proc.wait()
    n_done = len(list(d.glob('*/*.json')))
    assert 5 <= n_done < 400, 'the worker must have been killed mid-run'
    # a half-written entry from another writer is treated as missing, never returned
    cache = DiskCache(d)
    be = ReplayBackend(lambda p: 'reply to ' + p)
    llm = CachedLLM(be, cache, progress=False)
    bad = llm.key('prompt 399'); cache._file(bad).parent.mkdir(parents=True, exist_ok=True)
    cache._file(bad).write_text('{"value": "reply to pro')
    with pytest.warns(UserWarning, match='corrupt'):
        out = llm.complete([f'prompt {i}' for i in range(400)])
    assert out == [f'reply to prompt {i}' for i in range(400)]
    assert llm.hits >= n_done - 2 and llm.calls == 400 - llm.hits   # only the missing/corrupt ones re-asked
    again = CachedLLM(ReplayBackend(lambda p: 'DIFFERENT'), d, progress=False)
    assert again.complete([f'prompt {i}' for i in range(400)]) == out and again.calls == 0

# ---------------------------------------------------------------- OpenAI-compatible backend vs a local server
class _Handler(BaseHTTPRequestHandler):
    seen, lock, fail_first = [], threading.Lock(), [True]
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        with self.lock:
            self.seen.append((self.path, self.headers.get('Authorization'), body))
            fail = self.fail_first[0]; self.fail_first[0] = False
        if fail:  # one transient error: the client must retry
            self.send_response(503); self.end_headers(); return
        gene = body['messages'][-1]['content'].split('gene ')[1].split()[0]
        reply = {'choices': [{'message': {'role': 'assistant', 'content': json.dumps({'reasoning': f'about {gene}', 'kNN': ['SGK1', 'KLF1']})}}]}
        data = json.dumps(reply).encode()
        self.send_response(200); self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data))); self.end_headers(); self.wfile.write(data)
    def log_message(self, *a): pass

def test_openai_backend_local_server(tmp_path, monkeypatch):
    srv = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True); th.start()
    try:
        monkeypatch.setenv('OPENAI_BASE_URL', f'http://127.0.0.1:{srv.server_port}/v1')
        monkeypatch.setenv('OPENAI_API_KEY', 'sk-test')
        be = OpenAIBackend('tiny-model', concurrency=3, json_schema=True)
        R = pd.DataFrame(np.eye(len(CANDS)), index=CANDS, columns=[f'g{i}' for i in range(len(CANDS))])
        lp = LangPert(CachedLLM(be, tmp_path / 'c', progress=False), R)
        genes = ['MAPK3', 'MYC', 'TP53', 'KRAS', 'EGFR']
        pred, rec = lp.predict(genes)
        assert all(rec.loc[g, 'kNN'] == ['SGK1', 'KLF1'] and rec.loc[g, 'reasoning'] == f'about {g}' for g in genes)
        assert np.allclose(pred.loc['MYC'], (R.loc['SGK1'] + R.loc['KLF1']) / 2)
        paths = {p for p, _, _ in _Handler.seen}; auths = {a for _, a, _ in _Handler.seen}
        assert paths == {'/v1/chat/completions'} and auths == {'Bearer sk-test'}
        body = _Handler.seen[-1][2]
        assert body['model'] == 'tiny-model' and body['response_format']['json_schema']['schema']['properties']['kNN']['items']['enum'] == CANDS
        n = len(_Handler.seen)
        assert n == len(genes) + 1   # one 503 retried
        lp2 = LangPert(CachedLLM(OpenAIBackend('tiny-model', json_schema=True), tmp_path / 'c', progress=False), R)
        lp2.predict(genes)
        assert len(_Handler.seen) == n and lp2.llm.calls == 0, 'cached rerun must not hit the server'
    finally: srv.shutdown()

def test_llamacpp_backend_is_optional():
    be = LlamaCppBackend('/nonexistent/model.gguf')
    assert be.cache_id()['backend'] == 'llama.cpp'
    try: import llama_cpp  # noqa
    except ImportError:
        with pytest.raises(ImportError, match='llama-cpp-python'): be.complete(['hi'], [knn_json_schema(CANDS)])

# ---------------------------------------------------------------- aggregation, fallbacks, metrics
def test_aggregation_hand_computed():
    X = np.array([[4., 1.], [1., 1.], [1., 7.]])
    assert np.allclose(aggregate(X, 'mean'), [2, 3])
    assert np.allclose(aggregate(X, 'median'), [1, 1])
    assert np.allclose(aggregate(X, 'rank'), [(3*4 + 2*1 + 1*1) / 6, (3*1 + 2*1 + 1*7) / 6])
    with pytest.raises(ValueError): aggregate(np.zeros((0, 2)))

def test_fallbacks_live_in_delta_space(tmp_path):
    R = pd.DataFrame([[1., 3.], [3., 5.]], index=['A', 'B'], columns=['x', 'y'])
    for fb, expect in [(('mean',), [2., 4.]), (('control',), [0., 0.]), (('retry', 'control'), [0., 0.])]:
        lp = LangPert(CachedLLM(ReplayBackend(default='nonsense'), tmp_path / 'c', progress=False), R, fallback=fb)
        pred, rec = lp.predict(['Z'])
        assert np.allclose(pred.loc['Z'], expect) and rec.loc['Z', 'fallback'] == fb[-1]
        assert rec.loc['Z', 'retries'] == (1 if 'retry' in fb else 0)
    # a retry that succeeds is recorded as such
    lp = LangPert(CachedLLM(ReplayBackend(lambda p: '{"kNN": ["B"]}' if 'previous answer' in p else 'junk'),
                            tmp_path / 'd', progress=False), R)
    pred, rec = lp.predict(['Z'])
    assert rec.loc['Z', 'kNN'] == ['B'] and rec.loc['Z', 'fallback'] == 'retry' and np.allclose(pred.loc['Z'], [3, 5])
    assert len(rec.loc['Z', 'replies']) == 2

def test_delta_metrics_hand_computed():
    true = pd.Series([2., -1., 0., 0.5], index=list('abcd'))
    pred = pd.Series([1., -1., 1., -0.5], index=list('abcd'))
    m = delta_metrics(pred, true, ['a', 'b', 'd', 'c'], ks=(20,))
    assert np.isclose(m['mae_top20'], (1 + 0 + 1 + 1) / 4) and np.isclose(m['mse_top20'], 3 / 4)
    assert np.isclose(m['direction_top20'], 2 / 4)   # a, b right; d flipped; c: 0 vs +1 wrong
    assert np.isclose(m['pearson_all'], np.corrcoef(pred, true)[0, 1])
    assert np.isclose(m['overlap_top20'], 1.0)       # fewer than 20 genes: all of them

def test_rank_metrics_hand_computed():
    s = pd.Series([.5, .4, .3, .2, .1], index=list('abcde'))
    m = rank_metrics(s, {'b', 'e'}, pd.DataFrame({'gene': list('abcde'), 'label': [0, 1, 0, 0, 1]}), ks=(1, 2, 5))
    assert (m['precision@1'], m['precision@2'], m['precision@5']) == (0.0, 0.5, 0.4)
    assert np.isclose(m["de_auroc"], 2 / 6)   # b beats c, d; e beats none: 2 of 6 pairs

# ---------------------------------------------------------------- CV never leaks
def test_cv_folds_never_leak():
    perts = [f'P{i}' for i in range(23)]
    sp = cv_splits(perts, 5, [4, 8, None], seed=3)
    for s in sp: assert not set(s['train']) & set(s['test'])
    for size in (4, 8, 'all'):
        held = [g for s in sp if s['train_size'] == size for g in s['test']]
        assert sorted(held) == sorted(perts)   # each held out exactly once per size
    # a spying selector sees only training rows, never the held-out perturbation
    delta = pd.DataFrame(np.random.default_rng(0).normal(size=(23, 30)), index=perts)
    from genenet.langpert_eval import PseudoBulk
    pb = PseudoBulk(delta, delta, pd.Series(0., index=delta.columns), delta, pd.Series({**{p: 10 for p in perts}, 'control': 10}))
    seen = []
    def spy(train, test, truth):
        seen.append((set(train.index), set(test)))
        return {g: list(train.index[:3]) for g in test}, None
    res, _ = run_cv(pb, {'spy': spy}, 5, [4, None], progress=False)
    assert seen and all(not tr & te for tr, te in seen)
    assert len(res) == 2 * 23

# ---------------------------------------------------------------- real data, end to end
@pytest.fixture(scope='module')
def norman(root):
    from genenet.langpert_eval import load_norman_k562
    return load_norman_k562()

def test_oracle_beats_mean_on_norman(norman):
    assert len(norman.perts) >= 15
    res, _ = run_cv(norman, {'mean': mean_selector(), 'oracle5': oracle_selector(5), 'oracle10': oracle_selector(10),
                             'random5': random_selector(5)}, n_folds=5, progress=False)
    tab = summarise_cv(res).set_index('method')
    assert tab.loc['oracle5', 'mae_top20'] < tab.loc['mean', 'mae_top20']
    assert tab.loc['oracle10', 'mae_top20'] < tab.loc['mean', 'mae_top20']
    assert tab.loc['oracle5', 'pearson_top20'] > tab.loc['mean', 'pearson_top20']

def test_langpert_end_to_end_on_norman_with_replay(norman, tmp_path):
    "LangPert through run_cv with a replayed 'LLM' that answers the oracle's neighbours must match the oracle."
    oracle = oracle_selector(5)
    def smart(prompt):
        gene = prompt.split('Analyze the gene ')[1].split()[0]
        cands = prompt.split('List of genes: ')[1].split('\n')[0].split(', ')
        train = norman.delta.loc[cands]
        nb, _ = oracle(train, [gene], norman.delta.loc[[gene]])
        return 'Here: ```json\n' + json.dumps({'reasoning': 'oracle', 'kNN': nb[gene] + ['NOT_A_GENE']}) + '\n```'
    be = ReplayBackend(smart, name='oracle-replay'); be.chunk_size = 32
    llm = CachedLLM(be, tmp_path / 'c', progress=False)
    res, recs = run_cv(norman, {'langpert': langpert_selector(llm), 'oracle5': oracle}, n_folds=5, progress=False)
    assert be.n_batches == 1, 'prefetch must send all folds\' prompts in one batch'
    a = res[res.method == 'langpert'].set_index('pert')['mae_top20']; b = res[res.method == 'oracle5'].set_index('pert')['mae_top20']
    assert np.allclose(a.sort_index(), b.sort_index())
    assert (recs.n_dropped == 1).all() and recs.fallback.isna().all() and llm.calls == len(norman.perts)
