"Symbol normalisation, gene / GO text, balanced pairs and leakage-free splits (examples + hypothesis properties)."
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, assume, HealthCheck, strategies as st

from genenet import genes as G
from genenet.core import DiskCache

# ---------------------------------------------------------------- normaliser on a small hand-made table (no mirror)

TABLE = pd.DataFrame({'symbol': ['TP53', 'KMT2A', 'ERBB2', 'SLC25A4', 'NAT1', 'C10orf2'],
                      'aliases': [['P53', 'TRP53'], ['MLL', 'ALL-1'], ['HER2', 'NEU'], ['AAC1', 'ANT1'], ['AAC1', 'NAT-1'], ['PEO']]})
SMALL = G.SymbolNormaliser(TABLE)


def test_normaliser_rules_small_table():
    with pytest.warns(UserWarning, match='kept as given'):
        out, unk = G.normalise_symbols(['TP53', 'tp53', 'c10ORF2', 'MLL', 'her2', 'AAC1', 'XYZ'], normaliser=SMALL, errors='keep')
    assert out == ['TP53', 'TP53', 'C10orf2', 'KMT2A', 'ERBB2', 'AAC1', 'XYZ'] and unk == ['AAC1', 'XYZ']
    r = SMALL.report(['AAC1', 'Trp53'], species='mouse')
    assert list(r.status) == ['ambiguous', 'alias'] and r.candidates[0] == ['NAT1', 'SLC25A4'] and r.symbol[1] == 'TP53'
    with pytest.warns(UserWarning, match='ambiguous'): G.normalise_symbols(['AAC1'], normaliser=SMALL)
    with pytest.raises(KeyError): G.normalise_symbols(['XYZ'], normaliser=SMALL, errors='raise')
    with pytest.raises(ValueError): G.normalise_symbols(['TP53'], normaliser=SMALL, errors='drop')


@given(st.lists(st.sampled_from(['TP53', 'tp53', 'Mll', 'HER2', 'AAC1', 'XYZ', 'peo', 'neu', '', 'ALL-1']), max_size=20),
       st.sampled_from(['warn', 'keep']))
def test_normaliser_properties(symbols, errors):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        out, unk = G.normalise_symbols(symbols, normaliser=SMALL, errors=errors)
        again, unk2 = G.normalise_symbols([o for o in out if o is not None and o not in unk], normaliser=SMALL)
    assert len(out) == len(symbols)  # never drops
    assert sorted(unk) == sorted(s for s, o in zip(symbols, out) if SMALL.resolve(s)[0] is None)
    assert all(o in SMALL.symbols for s, o in zip(symbols, out) if s not in unk)
    assert not unk2 and again == [o for o in out if o is not None and o not in unk]  # idempotent


# ---------------------------------------------------------------- normaliser on the real NCBI table

def test_normaliser_real_aliases(root):
    out, unk = G.normalise_symbols(['MLL', 'HER2', 'tp53', 'Sox2'])
    assert out == ['KMT2A', 'ERBB2', 'TP53', 'SOX2'] and not unk      # MLL: previous symbol of KMT2A
    assert G.normalise_symbols(['Trp53', 'Gata1'], species='mouse')[0] == ['TP53', 'GATA1']
    with pytest.warns(UserWarning, match='not resolved'):
        out, unk = G.normalise_symbols(['AAC1', 'NOT_A_GENE'])
    assert out == [None, None] and unk == ['AAC1', 'NOT_A_GENE']
    assert G.default_normaliser().resolve('AAC1')[1] == 'ambiguous'


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(i=st.integers(0, 20_912), lower=st.booleans())
def test_official_symbols_map_to_themselves(root, i, lower):
    from genenet.data import load_ncbi_genes
    sym = load_ncbi_genes().symbol.iloc[i]
    assert G.normalise_symbols([sym.lower() if lower else sym])[0] == [sym]


# ---------------------------------------------------------------- gene and GO text

def test_offline_summary_tp53(root):
    s = G.gene_summaries(['TP53'], source='offline')
    assert s['TP53'].startswith('TP53: tumor protein p53. GO: ') and 'apoptotic process' in s['TP53']
    assert s.attrs['source'] == {'TP53': 'offline'} and s.attrs['missing'] == []


def test_auto_order_and_missing(root):
    with pytest.warns(UserWarning, match='no text'):
        s = G.gene_summaries(['ZEB2', 'KMT2A', 'NOT_A_GENE'])
    assert s.attrs['source']['ZEB2'] == 'bundled' and s['ZEB2'].startswith('The protein encoded by this gene')
    assert s.attrs['source']['KMT2A'] in ('bundled', 'offline')
    assert s.attrs['missing'] == ['NOT_A_GENE'] and pd.isna(s['NOT_A_GENE'])
    with pytest.raises(ValueError): G.gene_summaries(['TP53'], source='wikipedia')


class FakeMyGene:
    "Stands in for mygene.MyGeneInfo(): records calls, answers like querymany does."
    def __init__(self): self.calls = []
    def querymany(self, qterms, scopes, fields, species, verbose=False):
        assert scopes == 'symbol' and fields == 'summary' and species == 'human'
        self.calls.append(list(qterms))
        out = []
        for q in qterms:
            if q == 'NOPE': out.append({'query': q, 'notfound': True})
            elif q == 'TWOHITS': out += [{'query': q, '_id': '1'}, {'query': q, '_id': '2', 'summary': 'second hit'}]
            else: out.append({'query': q, '_id': q, 'summary': f'summary of {q}'})
        return out


def test_mygene_batched_and_cached(tmp_path):
    fake, cache = FakeMyGene(), DiskCache(tmp_path/'mg')
    got = G.mygene_summaries(['A', 'B', 'C', 'NOPE', 'TWOHITS'], client=fake, batch_size=2, cache=cache)
    assert fake.calls == [['A', 'B'], ['C', 'NOPE'], ['TWOHITS']]
    assert got == {'A': 'summary of A', 'B': 'summary of B', 'C': 'summary of C', 'NOPE': None, 'TWOHITS': 'second hit'}
    assert len(cache) == 5 and not list(tmp_path.rglob('*.tmp'))
    again = G.mygene_summaries(['A', 'NOPE', 'D'], client=fake, cache=cache)
    assert fake.calls[-1] == ['D'] and again['A'] == 'summary of A' and again['NOPE'] is None  # negatives cached too
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        s = G.gene_summaries(['A', 'NOPE'], source='mygene', client=fake, cache=cache, normalise=False)
    assert s['A'] == 'summary of A' and s.attrs['missing'] == ['NOPE'] and len(fake.calls) == 4  # all cached


def test_go_text_for_terms(root):
    with pytest.warns(UserWarning):
        t = G.go_text_for_terms(['GO:0006915', 'GO:9999999'])
    assert t['GO:0006915'].startswith('apoptotic process. ') and t.attrs['missing'] == ['GO:9999999']


# ---------------------------------------------------------------- balanced pairs

def _und(df): return {frozenset((a, b)) for a, b in zip(df.gene_a, df.gene_b)}


@st.composite
def graphs(draw):
    n = draw(st.integers(2, 25))
    genes = [f'g{i}' for i in range(n)]
    pairs = [(a, b) for i, a in enumerate(genes) for b in genes[i+1:]]
    pos = draw(st.lists(st.sampled_from(pairs), max_size=min(len(pairs), 40), unique=True))
    pos = [(b, a) if draw(st.booleans()) else (a, b) for a, b in pos]  # random orientation
    exc = draw(st.lists(st.sampled_from(pairs), max_size=5, unique=True))
    return genes, pos, exc


@settings(max_examples=150, deadline=None)
@given(graphs(), st.sampled_from([0.5, 1, 2, 3]), st.booleans(), st.integers(0, 10_000))
def test_balanced_pairs_properties(g, ratio, directed, seed):
    genes, pos, exc = g
    assume(pos)
    posdf = pd.DataFrame(pos, columns=['gene_a', 'gene_b'])
    n = len(genes)
    if directed:
        forbidden = {(a, b) for a, b in pos} | {(a, b) for a, b in exc}
        avail = n*(n-1) - len(forbidden)
    else:
        forbidden = {frozenset(p) for p in pos} | {frozenset(p) for p in exc}
        avail = n*(n-1)//2 - len(forbidden)
    want = int(round(ratio*len(pos)))
    if want > avail:
        with pytest.raises(ValueError, match='not enough non-edges'):
            G.balanced_pairs(posdf, genes, ratio=ratio, exclude=exc, directed=directed, seed=seed)
        return
    bp = G.balanced_pairs(posdf, genes, ratio=ratio, exclude=exc, directed=directed, seed=seed)
    neg = bp[bp.label == 0]
    assert (bp.label == 1).sum() == len(pos) and len(neg) == want
    assert (neg.gene_a != neg.gene_b).all() and set(neg.gene_a) | set(neg.gene_b) <= set(genes)
    if directed:
        keys = list(zip(neg.gene_a, neg.gene_b))
        assert len(set(keys)) == len(keys) and not set(keys) & forbidden
    else:
        assert len(_und(neg)) == len(neg) and not _und(neg) & forbidden  # neither a positive nor its reverse
    assert bp.equals(G.balanced_pairs(posdf, genes, ratio=ratio, exclude=exc, directed=directed, seed=seed))


def test_balanced_pairs_uniform():
    "Negatives are uniform over non-edges: 5 genes, 2 positives -> 8 non-edges, each drawn ~1/8 of the time."
    pos = pd.DataFrame({'gene_a': ['a', 'c'], 'gene_b': ['b', 'd']})
    counts = {}
    for seed in range(1600):
        bp = G.balanced_pairs(pos, list('abcde'), ratio=0.5, seed=seed)
        (k,) = _und(bp[bp.label == 0]); counts[k] = counts.get(k, 0) + 1
    assert len(counts) == 8
    c = np.array(list(counts.values()))
    chi2 = ((c - 200)**2/200).sum()
    assert chi2 < 24.3  # chi-square, 7 d.o.f., p = 0.001


def test_balanced_pairs_dense_and_duplicates():
    genes = list('abcdef')
    pos = pd.DataFrame({'gene_a': ['a', 'b', 'b'], 'gene_b': ['b', 'a', 'c']})  # (a,b) and (b,a) are one pair
    bp = G.balanced_pairs(pos, genes, ratio=6.5)  # 13 negatives = every non-edge of 15 - 2
    assert (bp.label == 1).sum() == 2 and len(_und(bp[bp.label == 0])) == 13
    with pytest.raises(ValueError, match='only 13 eligible'): G.balanced_pairs(pos, genes, ratio=7)


# ---------------------------------------------------------------- splits

@st.composite
def pair_tables(draw):
    n = draw(st.integers(4, 30))
    genes = [f'g{i}' for i in range(n)]
    rows = draw(st.lists(st.tuples(st.sampled_from(genes), st.sampled_from(genes), st.integers(0, 1)), min_size=1, max_size=120))
    return pd.DataFrame(rows, columns=['gene_a', 'gene_b', 'label'])


@settings(max_examples=150, deadline=None)
@given(pair_tables(), st.sampled_from([(0.64, 0.16, 0.2), (0.8, 0.0, 0.2), (0.5, 0.25, 0.25)]), st.integers(0, 1000))
def test_split_by_pair_properties(df, fr, seed):
    sp = G.split_pairs(df, fractions=fr, seed=seed)
    assert sum(len(v) for v in sp.values()) == len(df)
    assert pd.concat(sp.values()).sort_values(list(df.columns)).reset_index(drop=True).equals(
        df.sort_values(list(df.columns)).reset_index(drop=True))  # a partition of the rows
    assert not _und(sp['train']) & _und(sp['test']) and not _und(sp['valid']) & _und(sp['test'])
    assert not _und(sp['train']) & _und(sp['valid'])


@settings(max_examples=150, deadline=None)
@given(pair_tables(), st.integers(0, 1000))
def test_split_by_gene_properties(df, seed):
    sp = G.split_pairs(df, by='gene', seed=seed)
    assert sum(len(v) for v in sp.values()) == len(df)
    genes = {k: set(v.gene_a) | set(v.gene_b) for k, v in sp.items()}
    assert not genes['train'] & set(sp['test'].attrs['genes']) and not genes['train'] & set(sp['valid'].attrs['genes'])
    assert all(set(r) & set(sp['test'].attrs['genes']) for r in zip(sp['test'].gene_a, sp['test'].gene_b))


def test_split_fractions_and_stratification():
    rng = np.random.default_rng(0)
    genes = [f'g{i}' for i in range(400)]
    a, b = rng.choice(genes, 6000), rng.choice(genes, 6000)
    df = pd.DataFrame({'gene_a': a, 'gene_b': b, 'label': (rng.random(6000) < 0.3).astype(int)})
    sp = G.split_pairs(df, seed=0)
    n = {k: len(v)/len(df) for k, v in sp.items()}
    assert abs(n['train'] - 0.64) < 0.01 and abs(n['test'] - 0.2) < 0.01
    assert all(abs(v.label.mean() - df.label.mean()) < 0.02 for v in sp.values())
    sg = G.split_pairs(df, by='gene', seed=0)
    n = {k: len(v)/len(df) for k, v in sg.items()}
    assert abs(n['train'] - 0.64) < 0.05 and abs(n['test'] - 0.2) < 0.05, n
    with pytest.raises(ValueError): G.split_pairs(df, fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError): G.split_pairs(df, by='cell')
