"""LangPert replies: usable fraction and seconds per reply, grammar-constrained vs unconstrained, and a cached rerun.

    python bench/langpert.py                              # SmolLM2-135M, 18 Norman K562 genes, leave-one-out candidates
    python bench/langpert.py --model gemma3-270m --n 8
    python bench/langpert.py --no-reasoning               # kNN list only (faster)
    python bench/langpert.py --backend replay             # no model: a replay backend that sleeps --delay s per call

For each mode (constrained: llguidance grammar; unconstrained: free text + parser) it prints the usable-reply
fraction (a reply that yields >= 1 offered gene without retry), wall and CPU seconds per reply of the cold run
(CPU seconds are the fairer number on a shared machine), and the unconstrained/constrained time ratios. A cached rerun of the constrained mode must make 0 LLM calls.
"""
import argparse, json, os, shutil, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from genenet.langpert import LangPert, CachedLLM, ReplayBackend
from genenet.langpert_backends import TransformersBackend
from genenet.langpert_eval import load_norman_k562, NORMAN_K562_CONTEXT


def run(backend, cache, genes, pb, constrain, reasoning, k_range):
    "Leave-one-out: each gene is asked about with every other perturbation as a candidate."
    llm = CachedLLM(backend, cache, progress=True)
    recs, t, c = [], time.perf_counter(), time.process_time()
    # one LangPert per held-out gene (its own candidate list); prompts batched through one `complete` call
    lps = {g: LangPert(llm, context=NORMAN_K562_CONTEXT, k_range=k_range, reasoning=reasoning, constrain=constrain,
                       fallback=('mean',)).fit(pb.delta.drop(index=g)) for g in genes}
    req = [lps[g].requests([g])[0] for g in genes]
    llm.complete([p for p, _ in req], [s for _, s in req])        # the timed, batched generation
    gen_s, cpu_s = time.perf_counter() - t, time.process_time() - c
    for g in genes: recs.append(lps[g].neighbours([g]).iloc[0])  # from the cache now
    usable = sum(bool(r['kNN']) for r in recs)
    return dict(seconds=gen_s, cpu=cpu_s, calls=llm.calls, usable=usable, n=len(genes),
                k=[len(r['kNN']) for r in recs], example=recs[0]['raw'][:300])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--backend', default='transformers', choices=['transformers', 'replay'])
    ap.add_argument('--model', default='smollm2-135m')
    ap.add_argument('--n', type=int, default=18, help='held-out genes (Norman K562 has 18)')
    ap.add_argument('--k', default='5-10', help='k range')
    ap.add_argument('--no-reasoning', action='store_true')
    ap.add_argument('--max-new-tokens', type=int, default=256, help='unconstrained replies')
    ap.add_argument('--batch-size', type=int, default=6)
    ap.add_argument('--delay', type=float, default=0.2, help='replay backend: seconds per call')
    ap.add_argument('--modes', default='constrained,unconstrained')
    a = ap.parse_args()

    pb = load_norman_k562()
    genes = sorted(pb.perts)[:a.n]
    reasoning = not a.no_reasoning
    tmp = Path(tempfile.mkdtemp(prefix='langpert_bench_'))
    if a.backend == 'transformers':
        mk = lambda c: TransformersBackend(a.model, max_new_tokens=a.max_new_tokens, batch_size=a.batch_size, constrain=c)
    else:
        mk = lambda c: ReplayBackend(lambda p: '{"reasoning": "-", "kNN": ["%s"]}' % sorted(pb.perts)[-1], delay=a.delay, name='bench-replay')
    out = {}
    try:
        for mode in a.modes.split(','):
            c = mode == 'constrained'
            be = mk(c)
            out[mode] = run(be, tmp / mode, genes, pb, c, reasoning, a.k)
            if c:   # a cached rerun with a fresh backend object: nothing in memory, 0 calls, model never loaded
                again = run(mk(c), tmp / mode, genes, pb, c, reasoning, a.k)
                assert again['calls'] == 0, 'a cached rerun must make zero LLM calls'
                out['cached_rerun'] = again
    finally: shutil.rmtree(tmp, ignore_errors=True)
    print(f'backend={a.backend} model={a.model} genes={len(genes)} candidates={len(pb.perts) - 1} k={a.k} reasoning={reasoning}')
    print(f'{"mode":<15}{"usable":>10}{"wall s/reply":>14}{"CPU s/reply":>13}{"mean k":>8}')
    for mode, r in out.items():
        print(f'{mode:<15}{r["usable"]:>5}/{r["n"]:<4}{r["seconds"] / r["n"]:>14.2f}{r["cpu"] / r["n"]:>13.2f}{sum(r["k"]) / len(r["k"]):>8.1f}')
    if {'constrained', 'unconstrained'} <= set(out):
        print(f'seconds per reply, unconstrained / constrained: wall {out["unconstrained"]["seconds"] / out["constrained"]["seconds"]:.2f}, '
              f'CPU {out["unconstrained"]["cpu"] / out["constrained"]["cpu"]:.2f}')
        print('example constrained reply:', out['constrained']['example'])
        print('example unconstrained reply:', out['unconstrained']['example'])
    print(json.dumps({m: dict(usable_fraction=r['usable'] / r['n'], s_per_reply=round(r['seconds'] / r['n'], 3), cpu_s_per_reply=round(r['cpu'] / r['n'], 3), calls=r['calls'])
                      for m, r in out.items()}))


if __name__ == '__main__':
    main()
