"""LangPert in PerturbQA rank mode with an offline LLM: usable replies, seconds per reply, and the rank metrics beside the controls.

    python bench/langpert_rank.py                               # SmolLM2-135M, K562, 60 training knockdowns, 15 held out
    python bench/langpert_rank.py --model gemma3-270m --n-test 10
    python bench/langpert_rank.py --reasoning                   # reasoning field first (the paper's prompt; slower)

Rank mode (`genenet.langpert_eval.load_rank_data`): each knockdown's response is its sigrecon up-regulated rank list
(score 1 for rank 1, falling linearly to 0 at --depth); PerturbQA's split says which knockdowns are held out. The
training knockdowns are a random sample of --n-train from PerturbQA's train split (they are LangPert's candidate
list, sorted); --n-test held-out knockdowns are drawn from its test split. Every method predicts each held-out
knockdown as the mean score of its chosen training knockdowns, and is scored by precision@20 against the knockdown's
significant up-regulated genes and by ROC-AUC of the score for PerturbQA's DE labels (`rank_metrics`).
Controls, all with k = --k neighbours: non-control mean (every training knockdown), random kNN, GO-annotation
kNN and STRING kNN (knowledge), embedding kNN (MiniLM on gene summaries), oracle kNN (sees the answer: a bound).
LangPert's replies are decoded under the reply grammar (cold cache: every reply is generated); a reply without a
usable gene falls back to the mean and is reported as its own row. Intervals: mean ± 1.96 SE across knockdowns.
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

import numpy as np
import pandas as pd

from genenet.langpert import CachedLLM
from genenet.langpert_backends import TransformersBackend
from genenet.langpert_eval import (load_rank_data, run_rank, mean_selector, oracle_selector, random_selector, knowledge_selector,
                                   embedding_selector, gene_embeddings, langpert_selector)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='smollm2-135m')
    ap.add_argument('--cell', default='k562', choices=['k562', 'rpe1'])
    ap.add_argument('--n-train', type=int, default=60, help='training knockdowns (the candidate list)')
    ap.add_argument('--n-test', type=int, default=15, help='held-out knockdowns asked about')
    ap.add_argument('--k', default='5-10', help="LangPert's k range")
    ap.add_argument('--k-control', type=int, default=10, help="controls' k")
    ap.add_argument('--reasoning', action='store_true')
    ap.add_argument('--batch-size', type=int, default=5)
    ap.add_argument('--depth', type=int, default=1000)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--cache', default=None, help='reply cache folder (default: a fresh temporary one, i.e. a cold run)')
    a = ap.parse_args()

    rd = load_rank_data(a.cell, depth=a.depth)
    rng = np.random.default_rng(a.seed)
    tr = sorted(rng.choice(rd.train, size=min(a.n_train, len(rd.train)), replace=False))
    te = sorted(rng.choice(rd.test, size=min(a.n_test, len(rd.test)), replace=False))
    genes = tr + te
    controls = {'non-control mean': mean_selector(), f'random kNN k={a.k_control}': random_selector(a.k_control, a.seed),
                f'GO kNN k={a.k_control}': knowledge_selector(genes, 'go', a.k_control),
                f'STRING kNN k={a.k_control}': knowledge_selector(genes, 'string', a.k_control),
                f'embedding kNN k={a.k_control}': embedding_selector(gene_embeddings(genes, progress=False), a.k_control),
                f'oracle kNN k={a.k_control} (bound)': oracle_selector(a.k_control)}
    res_c, _ = run_rank(rd, controls, train=tr, test=te, progress=False)

    llm = CachedLLM(TransformersBackend(a.model, batch_size=a.batch_size), a.cache or tempfile.mkdtemp(prefix='langpert_rank_'), progress=True)
    sel = langpert_selector(llm, cell_line=a.cell, k_range=a.k, reasoning=a.reasoning, fallback=('mean',))
    t, c = time.perf_counter(), time.process_time()
    res_l, rec = run_rank(rd, {'LangPert': sel}, train=tr, test=te, progress=False)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    res = pd.concat([res_l, res_c], ignore_index=True)

    usable = rec['kNN'].map(len).gt(0)
    cols = ['precision@20', 'de_auroc']
    g = res.groupby('method', sort=False)[cols]
    tab = g.mean().join(1.96 * g.sem(), rsuffix='_ci').join(g.size().rename('n'))
    print(f'model={a.model} cell={a.cell} train knockdowns={len(tr)} held out={len(te)} k={a.k} reasoning={a.reasoning} '
          f'(controls k={a.k_control}); cache={"cold" if a.cache is None else a.cache}')
    speed = (f'{wall / llm.calls:.2f} wall s and {cpu / llm.calls:.2f} CPU s per reply' if llm.calls else 'all replies cached')
    print(f'LangPert: usable replies {int(usable.sum())}/{len(rec)} ({usable.mean():.0%}); LLM calls {llm.calls}; {speed}; '
          f'mean k {rec["kNN"].map(len)[usable].mean():.1f}; statuses {rec["status"].value_counts().to_dict()}')
    pos = {g: i for i, g in enumerate(tr)}   # the candidate list is the sorted training knockdowns
    chosen = [pos[g] for nb in rec['kNN'] for g in nb]
    print(f'position bias: chosen genes sit at mean position {np.mean(chosen):.1f} of the {len(tr)}-gene sorted candidate list '
          f'(uniform choice: {(len(tr) - 1) / 2:.1f}); {rec["kNN"].map(tuple).nunique()} distinct lists in {len(rec)} replies')
    print('first reply:', str(rec['raw'].iloc[0])[:300])
    print(f'{"method":<34}{"precision@20":>20}{"DE ROC-AUC":>20}{"n":>4}')
    for m, r in tab.iterrows():
        print(f'{m:<34}{r["precision@20"]:>11.3f} ± {r["precision@20_ci"]:.3f}{r["de_auroc"]:>13.3f} ± {r["de_auroc_ci"]:.3f}{int(r["n"]):>4}')
    print(json.dumps(dict(usable_fraction=float(usable.mean()), s_per_reply=round(wall / llm.calls, 3) if llm.calls else None,
                          cpu_s_per_reply=round(cpu / llm.calls, 3) if llm.calls else None, calls=llm.calls,
                          metrics=tab.round(4).reset_index().to_dict('records'))))


if __name__ == '__main__':
    main()
