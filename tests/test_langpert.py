"LangPert: constrained replies, parser, reply cache, HTTP backend faults, estimator, controls, CV protocol, real data."
import json, os, signal, subprocess, sys, textwrap, threading, time, warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anndata as ad
import llguidance
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st
from llguidance.gbnf_to_lark import gbnf_to_lark
from transformers import AutoTokenizer

from genenet.core import DiskCache
from genenet.models import load_causal_lm
from genenet.model_files import convert_gguf
from genenet.langpert import (parse_reply, build_prompt, reply_spec, reply_lark, reply_gbnf, reply_json_schema, aggregate,
                              CachedLLM, ReplayBackend, LLMBackend, LLMError, LangPert, predict_from_neighbours)
from genenet.langpert_backends import (constrained_random_replies, TransformersBackend, OpenAIBackend, LlamaCppBackend,
                                       LLMServerError)
from genenet.langpert_eval import (PseudoBulk, delta_metrics, cv_splits, run_cv, summarise_cv, usable_fraction, mean_selector,
                                   oracle_selector, random_selector, langpert_selector, similarity_selector, go_jaccard,
                                   rank_metrics, load_gears, fallback_label)

CANDS = ['MAP2K3', 'MAP2K6', 'SGK1', 'KLF1', 'MAPK1', 'TGFBR2']

# ---------------------------------------------------------------- grammar-constrained replies (property tests)
@pytest.fixture(scope='module', params=['tiny-random/llama', 'smollm2-135m'])
def lltok(request):
    "llguidance tokenizers: the tiny model's byte-level one and SmolLM2's BPE one (multi-character tokens)."
    if request.param == 'smollm2-135m': tok = AutoTokenizer.from_pretrained(convert_gguf('smollm2-135m'))
    else: _, tok = load_causal_lm('tiny-random/llama')
    return llguidance.hf.from_tokenizer(tok, n_vocab=len(tok)), len(tok)

_sym = st.from_regex(r'[A-Z][A-Z0-9]{0,5}([-.][A-Z0-9]{1,3})?', fullmatch=True)

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(genes=st.lists(_sym, min_size=3, max_size=25, unique=True), data=st.data())
def test_constrained_replies_parse_and_name_only_offered_genes(lltok, genes, data):
    tok, V = lltok
    query = data.draw(st.sampled_from(genes))
    lo = data.draw(st.integers(1, 4)); hi = data.draw(st.integers(lo, 8))
    reasoning = data.draw(st.booleans())
    spec = reply_spec(genes, query, (lo, hi), reasoning, max_reasoning=30)
    for raw in constrained_random_replies(tok, [spec, spec], V, seed=data.draw(st.integers(0, 10**6))):
        d = json.loads(raw)                                   # valid JSON, always
        assert list(d) == (['reasoning', 'kNN'] if reasoning else ['kNN'])
        knn = d['kNN']
        assert spec.k_min <= len(knn) <= spec.k_max and len(set(knn)) == len(knn)
        assert set(knn) <= set(genes) - {query}
        r = parse_reply(raw, genes, query=query, normalise=False)
        assert r.status == 'json' and r.genes == knn and not r.dropped

def test_grammar_excludes_query_gene(lltok):
    tok, _ = lltok
    spec = reply_spec(['HLA-A', 'RP11-1.2', 'KLF1'], query='KLF1', k_range='1-2', reasoning=False)
    assert 'KLF1' not in spec.candidates and '"KLF1"' not in reply_lark(spec) and 'KLF1' not in reply_gbnf(spec)
    grammar = llguidance.LLMatcher.grammar_from_lark(reply_lark(spec))
    ok, bad = llguidance.LLMatcher(tok, grammar), llguidance.LLMatcher(tok, grammar)
    assert ok.consume_tokens(tok.tokenize_str('{"kNN": ["HLA-A", "RP11-1.2"]}')) and ok.is_accepting()
    bad.consume_tokens(tok.tokenize_str('{"kNN": ["KLF1"]}'))
    assert bad.is_error() or not bad.is_accepting()
    assert reply_json_schema(spec)['properties']['kNN']['items']['enum'] == ['HLA-A', 'RP11-1.2']

# ---------------------------------------------------------------- the llama.cpp GBNF grammar, checked through llguidance
def _in_gbnf(tok, spec, text):
    "Is `text` in `reply_gbnf(spec)`'s language? llguidance converts the GBNF to Lark and matches `text`'s tokens."
    m = llguidance.LLMatcher(tok, llguidance.LLMatcher.grammar_from_lark(gbnf_to_lark(reply_gbnf(spec))), log_level=0)
    ids = tok.tokenize_str(text)
    return m.try_consume_tokens(ids) == len(ids) and m.is_accepting()

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(genes=st.lists(_sym, min_size=4, max_size=25, unique=True), data=st.data())
def test_gbnf_grammar_accepts_valid_replies_and_rejects_invalid_ones(lltok, genes, data):
    tok, _ = lltok
    query = data.draw(st.sampled_from(genes))
    offered = [g for g in genes if g != query]
    lo = data.draw(st.integers(1, 3)); hi = data.draw(st.integers(lo, min(6, len(offered))))
    reasoning = data.draw(st.booleans())
    spec = reply_spec(genes, query, (lo, hi), reasoning, max_reasoning=30)
    knn = data.draw(st.lists(st.sampled_from(offered), min_size=lo, max_size=hi, unique=True))
    ws = data.draw(st.sampled_from(['', ' ', '\n', ' \n']))
    def reply(items, reason='kinase cascade, same arm'):
        head = f'"reasoning":{ws}{json.dumps(reason)},{ws}' if reasoning else ''
        return '{' + ws + head + '"kNN":' + ws + '[' + (',' + ws).join(json.dumps(g) for g in items) + ']' + ws + '}'
    assert _in_gbnf(tok, spec, reply(knn))                                   # valid, names with dashes and dots
    assert not _in_gbnf(tok, spec, reply(knn[:-1] + [query]))                # the query gene
    assert not _in_gbnf(tok, spec, reply(knn[:-1] + ['NOTOFFERED-1.2']))     # a gene not offered (_sym cannot draw it)
    assert not _in_gbnf(tok, spec, reply(knn[:lo - 1]))                      # too few (an empty list when lo == 1)
    if len(offered) > hi:                                                    # too many
        assert not _in_gbnf(tok, spec, reply(knn + [g for g in offered if g not in knn][:hi + 1 - len(knn)]))
    if reasoning: assert not _in_gbnf(tok, spec, reply(knn, 'a "quoted" word'))   # quotes/backslashes end the string
    assert _in_gbnf(tok, spec, reply(knn + knn[:1])) == (len(knn) < hi)      # repeats: not excluded by the grammar

def test_transformers_backend_batches_and_constrains(tmp_path):
    be = TransformersBackend('tiny-random/llama', batch_size=4)
    m, _ = be._load()
    calls, gen = [], m.generate
    def counting(*a, **kw): calls.append(kw['input_ids'].shape[0]); return gen(*a, **kw)
    m.generate = counting
    R = pd.DataFrame(np.eye(len(CANDS)), index=CANDS)
    lp = LangPert(CachedLLM(be, tmp_path, progress=False), k_range='2-3', max_reasoning=20).fit(R)
    lp.predict(['MAPK1', 'MYC', 'SGK1', 'TP53'])
    assert calls == [4], 'four prompts, one batched generate call'
    for g, r in lp.records_.iterrows():
        d = json.loads(r.raw)
        assert 2 <= len(d['kNN']) <= 3 and len(set(d['kNN'])) == len(d['kNN']) and g not in d['kNN'] and r.fallback is None

# ---------------------------------------------------------------- parser on hostile replies
_gene = st.sampled_from(CANDS + ['TP53', 'map2k3', ' KLF1 ', '1. SGK1', '', 'MAPK3', 'null', 'nan', 'NA'])
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
        assert len(r.genes) + len(r.dropped) == r.n_proposed == len(raw_list)

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=_obj, style=st.integers(0, 5))
def test_parser_structured_junk(obj, style):
    r = parse_reply(_render(obj, style), CANDS, query='MAPK3', normalise=False)
    _check(r, obj['kNN'] if style in (0, 1, 2) else None)
    if style in (0, 1, 2):
        assert r.status == 'json'
        if not any(c.lower() in json.dumps(x).lower() for x in obj['kNN'] for c in CANDS): assert not r.ok
        if any(isinstance(x, str) and x in CANDS for x in obj['kNN']): assert r.ok

@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parser_random_text_never_crashes(text):
    _check(parse_reply(text, CANDS, query='MAPK3', normalise=False))

def test_parser_records_drops_and_order():
    r = parse_reply('{"reasoning": "r", "kNN": ["KLF1", "TP53", "klf1", "MAPK3", "SGK1", 7]}', CANDS, query='MAPK3')
    assert r.genes == ['KLF1', 'SGK1']
    assert [(d['name'], d['reason']) for d in r.dropped] == [
        ('TP53', 'not offered'), ('klf1', 'duplicate'), ('MAPK3', 'query gene'), ('7', 'not a gene name')]
    for raw in ['{"kNN": []}', '', '[]', '{}', 'kNN:', '{"kNN": "   "}']:
        assert parse_reply(raw, CANDS).genes == []

def test_parser_never_maps_missing_values_to_genes():
    # "nan" is an alias of SCN11A and "NA" of XK in NCBI's table: an LLM's missing value must not become them
    for miss in ['nan', 'NaN', 'NA', 'N/A', 'null', 'None']:
        r = parse_reply('{"kNN": ["%s", "SGK1"]}' % miss, ['SCN11A', 'XK', 'SGK1'])
        assert r.genes == ['SGK1'], (miss, r)

def test_parser_maps_previous_symbols():
    r = parse_reply('{"kNN": ["MLK4", "sgk", "ERK2", "TP53"]}', ['KIAA1804', 'SGK1', 'MAPK1'])
    assert r.genes == ['KIAA1804', 'SGK1', 'MAPK1'] and r.dropped == [{'name': 'TP53', 'reason': 'not offered'}]
    assert parse_reply('{"kNN": ["MLK4"]}', ['KIAA1804'], normalise=False).genes == []

def test_prompt_has_the_appendix_a_elements():
    for cl, word in (('k562', 'K562'), ('rpe1', 'RPE-1')):
        p = build_prompt('MYC', list(reversed(CANDS)), cl, k_range='5-10')
        assert p.startswith('Task:') and 'MYC' in p and word in p and '5 to 10' in p and '"kNN"' in p
        assert f'Candidate genes (6): {", ".join(sorted(CANDS))}' in p          # sorted, as the authors' code
        assert p.index('Task') < p.index(word) < p.index('Candidate genes') < p.index('"kNN"')
    assert '"reasoning"' not in build_prompt('MYC', CANDS, reasoning=False)
    lp = LangPert(ReplayBackend(default='{}')).fit(pd.DataFrame(np.eye(3), index=['B', 'A', 'C']))
    assert 'Candidate genes (2): A, C' in lp.prompt('B') and lp.llm.backend.system

# ---------------------------------------------------------------- cache durability and damaged entries
_WORKER = textwrap.dedent('''
    import sys
    from genenet.langpert import CachedLLM, ReplayBackend
    llm = CachedLLM(ReplayBackend(lambda p: 'reply to ' + p, delay=0.05, chunk_size=1), sys.argv[1], progress=False)
    llm.complete([f'prompt {i}' for i in range(400)])
''')

def test_cache_survives_killed_run(tmp_path):
    d = tmp_path / 'cache'
    env = {**os.environ, 'PYTHONPATH': str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, '-c', _WORKER, str(d)], env=env)
    try:
        t0 = time.time()
        while len(list(d.glob('*/*.json'))) < 5 and time.time() - t0 < 120: time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally: proc.wait()
    n_done = len(list(d.glob('*/*.json')))
    assert 5 <= n_done < 400, 'the worker must have been killed mid-run'
    llm = CachedLLM(ReplayBackend(lambda p: 'reply to ' + p), d, progress=False)
    out = llm.complete([f'prompt {i}' for i in range(400)])
    assert out == [f'reply to prompt {i}' for i in range(400)]
    assert llm.hits == n_done and llm.calls == 400 - n_done
    again = CachedLLM(ReplayBackend(lambda p: 'DIFFERENT'), d, progress=False)
    assert again.complete([f'prompt {i}' for i in range(400)]) == out and again.calls == 0

@pytest.mark.parametrize('content', [b'\xff\xfe\x00 not utf-8', b'[1, 2]', b'{"value": 3}', b'{"value": "cut', b'', b'null'])
def test_damaged_cache_entries_are_asked_again(tmp_path, content):
    llm = CachedLLM(ReplayBackend(lambda p: 'fresh ' + p), tmp_path, progress=False)
    f = llm.cache._file(llm.key('p')); f.parent.mkdir(parents=True, exist_ok=True); f.write_bytes(content)
    with pytest.warns(UserWarning, match='corrupt'):
        assert llm.complete(['p', 'q']) == ['fresh p', 'fresh q']
    assert llm.calls == 2
    again = CachedLLM(ReplayBackend(default='x'), tmp_path, progress=False)
    assert again.complete(['p']) == ['fresh p'] and again.calls == 0   # the re-asked reply replaced the damaged entry

def test_fewer_replies_than_prompts_is_an_error(tmp_path):
    class Short(ReplayBackend):
        def complete(self, prompts, specs=None): return ['only one']
    with pytest.raises(LLMError, match='1 replies for 3 prompts'):
        CachedLLM(Short(), tmp_path, progress=False).complete(['a', 'b', 'c'])

# ---------------------------------------------------------------- OpenAI-compatible backend against a local server
class _Server:
    "A 127.0.0.1 server whose behaviour per request is `handler(body) -> (status, content_type, bytes | iterator)`."
    def __init__(self, handler):
        self.seen, self.lock, self.inflight, self.max_inflight = [], threading.Lock(), 0, 0
        srv = self
        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
                with srv.lock:
                    srv.seen.append((self.path, self.headers.get('Authorization'), body))
                    srv.inflight += 1; srv.max_inflight = max(srv.max_inflight, srv.inflight)
                try:
                    status, ctype, data = handler(body)
                    self.send_response(status); self.send_header('Content-Type', ctype)
                    if isinstance(data, bytes):
                        self.send_header('Content-Length', str(len(data))); self.end_headers(); self.wfile.write(data)
                    else:
                        self.end_headers()
                        for chunk in data: self.wfile.write(chunk); self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError): pass
                finally:
                    with srv.lock: srv.inflight -= 1
            def log_message(self, *a): pass
        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), H); self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f'http://127.0.0.1:{self.httpd.server_port}/v1'
    def close(self): self.httpd.shutdown(); self.httpd.server_close()

def _gene_of(body): return body['messages'][-1]['content'].split('the gene ')[1].split()[0]

def _ok(content, delay=0.0):
    if delay: time.sleep(delay)
    return 200, 'application/json', json.dumps({'choices': [{'message': {'role': 'assistant', 'content': content}}]}).encode()

@pytest.fixture
def server():
    made = []
    def make(handler): s = _Server(handler); made.append(s); return s
    yield make
    for s in made: s.close()

R6 = pd.DataFrame(np.eye(len(CANDS)), index=CANDS, columns=[f'g{i}' for i in range(len(CANDS))])

def test_openai_backend_schema_concurrency_and_cached_rerun(server, tmp_path):
    srv = server(lambda b: _ok(json.dumps({'reasoning': f'about {_gene_of(b)}', 'kNN': ['SGK1', 'KLF1']}), delay=0.3))
    be = OpenAIBackend('tiny-model', base_url=srv.url, api_key='sk-test', concurrency=3)
    lp = LangPert(CachedLLM(be, tmp_path, progress=False), k_range='2-3').fit(R6)
    genes = ['MAPK3', 'MYC', 'TP53', 'KRAS', 'EGFR', 'ATF4']
    pred = lp.predict(genes)
    assert all(lp.records_.loc[g, 'kNN'] == ['SGK1', 'KLF1'] and lp.records_.loc[g, 'reasoning'] == f'about {g}' for g in genes)
    assert np.allclose(pred.loc['MYC'], (R6.loc['SGK1'] + R6.loc['KLF1']) / 2)
    assert {p for p, _, _ in srv.seen} == {'/v1/chat/completions'} and {a for _, a, _ in srv.seen} == {'Bearer sk-test'}
    body = srv.seen[-1][2]
    schema = body['response_format']['json_schema']['schema']
    assert schema['properties']['kNN']['items']['enum'] == sorted(set(CANDS) - {_gene_of(body)}) and schema['properties']['kNN']['uniqueItems']
    assert body['messages'][0]['role'] == 'system'
    assert 2 <= srv.max_inflight <= 3, 'requests run concurrently, at most `concurrency` at once'
    n = len(srv.seen)
    lp2 = LangPert(CachedLLM(OpenAIBackend('tiny-model', base_url=srv.url, api_key='sk-test'), tmp_path, progress=False), k_range='2-3').fit(R6)
    lp2.predict(genes)
    assert len(srv.seen) == n and lp2.llm.calls == 0, 'a cached rerun sends nothing'

def test_one_failed_request_keeps_the_good_replies(server, tmp_path):
    state = {'fail': True}
    def handler(b):
        if _gene_of(b) == 'TP53' and state['fail']:
            return 500, 'application/json', b'{"error": {"message": "CUDA out of memory"}}'
        return _ok(json.dumps({'kNN': ['SGK1']}))
    srv = server(handler)
    llm = CachedLLM(OpenAIBackend('m', base_url=srv.url, concurrency=4, retries=0), tmp_path, progress=False)
    lp = LangPert(llm, k_range=1, reasoning=False).fit(R6)
    with pytest.raises(LLMError, match='1 of 4 LLM requests failed.*CUDA out of memory'):
        lp.predict(['MAPK3', 'MYC', 'TP53', 'KRAS'])
    assert len(list(Path(tmp_path).glob('*/*.json'))) == 3, 'the three good replies are cached'
    state['fail'] = False
    lp.predict(['MAPK3', 'MYC', 'TP53', 'KRAS'])
    assert llm.calls == 4 + 1, 'the rerun asks only the failed prompt'

def test_trickling_server_hits_the_total_deadline(server, tmp_path):
    def trickle(b):
        def gen():
            for _ in range(100): yield b' '; time.sleep(0.2)
        return 200, 'application/json', gen()
    srv = server(trickle)
    be = OpenAIBackend('m', base_url=srv.url, timeout=5, deadline=1.0, retries=0)
    t = time.monotonic()
    with pytest.raises(LLMServerError, match='deadline'): be.complete(['the gene X is'])
    assert time.monotonic() - t < 4, 'the deadline bounds the whole request, not each read'

@pytest.mark.parametrize('status,ctype,body,needle', [
    (502, 'text/html', b'<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>upstream gone</p></body></html>', 'Bad Gateway upstream gone'),
    (401, 'application/json', b'{"error": {"message": "Invalid API key", "type": "auth"}}', 'HTTP 401: Invalid API key'),
    (200, 'text/html', b'<html><body>Please log in</body></html>', 'not JSON: Please log in'),
    (200, 'application/json', b'{"choices": []}', 'without a reply'),
    (200, 'application/json', b'{"object": "error", "message": "model not loaded"}', 'without a reply'),
])
def test_server_error_bodies_are_surfaced(server, status, ctype, body, needle):
    srv = server(lambda b: (status, ctype, body))
    with pytest.raises(LLMServerError, match=needle):
        OpenAIBackend('m', base_url=srv.url, retries=0).complete(['the gene X is'])

def test_server_that_rejects_the_schema_falls_back_to_free_text(server, tmp_path):
    def handler(b):
        if 'response_format' in b: return 400, 'application/json', b'{"error": {"message": "response_format is not supported"}}'
        return _ok('Sure! ```json\n{"kNN": ["sgk1", "TP53"]}\n```')
    srv = server(handler)
    lp = LangPert(CachedLLM(OpenAIBackend('m', base_url=srv.url, retries=0), tmp_path, progress=False), k_range=1).fit(R6)
    with pytest.warns(UserWarning, match='rejected the reply schema'):
        lp.predict(['MYC'])
    assert lp.records_.loc['MYC', 'kNN'] == ['SGK1'] and lp.records_.loc['MYC', 'status'] == 'json'

def test_llamacpp_backend_is_optional():
    be = LlamaCppBackend('/nonexistent/model.gguf')
    assert be.cache_id()['backend'] == 'llama.cpp'
    try: import llama_cpp  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match='llama-cpp-python'): be.complete(['hi'], [reply_spec(CANDS)])

# ---------------------------------------------------------------- aggregation, fallbacks, metrics
def test_aggregation_hand_computed():
    X = np.array([[4., 1.], [1., 1.], [1., 7.]])
    assert np.allclose(aggregate(X, 'mean'), [2, 3]) and np.allclose(aggregate(X, 'median'), [1, 1])
    assert np.allclose(aggregate(X, 'rank'), [(3*4 + 2*1 + 1*1) / 6, (3*1 + 2*1 + 1*7) / 6])
    with pytest.raises(ValueError): aggregate(np.zeros((0, 2)))

def test_fallbacks_live_in_delta_space(tmp_path):
    R = pd.DataFrame([[1., 3.], [3., 5.]], index=['A', 'B'], columns=['x', 'y'])
    for fb, expect in [(('mean',), [2., 4.]), (('control',), [0., 0.]), (('retry', 'control'), [0., 0.])]:
        lp = LangPert(CachedLLM(ReplayBackend(default='nonsense'), tmp_path / 'c', progress=False), fallback=fb).fit(R)
        pred = lp.predict(['Z'])
        assert np.allclose(pred.loc['Z'], expect) and lp.records_.loc['Z', 'fallback'] == fb[-1]
        assert lp.records_.loc['Z', 'retries'] == (1 if 'retry' in fb else 0)
    lp = LangPert(CachedLLM(ReplayBackend(lambda p: '{"kNN": ["B"]}' if 'previous answer' in p else 'junk'),
                            tmp_path / 'd', progress=False)).fit(R)
    pred = lp.predict(['Z'])
    assert lp.records_.loc['Z', 'kNN'] == ['B'] and lp.records_.loc['Z', 'fallback'] == 'retry' and np.allclose(pred.loc['Z'], [3, 5])

def test_delta_metrics_hand_computed():
    true = pd.Series([2., -1., 0., 0.5], index=list('abcd'))
    pred = pd.Series([1., -1., 1., -0.5], index=list('abcd'))
    m = delta_metrics(pred, true, ['a', 'b', 'd', 'c'], ks=(20,))
    assert np.isclose(m['mae_top20'], (1 + 0 + 1 + 1) / 4) and np.isclose(m['mse_top20'], 3 / 4)
    assert np.isclose(m['direction_top20'], 2 / 4) and np.isclose(m['pearson_all'], np.corrcoef(pred, true)[0, 1])

def test_rank_metrics_hand_computed():
    s = pd.Series([.5, .4, .3, .2, .1], index=list('abcde'))
    m = rank_metrics(s, {'b', 'e'}, pd.DataFrame({'gene': list('abcde'), 'label': [0, 1, 0, 0, 1]}), ks=(1, 2, 5))
    assert (m['precision@1'], m['precision@2'], m['precision@5']) == (0.0, 0.5, 0.4)
    assert np.isclose(m['de_auroc'], 2 / 6)

# ---------------------------------------------------------------- controls
def test_knowledge_knn_on_a_toy_go_table():
    goa = pd.DataFrame({'gene': ['Q', 'Q', 'Q', 'A', 'A', 'B', 'C', 'C', 'D'],
                        'go_id': ['t1', 't2', 't3', 't1', 't2', 't3', 't7', 't8', 't1'], 'aspect': list('PPPPPPPPF')})
    J = go_jaccard(['Q', 'A', 'B', 'C', 'D'], goa)
    assert np.isclose(J.loc['Q', 'A'], 2 / 3) and np.isclose(J.loc['Q', 'B'], 1 / 3) and np.isclose(J.loc['Q', 'D'], 1 / 3)
    assert J.loc['Q', 'C'] == 0 and np.allclose(J, J.T)
    train = pd.DataFrame(np.eye(4), index=['D', 'C', 'B', 'A'])
    nb, rec = similarity_selector(J, k=3)(train, ['Q'], None)
    assert nb['Q'] == ['A', 'B', 'D'], 'highest Jaccard first, ties by name, genes with no shared term left out'
    assert go_jaccard(['Q', 'D'], goa, aspects=('P',)).loc['Q', 'D'] == 0

def test_fallbacks_are_their_own_row(tmp_path):
    rng = np.random.default_rng(0); perts = [f'P{i}' for i in range(10)]
    delta = pd.DataFrame(rng.normal(size=(10, 30)), index=perts)
    pb = PseudoBulk(delta, delta, pd.Series(0., index=delta.columns), delta, pd.Series({**{p: 10 for p in perts}, 'control': 10}))
    def reply(p):   # usable for half the genes, junk for the rest
        g = p.split('the gene ')[1].split()[0]
        cands = p.split('Candidate genes')[1].split(': ', 1)[1].split('\n')[0].split(', ')
        return json.dumps({'kNN': cands[:2]}) if int(g[1:]) % 2 else 'I cannot say.'
    llm = CachedLLM(ReplayBackend(reply), tmp_path, progress=False)
    res, recs = run_cv(pb, {'LangPert': langpert_selector(llm, fallback=('mean',)), 'mean': mean_selector()}, 5, progress=False)
    lp, fb = res[res.method == 'LangPert'], res[res.method == fallback_label('LangPert')]
    assert set(lp.pert) == {p for p in perts if int(p[1:]) % 2} and set(fb.pert) == {p for p in perts if not int(p[1:]) % 2}
    assert np.allclose(fb.set_index('pert').mae_top20.sort_index(), res[(res.method == 'mean') & res.pert.isin(fb.pert)].set_index('pert').mae_top20.sort_index())
    assert usable_fraction(recs) == 0.5

def test_summary_error_bars_are_across_folds():
    res = pd.DataFrame({'method': 'm', 'train_size': 'all', 'fold': [0, 0, 1, 1, 2], 'pert': list('abcde'),
                        'mae_top20': [1., 3., 2., 2., 5.], 'pearson_top20': [.5, np.nan, .1, .3, np.nan]})
    t = summarise_cv(res, metrics=('mae_top20', 'pearson_top20')).iloc[0]
    fm = np.array([2., 2., 5.])
    assert np.isclose(t.mae_top20, fm.mean()) and np.isclose(t.mae_top20_se, 1.96 * fm.std(ddof=1) / np.sqrt(3))
    assert np.isclose(t.pearson_top20, np.mean([.5, .2])) and t.pearson_top20_undefined == 2 and t.n_folds == 3

# ---------------------------------------------------------------- CV protocol
def _toy_pb(n=23, d=30):
    perts = [f'P{i}' for i in range(n)]
    delta = pd.DataFrame(np.random.default_rng(0).normal(size=(n, d)), index=perts)
    return PseudoBulk(delta, delta, pd.Series(0., index=delta.columns), delta, pd.Series({**{p: 10 for p in perts}, 'control': 10}))

def test_cv_folds_never_leak():
    pb = _toy_pb(); perts = pb.perts
    sp = cv_splits(perts, 5, [4, 8, None], seed=3)
    for s in sp: assert not set(s['train']) & set(s['test'])
    for size in (4, 8, 'all'):
        assert sorted(g for s in sp if s['train_size'] == size for g in s['test']) == sorted(perts)
    seen = []
    def spy(train, test, truth):
        seen.append((set(train.index), set(test)))
        return {g: list(train.index[:3]) for g in test}, None
    res, _ = run_cv(pb, {'spy': spy}, 5, [4, None], progress=False)
    assert seen and all(not tr & te for tr, te in seen) and len(res) == 2 * 23

def test_training_size_curve_asks_the_llm_at_every_size(tmp_path):
    pb = _toy_pb(20)
    seen = []
    def reply(p):
        cands = p.split('Candidate genes')[1].split(': ', 1)[1].split('\n')[0].split(', ')
        seen.append(len(cands)); return json.dumps({'kNN': cands[:1]})
    be = ReplayBackend(reply, chunk_size=100)
    splits = cv_splits(pb.perts, 4, [3, 8, None], seed=0)
    res, recs = run_cv(pb, {'LangPert': langpert_selector(CachedLLM(be, tmp_path, progress=False))}, splits=splits, progress=False)
    assert be.n_calls == 3 * 20, 'one call per held-out gene at each of the three training sizes'
    assert sorted(set(seen)) == [3, 8, 15], 'candidates are the downsampled training set of each size'
    assert set(res.train_size) == {3, 8, 'all'} and (res.method == 'LangPert').all()
    cand_ok = [set(r.kNN) <= set(s['train']) for s in splits for _, r in recs[(recs.fold == s['fold']) & (recs.train_size == s['train_size'])].iterrows()]
    assert all(cand_ok) and len(cand_ok) == 60

# ---------------------------------------------------------------- data: GEARS files, real data end to end
def test_gears_loader_on_a_synthetic_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)); X[10:25, 2] += 4
    obs = pd.DataFrame({'condition': ['ctrl'] * 10 + ['KLF1+ctrl'] * 15 + ['SGK1+ctrl'] * 15 + ['KLF1+SGK1'] * 15 + ['RP11-1.2+ctrl'] * 5,
                        'cell_type': 'K562'}, index=[f'c{i}' for i in range(60)])
    var = pd.DataFrame({'gene_name': ['A', 'B', 'C', 'D', 'E']}, index=[f'ENSG0{i}' for i in range(5)])
    ad.AnnData(X, obs=obs, var=var).write_h5ad(tmp_path / 'perturb_processed.h5ad')
    pb = load_gears(tmp_path / 'perturb_processed.h5ad', min_cells=5)
    assert pb.perts == ['KLF1', 'SGK1', 'RP11-1.2'] and list(pb.delta.columns) == list('ABCDE')
    assert pb.skipped == {'KLF1+SGK1': 'combination of 2 genes'} and pb.de_genes('KLF1', 1) == ['C']
    assert np.allclose(pb.delta.loc['KLF1'], X[10:25].mean(0) - X[:10].mean(0))
    bad = ad.AnnData(X, obs=obs.assign(condition=obs.condition.str.replace('ctrl', 'control')), var=var)
    bad.write_h5ad(tmp_path / 'bad.h5ad')
    with pytest.raises(ValueError, match="'ctrl'"): load_gears(tmp_path / 'bad.h5ad')
    with pytest.raises(FileNotFoundError, match='download'): load_gears(tmp_path / 'missing.h5ad')

@pytest.fixture(scope='module')
def norman():
    from genenet.langpert_eval import load_norman_k562
    return load_norman_k562()

def test_oracle_beats_mean_on_norman(norman):
    res, _ = run_cv(norman, {'mean': mean_selector(), 'oracle5': oracle_selector(5), 'random5': random_selector(5)}, n_folds=5, progress=False)
    tab = summarise_cv(res).set_index('method')
    assert tab.loc['oracle5', 'mae_top20'] < tab.loc['mean', 'mae_top20']
    assert tab.loc['oracle5', 'pearson_top20'] > tab.loc['mean', 'pearson_top20']

def test_langpert_end_to_end_on_norman_with_replay(norman, tmp_path):
    "LangPert through run_cv with a replayed 'LLM' that answers the oracle's neighbours must match the oracle."
    oracle = oracle_selector(5)
    def smart(prompt):
        gene = prompt.split('the gene ')[1].split()[0]
        cands = prompt.split('Candidate genes')[1].split(': ', 1)[1].split('\n')[0].split(', ')
        nb, _ = oracle(norman.delta.loc[cands], [gene], norman.delta.loc[[gene]])
        return 'Here: ```json\n' + json.dumps({'reasoning': 'oracle', 'kNN': nb[gene] + ['NOT_A_GENE']}) + '\n```'
    be = ReplayBackend(smart, name='oracle-replay', chunk_size=32)
    llm = CachedLLM(be, tmp_path / 'c', progress=False)
    res, recs = run_cv(norman, {'LangPert': langpert_selector(llm), 'oracle5': oracle}, n_folds=5, progress=False)
    assert be.n_batches == 1, "prefetch sends all folds' prompts in one batch"
    a = res[res.method == 'LangPert'].set_index('pert')['mae_top20']; b = res[res.method == 'oracle5'].set_index('pert')['mae_top20']
    assert np.allclose(a.sort_index(), b.sort_index())
    assert (recs.n_dropped == 1).all() and recs.usable.all() and llm.calls == len(norman.perts)


def test_pseudobulk_rejects_nan_values_labels_and_duplicate_genes():
    "Issue 10: NaN in X, NaN labels and duplicate gene names are clear errors, not wrong means."
    import anndata as ad, numpy as np, pandas as pd, pytest
    from genenet.langpert_eval import pseudobulk
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({'condition': ['ctrl']*6 + ['A+ctrl']*6}, index=[f'c{i}' for i in range(12)])
    var = pd.DataFrame({'gene_name': ['A', 'B', 'C']}, index=['A', 'B', 'C'])
    good = ad.AnnData(rng.random((12, 3)).astype(np.float32), obs=obs, var=var)
    assert 'A' in pseudobulk(good, min_cells=2).delta.index
    bad = good.copy(); bad.X[0, 1] = np.nan
    with pytest.raises(ValueError, match='NaN'): pseudobulk(bad, min_cells=2)
    bad = good.copy(); bad.obs['condition'] = bad.obs.condition.astype(object); bad.obs.iloc[7, 0] = np.nan
    with pytest.raises(ValueError, match='missing labels'): pseudobulk(bad, min_cells=2)
    bad = good.copy(); bad.var['gene_name'] = ['A', 'B', 'B']
    with pytest.raises(ValueError, match='duplicate gene names'): pseudobulk(bad, min_cells=2)
