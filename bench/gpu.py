"""One GPU benchmark for the paper settings: no network, no weights (random init from configs), writes results.json.

    python bench/gpu.py [--out results.json] [--tiny] [--device cuda] [--sections grasp,ugrn,genen,text]

Sections (issue 14), each timed with the device synchronised and its peak memory recorded:
* grasp — training pairs/s of a GRASP step (frozen decoder, 83-token queries, 3 trainable soft suffix tokens, a
  small head) at the SmolLM2-135M and Llama-3.1-8B shapes, for each path: full recompute (padded), full recompute
  with padding trimmed, query without gradient + suffix with gradient (no cache, memory independent of the number
  of pairs), and a precomputed key/value cache held on the device or in (pinned) CPU memory and copied per step.
  bf16 on GPU. The cache's bytes per pair are reported beside it.
* ugrn — VVP responses and GDT Jacobians of an scGPT-size model (d=512, 12 layers, 1,200 genes) through
  `genenet.ugrn.vvp_responses` / `gdt_jacobians`, on a subset of the sources, extrapolated to the whole set.
* genen — full-graph GCN and GAT training epochs (`genenet.genen_gnn.GenenGNN`) on a random graph of the GO+PPI
  size (43k nodes, 1M directed edges, 768-d text features).
* text — text-embedding throughput (mean-pooled hidden states) of a BiomedBERT-base-shaped encoder for all
  genes (~20k texts) and GO terms (~43k), measured on a sample and extrapolated; plus gene texts through the
  Llama-3.1-8B shape (GRASP's gene vectors).

`--tiny` shrinks every shape so the whole script runs on a CPU in a few tens of seconds (CI runs it: see
tests/test_bench.py); its numbers only show that the code runs. On one H200 the full run is planned to take
under 7 minutes (a time guard skips what is left after `--budget` seconds and says so in results.json).
Figures to beat from issue 14 (H200): GRASP Llama-3.1-8B shape >= 470 pairs/s; SmolLM2 GPU-held cache >= 3x
full recompute; UGRN 85.8 s per 1,200-gene set; Genen GCN 4.8 ms and GAT 23 ms per epoch.
"""
import argparse, json, math, os, platform, sys, time, traceback
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TQDM_DISABLE', '1')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import numpy as np
import torch
from torch import nn

from genenet.models import kv_cache, kv_layers, cache_arg, output_cache, mean_pool

# ---------------------------------------------------------------- shapes
SHAPES = {
    'smollm2-135m': dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, rope_theta=100000.0),
    'llama3.1-8b': dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0),
}
TINY_SHAPES = {
    'tiny-a': dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, vocab_size=512, rope_theta=10000.0),
    'tiny-b': dict(hidden_size=96, intermediate_size=192, num_hidden_layers=3, num_attention_heads=6,
                   num_key_value_heads=2, vocab_size=512, rope_theta=10000.0),
}


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def reset_peak(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev); torch.cuda.reset_peak_memory_stats(dev)


def peak_gib(dev):
    return round(torch.cuda.max_memory_allocated(dev)/2**30, 3) if dev.type == 'cuda' else None


def timed(fn, dev, steps, warmup=1):
    "Seconds per call of `fn` (after `warmup` calls), with the device synchronised."
    for _ in range(warmup): fn()
    sync(dev); t = time.perf_counter()
    for _ in range(steps): fn()
    sync(dev)
    return (time.perf_counter() - t)/steps


# ---------------------------------------------------------------- GRASP
class Suffix(nn.Module):
    "The trainable part of a GRASP step: pair vector -> 3 soft suffix tokens, final hidden state -> logit."
    def __init__(self, d_vec, d_model, n_soft=3, r=256):
        super().__init__()
        self.n_soft, self.d_model = n_soft, d_model
        self.gen = nn.Sequential(nn.Linear(2*d_vec, r), nn.GELU(), nn.Linear(r, n_soft*d_model))
        self.head = nn.Sequential(nn.Linear(d_model, r), nn.GELU(), nn.Linear(r, 1))
    def soft(self, za, zb): return self.gen(torch.cat([za, zb], -1)).view(len(za), self.n_soft, self.d_model)


def query_batch(n, T, vocab, seed=0, min_len=None):
    "Left-padded random queries: ids [n, T], mask [n, T] with lengths in [min_len, T]."
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(min_len or max(2, int(0.6*T)), T + 1, (n,), generator=g)
    ids = torch.randint(3, vocab, (n, T), generator=g)
    mask = (torch.arange(T)[None] >= (T - lens)[:, None]).long()
    return ids*mask, mask


def positions(mask): return (mask.long().cumsum(-1) - 1).clamp(min=0)


def trim(ids, mask):
    n = max(1, int(mask.sum(1).max()))
    return ids[:, -n:], mask[:, -n:]


def grasp_paths(shape_name, shape, dev, dtype, B, T, steps, n_cache_batches, tiny):
    from transformers import LlamaConfig, LlamaModel
    cfg = LlamaConfig(**shape, max_position_embeddings=4096, attn_implementation='sdpa')
    old = torch.get_default_dtype()
    t0 = time.perf_counter()
    torch.manual_seed(0)
    try:
        torch.set_default_dtype(dtype)
        with torch.device(dev): base = LlamaModel(cfg)
    finally: torch.set_default_dtype(old)
    base.eval().requires_grad_(False)
    build_s = time.perf_counter() - t0
    d = shape['hidden_size']
    suffix = Suffix(d_vec=64, d_model=d, r=64 if tiny else 256).to(dev)   # fp32 trainable part, cast at the boundary
    opt = torch.optim.AdamW(suffix.parameters(), lr=1e-4)
    emb = base.get_input_embeddings()
    n_soft, ck = suffix.n_soft, cache_arg(base)
    N = B*n_cache_batches
    ids_all, mask_all = query_batch(N, T, shape['vocab_size'])
    za_all, zb_all = torch.randn(N, 64), torch.randn(N, 64)
    y_all = torch.randint(0, 2, (N,)).float()
    it = {'i': 0}

    def batch():
        i = it['i'] % n_cache_batches; it['i'] += 1
        sl = slice(i*B, (i + 1)*B)
        return sl, ids_all[sl].to(dev), mask_all[sl].to(dev), za_all[sl].to(dev), zb_all[sl].to(dev), y_all[sl].to(dev)

    def finish(h_last, y):
        loss = nn.functional.binary_cross_entropy_with_logits(suffix.head(h_last.float()).squeeze(-1), y)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)

    def full_h(ids, m, za, zb, trimmed):
        if trimmed: ids, m = trim(ids, m)
        x = torch.cat([emb(ids), suffix.soft(za, zb).to(dtype)], 1)
        mm = torch.cat([m, torch.ones(len(m), n_soft, dtype=m.dtype, device=dev)], 1)
        return base(inputs_embeds=x, attention_mask=mm, position_ids=positions(mm)).last_hidden_state[:, -1]

    def suffix_h(cache, m, za, zb):
        mm = torch.cat([m, torch.ones(len(m), n_soft, dtype=m.dtype, device=dev)], 1)
        pos = m.sum(1, keepdim=True) + torch.arange(n_soft, device=dev)[None]
        return base(inputs_embeds=suffix.soft(za, zb).to(dtype), attention_mask=mm, position_ids=pos,
                    **{ck: cache}).last_hidden_state[:, -1]

    def nograd_h(ids, m, za, zb):
        ids, m = trim(ids, m)
        with torch.no_grad():
            out = base(input_ids=ids, attention_mask=m, position_ids=positions(m), use_cache=True)
        return suffix_h(output_cache(out), m, za, zb)

    def cached_h(store, sl, m, za, zb):
        kv = store[sl].to(dev, non_blocking=True)
        n = max(1, int(m.sum(1).max()))
        kv, m = kv[..., -n:, :], m[:, -n:]
        return suffix_h(kv_cache([(kv[:, l, 0], kv[:, l, 1]) for l in range(kv.shape[1])], base.config), m, za, zb)

    def full_step(trimmed):
        def f():
            _, ids, m, za, zb, y = batch(); finish(full_h(ids, m, za, zb, trimmed), y)
        return f

    def nograd_query_step():
        _, ids, m, za, zb, y = batch(); finish(nograd_h(ids, m, za, zb), y)

    # precompute the key/value cache of every query once (what the cached paths read)
    kv_store = []
    with torch.no_grad():
        for i in range(n_cache_batches):
            ids, m = ids_all[i*B:(i + 1)*B].to(dev), mask_all[i*B:(i + 1)*B].to(dev)
            out = base(input_ids=ids, attention_mask=m, position_ids=positions(m), use_cache=True)
            kv_store.append(torch.stack([torch.stack([k, v], 1) for k, v in kv_layers(output_cache(out))], 1))  # [B, L, 2, H, T, dh]
    kv_dev = torch.cat(kv_store); del kv_store
    per_pair = kv_dev[0].numel()*kv_dev.element_size() + T*d*kv_dev.element_size()   # + final hidden states, as GRASP keeps
    kv_cpu = kv_dev.cpu().pin_memory() if dev.type == 'cuda' else kv_dev

    def cached_step(store):
        def f():
            sl, _, m, za, zb, y = batch(); finish(cached_h(store, sl, m, za, zb), y)
        return f

    # every path computes the same thing: the final hidden state of the last suffix token
    with torch.no_grad():
        sl, ids, m, za, zb, _ = batch(); it['i'] = 0
        ref = full_h(ids, m, za, zb, False).float()
        diffs = {'full_recompute_trimmed': full_h(ids, m, za, zb, True), 'query_nograd_suffix_grad': nograd_h(ids, m, za, zb),
                 'cached_on_device': cached_h(kv_dev, sl, m, za, zb), 'cached_on_cpu': cached_h(kv_cpu, sl, m, za, zb)}
        diffs = {k: float((v.float() - ref).abs().max()/ref.abs().max()) for k, v in diffs.items()}

    paths = {'full_recompute': full_step(False), 'full_recompute_trimmed': full_step(True),
             'query_nograd_suffix_grad': nograd_query_step, 'cached_on_device': cached_step(kv_dev),
             'cached_on_cpu': cached_step(kv_cpu)}
    res = dict(shape=shape_name, d_model=d, n_layers=shape['num_hidden_layers'], dtype=str(dtype).replace('torch.', ''),
               batch=B, query_tokens=T, n_soft=n_soft, build_seconds=round(build_s, 2),
               cache_mib_per_pair=round(per_pair/2**20, 3), max_rel_diff_vs_full=diffs, paths={})
    for name, fn in paths.items():
        reset_peak(dev)
        s = timed(fn, dev, steps)
        res['paths'][name] = dict(pairs_per_s=round(B/s, 1), seconds_per_step=round(s, 4), peak_gib=peak_gib(dev))
    full = res['paths']['full_recompute']['pairs_per_s']
    res['speedup_vs_full'] = {k: round(v['pairs_per_s']/full, 2) for k, v in res['paths'].items()}
    del base, kv_dev, kv_cpu
    if dev.type == 'cuda': torch.cuda.empty_cache()
    return res


def bench_grasp(dev, tiny, steps):
    dtype = torch.float32 if (tiny or dev.type != 'cuda') else torch.bfloat16
    shapes = TINY_SHAPES if tiny else SHAPES
    B, T = (4, 24) if tiny else (32, 83)
    return [grasp_paths(n, s, dev, dtype, B, T, steps=steps, n_cache_batches=2 if tiny else 4, tiny=tiny)
            for n, s in shapes.items()]


# ---------------------------------------------------------------- UGRN
def bench_ugrn(dev, tiny):
    from genenet.scfm import ScGPT
    from genenet.ugrn import GeneContext, vvp_responses, gdt_jacobians
    G, d, L, heads, S = (40, 32, 2, 4, 8) if tiny else (1200, 512, 12, 8, 120)
    genes = [f'G{i}' for i in range(G)]
    vocab = {'<pad>': 0, '<cls>': 1, **{g: i + 2 for i, g in enumerate(genes)}}
    torch.manual_seed(0)
    model = ScGPT(vocab, embsize=d, nheads=heads, d_hid=d, nlayers=L).to(dev).eval().requires_grad_(False)
    ctx = GeneContext(model, genes, name='bench')
    src = np.arange(S)
    out = dict(genes=G, d_model=d, n_layers=L, sources_measured=S, n_values=8, n_bases=8)
    reset_peak(dev); t = time.perf_counter()
    R = vvp_responses(model, ctx, sources=src, n_values=8)
    sync(dev); vvp = time.perf_counter() - t
    out['vvp'] = dict(seconds=round(vvp, 3), shape=list(R.shape), peak_gib=peak_gib(dev))
    reset_peak(dev); t = time.perf_counter()
    J = gdt_jacobians(model, ctx, targets=src, n_bases=8)
    sync(dev); gdt = time.perf_counter() - t
    out['gdt'] = dict(seconds=round(gdt, 3), shape=list(J.shape), peak_gib=peak_gib(dev))
    out['seconds_per_gene_set_extrapolated'] = round((vvp + gdt)*G/S, 1)
    out['beeline_42_sets_minutes_extrapolated'] = round(42*(vvp + gdt)*G/S/60, 1)
    return out


# ---------------------------------------------------------------- Genen
def bench_genen(dev, tiny, epochs):
    from genenet.genen_gnn import GenenGNN
    N, E, D, C = (500, 3000, 32, 4) if tiny else (43000, 1_000_000, 768, 8)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, N, (E//2,), generator=g), torch.randint(0, N, (E//2,), generator=g)
    keep = a != b
    ei = torch.stack([torch.cat([a[keep], b[keep]]), torch.cat([b[keep], a[keep]])]).to(dev)   # symmetric
    w = torch.rand(int(keep.sum()), generator=g).repeat(2).to(dev)
    x = torch.randn(N, D, generator=g).to(dev)
    y = torch.randint(0, C, (N,), generator=g).to(dev)
    lab = torch.randperm(N, generator=g)[:N//4].to(dev)
    out = dict(nodes=N, directed_edges=int(ei.shape[1]), features=D, classes=C)
    for arch in ('gcn', 'gat'):
        torch.manual_seed(0)
        m = GenenGNN(D, C, hidden=128, arch=arch).to(dev)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        def epoch():
            m.train()
            loss = nn.functional.cross_entropy(m(x, ei, w, None)[lab], y[lab])
            loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        reset_peak(dev)
        s = timed(epoch, dev, epochs, warmup=2)
        out[arch] = dict(ms_per_epoch=round(1000*s, 2), peak_gib=peak_gib(dev))
    return out


# ---------------------------------------------------------------- text embeddings
def embed_throughput(model, dev, n_texts, lengths, batch, vocab):
    "Texts/s of mean-pooled final hidden states, length-sorted batches of random token ids."
    g = torch.Generator().manual_seed(1)
    lens = torch.randint(lengths[0], lengths[1] + 1, (n_texts,), generator=g).sort(descending=True).values
    def run():
        for i in range(0, n_texts, batch):
            L = int(lens[i])
            ids = torch.randint(5, vocab, (min(batch, n_texts - i), L), generator=g).to(dev)
            m = (torch.arange(L)[None] < lens[i:i + batch, None]).long().to(dev)
            with torch.no_grad(): mean_pool(model(input_ids=ids, attention_mask=m).last_hidden_state, m).float().cpu()
    reset_peak(dev)
    s = timed(run, dev, 1, warmup=0)
    return dict(texts=n_texts, seconds=round(s, 3), texts_per_s=round(n_texts/s, 1), peak_gib=peak_gib(dev))


def bench_text(dev, tiny):
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaModel
    dtype = torch.float32 if (tiny or dev.type != 'cuda') else torch.bfloat16
    old = torch.get_default_dtype()
    bert_cfg = (BertConfig(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
                if tiny else BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                        intermediate_size=3072))
    torch.manual_seed(0)
    try:
        torch.set_default_dtype(dtype)
        with torch.device(dev): bert = BertModel(bert_cfg, add_pooling_layer=False).eval()
    finally: torch.set_default_dtype(old)
    n_genes, n_go = 20000, 43000
    sample = 64 if tiny else 4096
    out = {}
    for what, n_all, lengths in (('genes', n_genes, (64, 160)), ('go_terms', n_go, (16, 96))):
        r = embed_throughput(bert, dev, sample, (8, 24) if tiny else lengths, 16 if tiny else 256, bert_cfg.vocab_size)
        r['all_texts'] = n_all; r['seconds_all_extrapolated'] = round(n_all/r['texts_per_s'], 1)
        out[f'biomedbert_shape_{what}'] = r
    del bert
    shape = TINY_SHAPES['tiny-a'] if tiny else SHAPES['llama3.1-8b']
    try:
        torch.set_default_dtype(dtype)
        with torch.device(dev): lm = LlamaModel(LlamaConfig(**shape, attn_implementation='sdpa')).eval()
    finally: torch.set_default_dtype(old)
    r = embed_throughput(lm, dev, 32 if tiny else 1024, (8, 24) if tiny else (64, 160), 8 if tiny else 64, shape['vocab_size'])
    r['all_texts'] = n_genes; r['seconds_all_extrapolated'] = round(n_genes/r['texts_per_s'], 1)
    out['llama8b_shape_genes'] = r
    del lm
    if dev.type == 'cuda': torch.cuda.empty_cache()
    return out


# ---------------------------------------------------------------- main
SECTIONS = ('grasp', 'ugrn', 'genen', 'text')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='results.json', help='where to write the results (JSON)')
    ap.add_argument('--tiny', action='store_true', help='tiny shapes: a CPU smoke run of every section')
    ap.add_argument('--device', default=None, help="default: cuda if available, else cpu")
    ap.add_argument('--sections', default=','.join(SECTIONS), help='comma-separated subset of ' + ','.join(SECTIONS))
    ap.add_argument('--steps', type=int, default=None, help='timed steps per GRASP path (default 10; 2 with --tiny)')
    ap.add_argument('--budget', type=float, default=400, help='seconds after which remaining sections are skipped')
    a = ap.parse_args(argv)
    dev = torch.device(a.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if dev.type == 'cpu' and not a.tiny: print('warning: full shapes on a CPU take very long; use --tiny', file=sys.stderr)
    if dev.type == 'cuda': torch.backends.cuda.matmul.allow_tf32 = True
    import transformers
    res = dict(device=str(dev), device_name=torch.cuda.get_device_name(dev) if dev.type == 'cuda' else platform.processor() or 'cpu',
               tiny=a.tiny, torch=torch.__version__, transformers=transformers.__version__, python=platform.python_version(),
               started=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), sections={}, errors={}, skipped=[])
    t_start = time.perf_counter()
    steps = a.steps or (2 if a.tiny else 10)
    run = {'grasp': lambda: bench_grasp(dev, a.tiny, steps), 'ugrn': lambda: bench_ugrn(dev, a.tiny),
           'genen': lambda: bench_genen(dev, a.tiny, 3 if a.tiny else 20), 'text': lambda: bench_text(dev, a.tiny)}
    for name in [s.strip() for s in a.sections.split(',') if s.strip()]:
        if name not in run: ap.error(f'unknown section {name!r}; choose from {SECTIONS}')
        if time.perf_counter() - t_start > a.budget: res['skipped'].append(name); continue
        t = time.perf_counter()
        try: res['sections'][name] = run[name]()
        except Exception as e:   # one broken section must not lose the others' numbers: recorded, and the exit code says so
            res['errors'][name] = f'{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}'
        print(f'{name}: {time.perf_counter() - t:.1f} s' + (' (FAILED)' if name in res['errors'] else ''), flush=True)
    res['total_seconds'] = round(time.perf_counter() - t_start, 1)
    with open(a.out + '.tmp', 'w') as f: json.dump(res, f, indent=1)
    os.replace(a.out + '.tmp', a.out)
    for r in res['sections'].get('grasp', []):
        print(f"GRASP {r['shape']} (B={r['batch']}, T={r['query_tokens']}, {r['dtype']}): "
              + ', '.join(f"{k} {v['pairs_per_s']} pairs/s" for k, v in r['paths'].items()))
        print(f"   speed-up vs full recompute: {r['speedup_vs_full']}; cache {r['cache_mib_per_pair']} MiB/pair")
    if 'ugrn' in res['sections']:
        u = res['sections']['ugrn']; print(f"UGRN: {u['seconds_per_gene_set_extrapolated']} s per {u['genes']}-gene set (goal < 21 s for 42 sets in 15 min)")
    if 'genen' in res['sections']:
        g = res['sections']['genen']; print(f"Genen: GCN {g['gcn']['ms_per_epoch']} ms, GAT {g['gat']['ms_per_epoch']} ms per epoch")
    if 'text' in res['sections']:
        for k, v in res['sections']['text'].items(): print(f"text {k}: {v['texts_per_s']} texts/s, all {v['all_texts']} in ~{v['seconds_all_extrapolated']} s")
    print(f"wrote {a.out} in {res['total_seconds']} s" + (f"; errors in {list(res['errors'])}" if res['errors'] else ''))
    return 1 if res['errors'] else 0


if __name__ == '__main__':
    sys.exit(main())
