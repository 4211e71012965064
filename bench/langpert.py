"""LangPert response cache: a cold run vs a cached rerun, side by side in one process.

    python bench/langpert.py                      # SmolLM2-135M (offline default), 6 Norman K562 genes
    python bench/langpert.py --backend replay     # no model: a replay backend that sleeps --delay s per call
    python bench/langpert.py --n 18 --max-new-tokens 128

Prints LLM calls and wall time of each run and the cold/cached wall-time ratio. The cached rerun must make 0 calls
(it also never loads the model: the transformers backend loads lazily on the first cache miss).
"""
import argparse, json, os, shutil, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from genenet.langpert import LangPert, CachedLLM, TransformersBackend, ReplayBackend
from genenet.langpert_eval import load_norman_k562


def run(backend, cache, genes, train):
    llm = CachedLLM(backend, cache, progress=False)
    t = time.perf_counter()
    pred, rec = LangPert(llm, train, fallback=('mean',)).predict(genes)
    return time.perf_counter() - t, llm.calls, llm.hits, pred, rec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--backend', default='transformers', choices=['transformers', 'replay'])
    ap.add_argument('--model', default='smollm2-135m')
    ap.add_argument('--n', type=int, default=6, help='held-out genes to predict')
    ap.add_argument('--max-new-tokens', type=int, default=64)
    ap.add_argument('--delay', type=float, default=0.5, help='replay backend: seconds per call')
    ap.add_argument('--cache', default=None, help='cache folder (default: a fresh temporary one, removed afterwards)')
    a = ap.parse_args()

    pb = load_norman_k562()
    genes, train = pb.perts[:a.n], pb.delta.drop(index=pb.perts[:a.n])
    tmp = Path(a.cache or tempfile.mkdtemp(prefix='langpert_bench_'))
    if a.backend == 'transformers':
        mk = lambda: TransformersBackend(a.model, max_new_tokens=a.max_new_tokens, batch_size=max(1, a.n))
    else:
        mk = lambda: ReplayBackend(lambda p: '{"reasoning": "-", "kNN": ["%s"]}' % train.index[0], delay=a.delay, name='bench-replay')
    try:
        t_cold, calls_cold, _, p_cold, rec = run(mk(), tmp, genes, train)
        t_warm, calls_warm, hits_warm, p_warm, _ = run(mk(), tmp, genes, train)   # fresh backend object: nothing in memory
    finally:
        if a.cache is None: shutil.rmtree(tmp, ignore_errors=True)
    assert calls_warm == 0, 'a cached rerun must make zero LLM calls'
    assert p_cold.equals(p_warm), 'cached predictions must be identical'
    usable = int((rec['fallback'].isna()).sum())
    print(f'backend={a.backend} model={a.model if a.backend == "transformers" else "replay"} genes={len(genes)} '
          f'candidates={len(train)} max_new_tokens={a.max_new_tokens}')
    print(f'{"run":<8}{"LLM calls":>10}{"cache hits":>12}{"wall s":>10}')
    print(f'{"cold":<8}{calls_cold:>10}{0:>12}{t_cold:>10.2f}')
    print(f'{"cached":<8}{calls_warm:>10}{hits_warm:>12}{t_warm:>10.3f}')
    print(f'wall-time ratio cold/cached: {t_cold / t_warm:.0f}x   (usable replies in cold run: {usable}/{len(genes)})')
    print(json.dumps(dict(backend=a.backend, n=len(genes), calls_cold=calls_cold, calls_cached=calls_warm,
                          wall_cold_s=round(t_cold, 3), wall_cached_s=round(t_warm, 4), ratio=round(t_cold / t_warm, 1),
                          usable_replies=usable)))


if __name__ == '__main__':
    main()
