"""GRASP speed benchmark: the query KV cache vs full recompute, side by side in one run (offline SmolLM2-135M, CPU).

The backbone is frozen and causal, so the 80 query tokens' keys/values and final states do not depend on the three
soft suffix tokens. This script builds one GRASP classifier and times one *training step* (forward, BCE, backward,
AdamW step) three ways on the same batches:

  full      : the whole 83-token sequence (80 left-padded query + 3 soft tokens) through the backbone with autograd
  full-trim : the same, skipping leading columns that are padding in every row of the batch (identical logits)
  per-batch : the query run once per step without grad, then only the 3 suffix tokens with grad
  cached    : query KV precomputed once for the data set (QueryCache); a step runs only the 3 suffix tokens

It first checks that the cached logits and loss equal the full recompute (to 1e-4), then prints pairs/s and
speed-ups, plus the amortised cost of the cache over `--epochs` epochs (building the cache counted once).

    python bench/grasp.py [--pairs 64] [--batch 16] [--query-len 80] [--r 256] [--steps 3] [--epochs 15]
"""
import argparse, time, warnings
import numpy as np
import pandas as pd
import torch

warnings.filterwarnings('ignore')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='smollm2-135m')
    ap.add_argument('--pairs', type=int, default=64)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--query-len', type=int, default=80)
    ap.add_argument('--r', type=int, default=256)
    ap.add_argument('--steps', type=int, default=3, help='timed steps per mode (after one warm-up step)')
    ap.add_argument('--epochs', type=int, default=15, help='epochs for the amortised comparison')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from genenet.models import load_causal_lm
    from genenet.grasp import (ksr_positives, GeneVectorTable, GraspPrompt, GraspClassifier, QueryCache, build_queries,
                               tokenize_queries, position_ids, _base)
    lm, tok = load_causal_lm(a.model, device='cpu')
    d = lm.config.hidden_size
    pairs = ksr_positives().sample(a.pairs, random_state=0).reset_index(drop=True)   # real pairs: only the query text matters here
    genes = sorted(set(pairs.gene_a) | set(pairs.gene_b))
    tab = GeneVectorTable(genes, np.random.default_rng(0).normal(size=(len(genes), d)).astype(np.float32))
    ids, mask = tokenize_queries(tok, build_queries(pairs, 'ksr'), a.query_len)
    A, B = tab.index(pairs.gene_a), tab.index(pairs.gene_b)
    y = torch.tensor(np.random.default_rng(1).integers(0, 2, len(pairs)), dtype=torch.float32)

    t0 = time.perf_counter()
    cache = QueryCache.build(lm, ids, mask, batch_size=a.batch, progress=False)
    t_build = time.perf_counter() - t0
    torch.manual_seed(0)
    clf = GraspClassifier(lm, tab, query_len=a.query_len, prompt=GraspPrompt(d, d, r=a.r), cache=cache)
    opt = torch.optim.AdamW([p for p in clf.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    # --- equivalence (no grad), whole set
    with torch.no_grad():
        full = torch.cat([clf.forward_full(ids[i:i+a.batch], mask[i:i+a.batch], A[i:i+a.batch], B[i:i+a.batch])
                          for i in range(0, len(pairs), a.batch)])
        fast = torch.cat([clf({'pair': torch.arange(i, min(i+a.batch, len(pairs))), 'a': A[i:i+a.batch], 'b': B[i:i+a.batch]})
                          for i in range(0, len(pairs), a.batch)])
    dlogit = (full - fast).abs().max().item(); dloss = abs(bce(full, y).item() - bce(fast, y).item())

    def per_batch(sl):
        "query once without grad (no stored cache), then the suffix tokens with grad"
        with torch.no_grad():
            m = mask[sl]
            out = _base(lm)(input_ids=ids[sl], attention_mask=m, position_ids=position_ids(m), use_cache=True)
            kv = torch.stack([torch.stack([l.keys, l.values], 1) for l in out.past_key_values.layers], 1)
        tmp = QueryCache(ids[sl], mask[sl], out.last_hidden_state, kv)
        clf.cache, saved = tmp, clf.cache
        try: return clf({'pair': torch.arange(len(m)), 'a': A[sl], 'b': B[sl]})
        finally: clf.cache = saved

    modes = {'full': lambda sl: clf.forward_full(ids[sl], mask[sl], A[sl], B[sl], trim=False),
             'full-trim': lambda sl: clf.forward_full(ids[sl], mask[sl], A[sl], B[sl]),
             'per-batch': per_batch,
             'cached': lambda sl: clf({'pair': torch.arange(sl.start, sl.stop), 'a': A[sl], 'b': B[sl]})}
    times = {}
    for name, fwd in modes.items():
        ts = []
        for s in range(a.steps + 1):
            i = (s*a.batch) % max(1, len(pairs) - a.batch + 1)
            sl = slice(i, i + a.batch)
            t = time.perf_counter()
            loss = bce(fwd(sl), y[sl]); loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
            if s: ts.append(time.perf_counter() - t)   # the first step is a warm-up
        times[name] = float(np.median(ts))
    assert all(p.grad is None for p in lm.parameters())

    n = a.batch
    print(f'GRASP training step, {a.model} (d={d}, {lm.config.num_hidden_layers} layers), CPU threads={a.threads}, '
          f'batch {n}, query {a.query_len} + 3 soft tokens, r={a.r}, K=4')
    print(f'equivalence on {len(pairs)} real PhosphoNetworks pairs: max |logit_cached - logit_full| = {dlogit:.2e}, '
          f'|loss diff| = {dloss:.2e}  ->  {"OK" if dlogit < 1e-4 and dloss < 1e-4 else "FAIL"} (tol 1e-4)')
    print(f'query cache: built for {len(pairs)} pairs in {t_build:.2f} s ({len(pairs)/t_build:.1f} pairs/s), '
          f'{cache.nbytes/2**20:.0f} MiB ({cache.nbytes/len(pairs)/2**20:.2f} MiB/pair)')
    rows = [dict(mode=k, step_s=v, pairs_per_s=n/v, speedup_vs_full=times['full']/v, speedup_vs_full_trim=times['full-trim']/v)
            for k, v in times.items()]
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f'{x:.3f}'))
    steps_per_epoch = len(pairs)/n
    full_total = a.epochs*steps_per_epoch*times['full']
    cached_total = t_build + a.epochs*steps_per_epoch*times['cached']
    print(f'{a.epochs} epochs over {len(pairs)} pairs: full {full_total:.1f} s vs cache build + cached steps {cached_total:.1f} s '
          f'-> {full_total/cached_total:.1f}x amortised')
    sp, sp2 = times['full']/times['cached'], times['full-trim']/times['cached']
    print(f'training-step speed-up, cached vs full 83-token recompute: {sp:.1f}x (goal >= 10x: {"met" if sp >= 10 else "NOT met"}); '
          f'vs full recompute without padding columns: {sp2:.1f}x')


if __name__ == '__main__':
    main()
