"""First (GGUF → transformers) load vs cached load of SmolLM2-135M, measured side by side in one run.

    python bench/models.py [--model smollm2-135m] [--repeats 3]

The 'first' load runs with GENENET_CACHE pointing at a fresh temporary folder, so it includes reading and
de-quantising the GGUF file and writing the converted copy; the cached loads then read that copy back, each
checking the copy's SHA-256 stamp as a new process would (the check's own cost is printed beside it).
Goal from issue 2: cached load >= 5x faster.
"""
import argparse, os, sys, tempfile, time, statistics
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TQDM_DISABLE', '1')   # keep the conversion's progress bars out of the table
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import torch
from transformers.utils import logging as hf_logging


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', default='smollm2-135m')
    ap.add_argument('--repeats', type=int, default=3, help='cached loads to time (median reported)')
    args = ap.parse_args()
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    torch.set_num_threads(1)   # shared cores: one thread avoids contention, same for both loads
    from genenet import models, model_files
    with tempfile.TemporaryDirectory(prefix='genenet-bench-') as d:
        os.environ['GENENET_CACHE'] = d
        t = time.perf_counter(); m, tok = models.load_causal_lm(args.model, device='cpu'); first = time.perf_counter() - t
        n = sum(p.numel() for p in m.parameters()); del m, tok
        cached = []
        for _ in range(args.repeats):
            model_files._VERIFIED.clear()   # forget this process's verification: every load checks the stamp
            t = time.perf_counter(); m, tok = models.load_causal_lm(args.model, device='cpu'); cached.append(time.perf_counter() - t)
            del m, tok
        model_files._VERIFIED.clear()
        t = time.perf_counter(); problem = model_files.check_stamp(model_files.converted_dir(args.model)); check = time.perf_counter() - t
        assert problem is None, problem
    med = statistics.median(cached)
    print(f'model: {args.model} ({n/1e6:.0f}M parameters), device: cpu, torch threads: {torch.get_num_threads()}')
    print(f'{"load":<34}{"seconds":>10}')
    print(f'{"first (GGUF -> transformers, save)":<34}{first:>10.2f}')
    print(f'{"cached (median of %d)" % len(cached):<34}{med:>10.2f}   (all: {", ".join(f"{c:.2f}" for c in cached)})')
    print(f'{"  of which the SHA-256 stamp check":<34}{check:>10.2f}')
    ratio = first/med
    print(f'ratio first/cached: {ratio:.1f}x  (goal >= 5x: {"met" if ratio >= 5 else "NOT met"})')


if __name__ == '__main__':
    main()
