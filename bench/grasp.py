"""GRASP training paths side by side: full recompute, per-batch query states, and the query cache (CPU, GPU or disk).

One GRASP classifier, one training step (forward, BCE, backward, AdamW) timed four ways on the same batches:

  full       : the whole sequence (query + 3 soft tokens) through the backbone with autograd, no trimming
  full-trim  : the same, leading all-padding columns skipped (identical logits)
  per-batch  : query states recomputed per batch without gradient, then the 3 suffix tokens with gradient
               (memory independent of the number of pairs: the default on a GPU)
  cached     : query states from a `QueryCache` built once (`--storage cpu|cuda|disk`; the default on CPU within budget)

It first checks that the cached and per-batch logits equal the full recompute, then prints pairs/s, the speed-ups
relative to `full`, the cache build time and its size, and the amortised cached speed-up over `--epochs` epochs.

    python bench/grasp.py [--model smollm2-135m] [--n-layers 4] [--pairs 64] [--batch 16] [--query-len 80] [--steps 3]
                          [--storage cpu] [--dtype fp32] [--device cpu]
"""
import argparse, tempfile, time, warnings
import numpy as np
import torch

from genenet.models import load_causal_lm
from genenet.grasp import GeneVectorTable, GraspPrompt, build_queries, tokenize_queries
from genenet.grasp_cache import GraspClassifier, QueryCache
from genenet.grasp_tasks import ksr_positives

warnings.filterwarnings('ignore')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='smollm2-135m')
    ap.add_argument('--n-layers', type=int, default=None)
    ap.add_argument('--pairs', type=int, default=64)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--query-len', type=int, default=80)
    ap.add_argument('--r', type=int, default=256)
    ap.add_argument('--steps', type=int, default=3, help='timed steps per path (after one warm-up step)')
    ap.add_argument('--epochs', type=int, default=15, help='epochs for the amortised comparison')
    ap.add_argument('--storage', default=None, help="cache storage: cpu, cuda or disk (default: the device's)")
    ap.add_argument('--dtype', default=None, help='backbone dtype: fp32, bf16, fp16 (default: bf16 on GPU, fp32 on CPU)')
    ap.add_argument('--device', default=None)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    lm, tok = load_causal_lm(a.model, device=a.device, dtype=a.dtype, n_layers=a.n_layers)
    dev = next(lm.parameters()).device
    d = lm.config.hidden_size
    pairs = ksr_positives().sample(a.pairs, random_state=0).reset_index(drop=True)   # real pairs: only the query text matters
    genes = sorted(set(pairs.gene_a) | set(pairs.gene_b))
    tab = GeneVectorTable(genes, np.random.default_rng(0).normal(size=(len(genes), d)).astype(np.float32))
    ids, mask = tokenize_queries(tok, build_queries(pairs, 'ksr'), a.query_len, truncate=True)
    A, B = tab.index(pairs.gene_a), tab.index(pairs.gene_b)
    y = torch.tensor(np.random.default_rng(1).integers(0, 2, len(pairs)), dtype=torch.float32, device=dev)
    torch.manual_seed(0)
    clf = GraspClassifier(lm, tab, query_len=a.query_len, prompt=GraspPrompt(d, d, r=a.r)).to(dev)
    clf.prompt.float(); clf.head.float()
    storage = a.storage or ('cuda' if dev.type == 'cuda' else 'cpu')
    tmp = tempfile.mkdtemp() if storage == 'disk' else None
    t0 = time.perf_counter()
    cache = QueryCache.build(lm, ids, mask, batch_size=a.batch, storage=storage, path=tmp, progress=False)
    t_build = time.perf_counter() - t0
    batch = lambda sl: dict(input_ids=ids[sl].to(dev), attention_mask=mask[sl].to(dev), a=A[sl].to(dev), b=B[sl].to(dev))
    sls = [slice(i, min(i + a.batch, len(pairs))) for i in range(0, len(pairs), a.batch)]
    with torch.no_grad():
        full = torch.cat([clf.forward_full(*(batch(s)[k] for k in ('input_ids', 'attention_mask', 'a', 'b'))) for s in sls])
        per = torch.cat([clf(batch(s)) for s in sls])
        clf.cache = cache
        cached = torch.cat([clf(batch(s)) for s in sls])
        clf.cache = None
    print(f'max |logit| difference vs full: per-batch {(full - per).abs().max():.2e}, cached {(full - cached).abs().max():.2e} '
          f'(dtype {next(lm.parameters()).dtype}, storage {storage})')
    opt = torch.optim.AdamW([p for p in clf.parameters() if p.requires_grad], lr=1e-4)
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def use(c):
        clf.cache = c
        return lambda s: clf(batch(s))
    paths = {'full': lambda s: clf.forward_full(*(batch(s)[k] for k in ('input_ids', 'attention_mask', 'a', 'b')), trim=False),
             'full-trim': lambda s: clf.forward_full(*(batch(s)[k] for k in ('input_ids', 'attention_mask', 'a', 'b'))),
             'per-batch': None, 'cached': None}
    speed = {}
    for name in paths:
        fn = use(None) if name == 'per-batch' else use(cache) if name == 'cached' else paths[name]
        times = []
        for i in range(a.steps + 1):
            s = sls[i % len(sls)]
            if dev.type == 'cuda': torch.cuda.synchronize()
            t = time.perf_counter()
            loss = bce(fn(s), y[s]); opt.zero_grad(); loss.backward(); opt.step()
            if dev.type == 'cuda': torch.cuda.synchronize()
            if i: times.append(time.perf_counter() - t)
        speed[name] = a.batch / np.mean(times)
    clf.cache = None
    for k, v in speed.items(): print(f'{k:10s} {v:8.1f} pairs/s   {v / speed["full"]:5.2f}x full')
    ep = len(pairs) / speed['cached'] * a.epochs + t_build
    print(f'cache: {cache.nbytes / 2**20:.1f} MiB for {len(cache)} queries, built in {t_build:.1f} s; over {a.epochs} epochs the cached path '
          f'is {len(pairs) / speed["full"] * a.epochs / ep:.1f}x full, {len(pairs) / speed["per-batch"] * a.epochs / ep:.1f}x per-batch')


if __name__ == '__main__':
    main()
