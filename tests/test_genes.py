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


# ---------------------------------------------------------------- missing values are never genes (issue 10)

MISSING = ['nan', 'NaN', 'NA', 'N/A', '', '  ', None, pd.NA, pd.NaT, np.nan, np.float32('nan')]


@pytest.mark.parametrize('x', MISSING, ids=repr)
def test_missing_symbols_never_resolve(x):
    assert G.is_missing_symbol(x)
    assert SMALL.resolve(x) == (None, 'missing', [])
    with pytest.warns(UserWarning, match='missing values'):
        out, unk = G.normalise_symbols([x, 'TP53'], normaliser=SMALL, errors='keep')
    assert out == [None, 'TP53'] and len(unk) == 1  # 'keep' keeps unknown strings, never a missing value


def test_missing_symbols_real_table(root):
    "'nan' is an NCBI alias of SCN11A and 'NA' of XK: as values they must stay missing."
    norm = G.default_normaliser()
    assert norm._alias.get('NAN') == ['SCN11A'] and norm._alias.get('NA') == ['XK']  # the trap is real
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        out, unk = G.normalise_symbols(['nan', 'NaN', 'NA', 'N/A', '', pd.NA, pd.NaT, np.float32('nan'), 'SCN11A', 'NAT'])
    assert out == [None]*8 + ['SCN11A', 'BRD2'] and len(unk) == 8  # 'NAT' (upper case) is an alias of BRD2, not NaT
    from genenet.data import load_gene_task
    ph = load_gene_task('phastcons')
    assert not ph.gene.map(G.is_missing_symbol).any() and ph.attrs['n_missing_gene'] == 5
    assert not ph.gene.str.lower().isin(['nan', 'na', '']).any()


# ---------------------------------------------------------------- MyGene cache: a corrupt entry is asked again

@pytest.mark.parametrize('junk', [b'\xff\xfe\x00', b'{"value": ', b'[1, 2]', b'{"value": 3}'])
def test_mygene_corrupt_entry_is_requeried(tmp_path, junk):
    fake, cache = FakeMyGene(), DiskCache(tmp_path/'mg')
    G.mygene_summaries(['A'], client=fake, cache=cache)
    cache._file(cache.key('mygene', 'summary', 'human', 'A')).write_bytes(junk)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        got = G.mygene_summaries(['A'], client=fake, cache=cache)
    assert got == {'A': 'summary of A'} and fake.calls == [['A'], ['A']]
    assert G.mygene_summaries(['A'], client=fake, cache=cache) == {'A': 'summary of A'} and len(fake.calls) == 2  # repaired


# ---------------------------------------------------------------- balanced_pairs: bad input, sampling protocols

POS = pd.DataFrame({'gene_a': ['a', 'b', 'c'], 'gene_b': ['b', 'c', 'd']})


@pytest.mark.parametrize('kw, err, msg', [
    (dict(ratio=0), ValueError, 'ratio'), (dict(ratio=-1), ValueError, 'ratio'), (dict(ratio=float('nan')), ValueError, 'ratio'),
    (dict(ratio=float('inf')), ValueError, 'ratio'), (dict(ratio='two'), TypeError, 'ratio'),
    (dict(genes='abcdef'), TypeError, 'one string'), (dict(genes=['a', 'b', 'c', 'd', np.nan]), ValueError, 'missing'),
    (dict(genes=list('abcdef'), sources='a'), TypeError, 'one string'), (dict(negatives='random'), ValueError, 'negatives'),
])
def test_balanced_pairs_bad_arguments(kw, err, msg):
    with pytest.raises(err, match=msg): G.balanced_pairs(POS, **{'genes': list('abcdef'), **kw})


@pytest.mark.parametrize('pos, msg', [
    (pd.DataFrame({'gene_a': ['a', 'NA'], 'gene_b': ['b', 'c']}), 'missing gene'),
    (pd.DataFrame({'gene_a': ['a', None], 'gene_b': ['b', 'c']}), 'missing gene'),
    (pd.DataFrame({'gene_a': ['a', 'c'], 'gene_b': ['b', 'c']}), 'self-pairs'),
])
def test_balanced_pairs_bad_positives(pos, msg):
    with pytest.raises(ValueError, match=msg): G.balanced_pairs(pos, list('abcdef'))


@settings(max_examples=80, deadline=None)
@given(graphs(), st.sampled_from([0.5, 1, 2]), st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 6))
def test_balanced_pairs_sources_targets(g, ratio, seed, ns, nt):
    "Restricted negatives: gene_a in sources, gene_b in targets, never a positive, never repeated."
    genes, pos, exc = g
    assume(pos)
    posdf = pd.DataFrame(pos, columns=['gene_a', 'gene_b'])
    src, tgt = genes[:ns], genes[-nt:]
    try: bp = G.balanced_pairs(posdf, genes, ratio=ratio, directed=True, seed=seed, sources=src, targets=tgt)
    except ValueError as e:
        assert 'not enough non-edges' in str(e)
        eligible = {(a, b) for a in src for b in tgt if a != b} - set(pos)
        assert len(eligible) < int(round(ratio*len(set(pos))))
        return
    neg = bp[bp.label == 0]
    assert set(neg.gene_a) <= set(src) and set(neg.gene_b) <= set(tgt)
    keys = list(zip(neg.gene_a, neg.gene_b))
    assert len(set(keys)) == len(keys) and not set(keys) & set(pos) and (neg.gene_a != neg.gene_b).all()


def test_sources_uniform_undirected():
    "Undirected, restricted to sources: each eligible unordered pair is drawn equally often."
    pos = pd.DataFrame({'gene_a': ['a'], 'gene_b': ['b']})
    counts = {}
    for seed in range(1200):
        bp = G.balanced_pairs(pos, list('abcde'), seed=seed, sources=['a', 'c'])
        (k,) = _und(bp[bp.label == 0]); counts[k] = counts.get(k, 0) + 1
    # pairs touching a or c, minus the positive {a, b}: ac, ad, ae, cb, cd, ce
    assert set(counts) == {frozenset(p) for p in ['ac', 'ad', 'ae', 'cb', 'cd', 'ce']}
    c = np.array(list(counts.values()))
    assert ((c - 200)**2/200).sum() < 20.5  # chi-square, 5 d.o.f., p = 0.001


def _string_pairs(min_score=900):
    from genenet.data import load_string
    st_ = load_string(min_score)[['gene_a', 'gene_b']]
    return st_, sorted(set(st_.gene_a) | set(st_.gene_b))


def _degree_auc(bp, directed=False, seed=0):
    "Test ROC-AUC of the degree control: log-degree sum from the training positives only."
    from sklearn.metrics import roc_auc_score
    sp = G.split_pairs(bp, seed=seed, directed=directed)
    tr = sp['train'][sp['train'].label == 1]
    deg = pd.concat([tr.gene_a, tr.gene_b]).value_counts()
    te = sp['test']
    score = np.log1p(te.gene_a.map(deg).fillna(0)) + np.log1p(te.gene_b.map(deg).fillna(0))
    return roc_auc_score(te.label, score)


def test_degree_matched_negatives_defeat_the_degree_control(root):
    "On STRING (score >= 900), uniform negatives let node degree alone score ~0.86; degree-matched ones bring it to chance."
    st_, genes = _string_pairs(900)
    uni = G.balanced_pairs(st_, genes, seed=0)
    dm = G.balanced_pairs(st_, genes, negatives='degree_matched', seed=0)
    assert _degree_auc(uni) > 0.8                      # the shortcut this protocol removes
    assert abs(_degree_auc(dm) - 0.5) < 0.05, _degree_auc(dm)
    assert dm.label.sum() == len(dm) - dm.label.sum()  # balanced
    und = lambda d: set(map(frozenset, d[['gene_a', 'gene_b']].itertuples(index=False)))
    assert not und(dm[dm.label == 0]) & und(st_)       # negatives are non-edges
    dp = pd.concat([st_.gene_a, st_.gene_b]).value_counts()
    neg = dm[dm.label == 0]
    dn = pd.concat([neg.gene_a, neg.gene_b]).value_counts().reindex(dp.index, fill_value=0)
    assert np.corrcoef(dp, dn)[0, 1] > 0.98            # each gene keeps (about) its degree


def test_role_matched_ksr_defeats_the_kinase_rule(root):
    "KSR: with uniform negatives 'gene_a is a kinase' scores high; with role-matched ones it is at chance."
    from sklearn.metrics import roc_auc_score
    from genenet.data import load_kinase_substrate
    ks = load_kinase_substrate('phosphonetworks')
    pos = ks.rename(columns={'kinase': 'gene_a', 'substrate': 'gene_b'})[['gene_a', 'gene_b']]
    pos = pos[pos.gene_a != pos.gene_b]  # autophosphorylation: a self-pair is not a pair task
    kinases = set(pos.gene_a) | set(load_kinase_substrate('psp_elm_hprd').kinase)  # any known kinase
    genes = sorted(set(pos.gene_a) | set(pos.gene_b))
    rule = lambda bp: roc_auc_score(bp.label, bp.gene_a.isin(kinases).astype(float))
    uni = G.balanced_pairs(pos, genes, directed=True, seed=0)
    rm = G.balanced_pairs(pos, genes, directed=True, seed=0, negatives='role_matched')
    assert rule(uni) > 0.7, rule(uni)
    assert abs(rule(rm) - 0.5) < 0.05, rule(rm)
    neg = rm[rm.label == 0]
    assert set(neg.gene_a) <= set(pos.gene_a) and set(neg.gene_b) <= set(pos.gene_b)
    assert not set(zip(neg.gene_a, neg.gene_b)) & set(zip(pos.gene_a, pos.gene_b))


@settings(max_examples=60, deadline=None)
@given(graphs(), st.sampled_from([0.5, 1, 2]), st.booleans(), st.integers(0, 10_000))
def test_degree_matched_properties(g, ratio, directed, seed):
    genes, pos, exc = g
    assume(pos)
    posdf = pd.DataFrame(pos, columns=['gene_a', 'gene_b'])
    try: bp = G.balanced_pairs(posdf, genes, ratio=ratio, exclude=exc, directed=directed, seed=seed, negatives='degree_matched')
    except ValueError as e:
        assert 'degree-matched' in str(e); return
    neg = bp[bp.label == 0]
    assert len(neg) == int(round(ratio*len(posdf))) and (neg.gene_a != neg.gene_b).all()
    ends = set(posdf.gene_a) | set(posdf.gene_b)
    assert set(neg.gene_a) | set(neg.gene_b) <= ends  # only the positives' genes, re-paired
    forb = {tuple(p) if directed else frozenset(p) for p in pos + exc}
    keys = [(a, b) if directed else frozenset((a, b)) for a, b in zip(neg.gene_a, neg.gene_b)]
    assert len(set(keys)) == len(keys) and not set(keys) & forb


# ---------------------------------------------------------------- cold-start classes and splits

def test_cold_start_class_small():
    train = pd.DataFrame({'gene_a': ['a', 'b', 'x'], 'gene_b': ['b', 'c', 'y'], 'label': [1, 1, 0]})
    test = pd.DataFrame({'gene_a': ['a', 'a', 'x', 'c'], 'gene_b': ['c', 'z', 'y', 'a']})
    assert list(G.cold_start_class(train, test)) == ['C1', 'C2', 'C3', 'C1']  # x, y occur only in a training negative
    assert list(G.cold_start_class(train, test, directed=True)) == ['C1', 'C2', 'C3', 'C3']  # c never a gene_a, a never a gene_b


@settings(max_examples=60, deadline=None)
@given(pair_tables(), st.sampled_from(G.COLD_START), st.integers(0, 1000))
def test_cold_start_split_properties(df, mode, seed):
    sp = G.cold_start_split(df, mode=mode, seed=seed)
    for nm in ('valid', 'test'): assert (G.cold_start_class(sp['train'], sp[nm]) == mode).all()
    assert sum(len(sp[k]) for k in ('train', 'valid', 'test')) + len(sp['train'].attrs['dropped']) == len(df)


def test_c3_test_pairs_share_no_gene_with_training_positives(root):
    st_, genes = _string_pairs(900)
    bp = G.balanced_pairs(st_, genes, seed=0)
    sp = G.cold_start_split(bp, mode='C3', seed=0)
    tr = sp['train'][sp['train'].label == 1]
    seen = set(tr.gene_a) | set(tr.gene_b)
    test_genes = set(sp['test'].gene_a) | set(sp['test'].gene_b)
    assert len(sp['test']) > 1000 and not seen & test_genes
    assert 0.3 < sp['test'].label.mean() < 0.7
    c2 = G.cold_start_split(bp, mode='C2', seed=0)
    tr2 = c2['train'][c2['train'].label == 1]; seen2 = set(tr2.gene_a) | set(tr2.gene_b)
    assert len(c2['test']) > 1000 and (c2['test'].gene_a.isin(seen2).astype(int) + c2['test'].gene_b.isin(seen2)).eq(1).all()


# ---------------------------------------------------------------- load_pairs: a user's own gold standard

def test_load_pairs_ragged_entrez_and_reasons(tmp_path, root):
    f = tmp_path/'gold.tsv'
    f.write_text('# my screen\n'
                 'protein1\tprotein2\tscore\n'
                 'TP53\tMDM2\t0.9\textra\tfields\there\n'     # ragged: trailing columns
                 '7157\t1017\n'                              # Entrez ids: TP53, CDK2
                 'her2\tGRB2\t0.5\n'                         # an alias, lower case
                 'NA\tEGFR\t0.2\n'                           # a missing value, not the XK alias
                 'AAC1\tEGFR\n'                              # ambiguous alias
                 'NOT_A_GENE\tEGFR\n'
                 '99999999\tEGFR\n'                          # unknown Entrez id
                 'EGFR\n'                                    # too few columns
                 'EGFR\tegfr\n'                              # a self-pair after normalisation
                 'TP53\tMDM2\n')                             # duplicate
    with pytest.warns(UserWarning, match='dropped 7 of 10'):
        lp = G.load_pairs(f)
    assert lp[['gene_a', 'gene_b']].values.tolist() == [['TP53', 'MDM2'], ['TP53', 'CDK2'], ['ERBB2', 'GRB2']]
    assert lp.attrs['dropped'].reason.tolist() == ['missing gene', 'ambiguous alias', 'unknown symbol', 'unknown Entrez id',
                                                   'too few columns', 'self-pair', 'duplicate']
    assert list(lp.attrs['dropped'].columns) == ['gene_a', 'gene_b', 'reason']


def test_load_pairs_csv_gz_columns_label(tmp_path, root):
    import gzip
    f = tmp_path/'pairs.csv.gz'
    with gzip.open(f, 'wt') as fh: fh.write('id,src,dst,label\n1,TP53,MDM2,1\n2,KMT2A,MLL,0\n3,SOX2,POU5F1,1,note\n')
    with pytest.warns(UserWarning, match='self-pair'):
        lp = G.load_pairs(f, columns=['src', 'dst'])
    assert lp.values.tolist() == [['TP53', 'MDM2', 1], ['SOX2', 'POU5F1', 1]] and lp.label.dtype.kind == 'i'
    g = tmp_path/'noheader.txt'; g.write_text('x TP53 MDM2\ny Sox2 Pou5f1\n')
    lp2 = G.load_pairs(g, sep=r'\s+', columns=[1, 2], species='mouse')
    assert lp2[['gene_a', 'gene_b']].values.tolist() == [['TP53', 'MDM2'], ['SOX2', 'POU5F1']] and not len(lp2.attrs['dropped'])
    with pytest.raises(ValueError, match='not in the header'): G.load_pairs(f, columns=['a', 'b'])
    with pytest.raises(FileNotFoundError): G.load_pairs(tmp_path/'none.tsv')
