"""UGRN feature cost: batched (one forward per source and value / one backward per batch of Jacobian rows) vs a
per-pair loop, side by side in one run; then the time of the whole VVP+GDT feature table for the BEELINE sets.

    python bench/ugrn.py                      # small offline scFM, mDC STRING TFs+500, loop on 20 pairs, all sets
    python bench/ugrn.py --model tiny --table-sets 4   # faster
    python bench/ugrn.py --lodo --M 4 --T 4           # LODO methods vs controls on the small scFM (hESC -> 4 sets, ~30 min on 1 busy core)

The per-pair loop is timed on `--loop-pairs` pairs and extrapolated (linearly: each pair costs the same) to every
labelled pair of the set; the batched path is timed on all of them. Both use the same model, M, T and threads.
"""
import argparse, time, warnings
import numpy as np, pandas as pd, torch

from genenet.scfm_pretrain import pretrained_scfm
from genenet import ugrn as U, ugrn_lodo as L
from genenet.metrics import binary_metrics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default='small', choices=['small', 'tiny'])
    ap.add_argument('--cell', default='mDC'); ap.add_argument('--network', default='STRING'); ap.add_argument('--size', type=int, default=500)
    ap.add_argument('--M', type=int, default=8); ap.add_argument('--T', type=int, default=8)
    ap.add_argument('--loop-pairs', type=int, default=20)
    ap.add_argument('--table-sets', type=int, default=0, help='how many BEELINE sets for the full-table timing (0: all)')
    ap.add_argument('--skip-table', action='store_true')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--lodo', action='store_true', help='run the LODO benchmark (methods beside controls) instead of the timing')
    ap.add_argument('--max-pos-train', type=int, default=400); ap.add_argument('--max-pos-test', type=int, default=100)
    ap.add_argument('--cells', default='hHEP,mDC,mESC,mHSC-L'); ap.add_argument('--out', default=None, help='CSV of per-set rows')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    warnings.simplefilter('ignore')
    model = pretrained_scfm(quick=(a.model == 'tiny'))
    if a.lodo: return lodo(model, a)
    print(f'scFM: genenet offline {a.model} (d={model.config["embsize"]}, {model.config["nlayers"]} layers); M={a.M}, T={a.T}, threads={a.threads}')

    d = L.BeelineData(model, a.cell, a.network, a.size)
    pairs = d.pairs(1, 0)
    genes = sorted(set(pairs.gene_a) | set(pairs.gene_b))
    print(f'{d.name}: {len(d.ctx)} genes in context, {len(pairs)} labelled pairs (1:1), {len(genes)} distinct genes in pairs')

    # batched, all pairs
    bank = d.bank(model, n_values=a.M, n_bases=a.T)
    t = time.perf_counter(); fv = bank.features(pairs, 'VVP'); t_vvp = time.perf_counter() - t
    t = time.perf_counter(); fg = bank.features(pairs, 'GDT'); t_gdt = time.perf_counter() - t
    # per-pair loop on a sample, extrapolated
    sub = pairs.sample(a.loop_pairs, random_state=0)
    pl = list(zip(sub.gene_a, sub.gene_b))
    t = time.perf_counter(); lv = U.vvp_pair_loop(model, d.ctx, pl, a.M); l_vvp = (time.perf_counter() - t) / len(pl)
    t = time.perf_counter(); lg = U.gdt_pair_loop(model, d.ctx, pl, a.T); l_gdt = (time.perf_counter() - t) / len(pl)
    idx = sub.index.to_numpy()
    assert np.allclose(fv[idx], lv, atol=1e-4) and np.allclose(fg[idx], lg, atol=1e-4), 'batched and per-pair features differ'
    rows = []
    for name, tb, lp in (('VVP', t_vvp, l_vvp), ('GDT', t_gdt, l_gdt)):
        rows.append(dict(feature=name, batched_s=round(tb, 1), per_pair_loop_s_per_pair=round(lp, 3),
                         per_pair_loop_s_all=round(lp * len(pairs), 1), speedup=round(lp * len(pairs) / tb, 1)))
    r = pd.DataFrame(rows)
    tot = r.batched_s.sum(); tot_loop = r.per_pair_loop_s_all.sum()
    print(r.to_string(index=False))
    print(f'VVP+GDT: batched {tot:.1f}s vs per-pair loop {tot_loop:.1f}s (extrapolated from {len(pl)} pairs) -> {tot_loop/tot:.1f}x (goal >= 20x)')

    if a.skip_table: return
    # the full VVP+GDT table for every BEELINE set (every labelled pair); gene contexts shared between networks are reused
    sets = L.lodo_test_sets(source=('none', '', 0))
    if a.table_sets: sets = sets.head(a.table_sets)
    t0, done, n_pairs, rows = time.perf_counter(), {}, 0, []
    for s in sets.itertuples():
        t = time.perf_counter()
        d = L.BeelineData(model, s.cell, s.network, int(s.size))
        p = d.pairs(1, 0)
        key = tuple(d.ctx.genes)
        b = done.get(key) or d.bank(model, n_values=a.M, n_bases=a.T).prepare(d.ctx.genes, ['VVP', 'GDT'])  # every gene as source/target
        b.features(p, 'VVP'); b.features(p, 'GDT'); done[key] = b
        n_pairs += len(p)
        rows.append(dict(set=d.name, genes=len(d.ctx), pairs=len(p), seconds=round(time.perf_counter() - t, 1)))
        print(rows[-1], flush=True)
    el = time.perf_counter() - t0
    print(f'full VVP+GDT feature table: {len(sets)} BEELINE sets, {n_pairs} pairs, {len(done)} distinct gene contexts: {el:.1f}s ({el/60:.1f} min; goal < 10 min)')


def lodo(model, a):
    "hESC STRING TFs+500 -> each of `--cells` (STRING TFs+500): every method and control on the same exactly-1:1 test pairs."
    t0 = time.perf_counter()
    methods = ('Origin-Pert', 'Baseline-Emb', 'VVP', 'GDT', 'Ens')
    src = L.BeelineData(model, 'hESC', 'STRING', 500); tr = src.pairs(1, 0, a.max_pos_train)
    um = L.UgrnModel(model, methods, epochs=50, seed=0, bank_kw=dict(n_values=a.M, n_bases=a.T)).fit([(src, tr)])
    print(f'source {src.report}; {len(tr)} training pairs; fit {time.perf_counter()-t0:.0f}s', flush=True)
    rows = []
    for cell in a.cells.split(','):
        d = L.BeelineData(model, cell, 'STRING', 500); p, rep = L.lodo_test_pairs(d, tr, 1, 0, a.max_pos_test)
        s, c = um.predict(p, d), um.controls(p)
        for m, v in list(s.items()) + list(c.items()):
            if np.isfinite(v).all():
                rows.append(dict(test_set=d.name, method=m, kind='control' if m in L.CONTROLS else 'method', **rep,
                                 **binary_metrics(p.label.to_numpy(), v.to_numpy())))
        print(f'{d.name}: {len(p)} pairs, total {time.perf_counter()-t0:.0f}s', flush=True)
    r = pd.DataFrame(rows)
    if a.out: r.to_csv(a.out, index=False)
    print(r.pivot_table(index='test_set', columns='method', values='auprc').round(3).to_string())
    mean = r.groupby(['method', 'kind'])[['auprc', 'roc_auc']].mean().sort_values('auprc', ascending=False)
    print(mean.round(3).to_string())
    best_ctrl = mean.xs('control', level='kind').auprc.max()
    for m in ('VVP', 'GDT', 'Ens'):
        v = mean.xs('method', level='kind').auprc[m]
        print(f'{m}: AUPRC {v:.3f}; minus Baseline-Emb {v - mean.xs("method", level="kind").auprc["Baseline-Emb"]:+.3f}; minus best control {v - best_ctrl:+.3f}')


if __name__ == '__main__': main()
