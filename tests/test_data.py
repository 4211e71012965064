"Every mirrored dataset loads and has the properties SOURCES.md states; the download path works on a local file."
import gzip, hashlib, io, tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genenet import catalog as K, data as D


# ---------------------------------------------------------------- registry and fetch (no mirror needed)

@pytest.fixture
def isolated(tmp_path, monkeypatch):
    "No mirror, an empty user cache: fetch must download."
    monkeypatch.setenv('GENENET_DATA', str(tmp_path/'nomirror'))
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path/'cache'))
    monkeypatch.setattr(K, 'download_root', lambda: tmp_path/'cache'/'genenet'/'data')
    return tmp_path


def _sha(b): return hashlib.sha256(b).hexdigest()


def test_fetch_file_url_checks_hash(isolated):
    src = isolated/'tiny.tsv'; src.write_bytes(b'gene_a\tgene_b\nTP53\tMDM2\n')
    good = K.Dataset('tiny', 'x/tiny.tsv', src.as_uri(), _sha(src.read_bytes()))
    reg = {'tiny': good, 'bad': replace(good, name='bad', relpath='x/bad.tsv', sha256='0'*64)}
    with pytest.raises(ValueError, match='checksum'): K.fetch('bad', registry=reg)
    assert not (K.download_root()/'x/bad.tsv').exists()
    assert not list((K.download_root()/'x').glob('.download-*'))  # no partial download left behind
    p = K.fetch('tiny', registry=reg)
    assert p == K.download_root()/'x/tiny.tsv' and p.read_bytes() == src.read_bytes()
    assert K.fetch('tiny', registry=reg) == p  # second call: found in the cache


def test_fetch_uses_injected_downloader_and_archive_member(isolated):
    "An http URL served by a fake downloader (pooch's downloader hook); the member is extracted and gzip-compressed."
    content = b'target,weight,source\nMYC,10,MAX\n'
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tf:
        ti = tarfile.TarInfo('pkg-1.0/data/chip.csv'); ti.size = len(content); tf.addfile(ti, io.BytesIO(content))
    archive = buf.getvalue()
    calls = []
    def fake_downloader(url, output_file, pooch):
        calls.append(url); Path(output_file).write_bytes(archive)
    d = K.Dataset('chip', 'c/chip.csv.gz', 'https://example.org/pkg-1.0.tar.gz', None, member='pkg-1.0/data/chip.csv',
                  url_sha256=_sha(archive), content_sha256=_sha(content))
    p = K.fetch('chip', downloader=fake_downloader, registry={'chip': d})
    assert calls == ['https://example.org/pkg-1.0.tar.gz'] and gzip.decompress(p.read_bytes()) == content
    bad = replace(d, name='chip2', relpath='c/chip2.csv.gz', content_sha256='1'*64)
    with pytest.raises(ValueError, match='checksum'): K.fetch('chip2', downloader=fake_downloader, registry={'chip2': bad})


def test_fetch_offline_and_derived_errors(isolated):
    def offline(url, output_file, pooch): raise OSError('Network is unreachable')
    d = K.Dataset('x', 'x.txt', 'https://example.org/x.txt', '0'*64)
    with pytest.raises(ConnectionError, match='no network'): K.fetch('x', downloader=offline, registry={'x': d})
    gone = K.Dataset('gone', 'gone.txt', (isolated/'missing.txt').as_uri(), '0'*64)
    with pytest.raises(ConnectionError, match='gone'): K.fetch('gone', registry={'gone': gone})
    with pytest.raises(FileNotFoundError, match='derived'): K.fetch('string')  # a conversion: cannot be rebuilt
    with pytest.raises(KeyError): K.fetch('no-such-dataset')


def test_registry_entries_are_complete():
    assert sum(d.in_mirror for d in K.REGISTRY.values()) == 238
    for d in K.REGISTRY.values():
        assert d.url.startswith(('https://', 'http://')), d
        if d.in_mirror: assert d.sha256 and len(d.sha256) == 64 and d.size > 0, d
        if d.kind == 'archive' and d.in_mirror: assert d.url_sha256 and d.content_sha256
    kinds = pd.Series([d.kind for d in K.REGISTRY.values()]).value_counts().to_dict()
    assert kinds == {'direct': 230, 'derived': 8, 'archive': 4}, kinds


# ---------------------------------------------------------------- the mirror

def test_mirror_fully_registered_and_verified(root):
    files = {str(p.relative_to(root)) for p in root.rglob('*') if p.is_file() and p.name != 'SOURCES.md'}
    assert files == {d.relpath for d in K.REGISTRY.values() if d.in_mirror}
    v = K.verify_all()
    assert list(v.columns) == ['name', 'status', 'path', 'detail'] and len(v) == len(K.REGISTRY)
    assert v.status.value_counts().to_dict() == {'ok': 238, 'not mirrored (optional)': 4}, v[v.status != 'ok']


def test_beeline_table(root):
    bd = D.beeline_datasets()
    assert len(bd) == 42 and set(bd.columns) == {'cell', 'network', 'size', 'species', 'has_expression'}
    have = {(c, s) for c, s in bd[bd.has_expression][['cell', 'size']].itertuples(index=False)}
    assert have == {('hHEP', 500), ('hHEP', 1000), ('mDC', 500), ('mDC', 1000), ('mESC', 500), ('mHSC-GM', 500),
                    ('mHSC-L', 500), ('mHSC-L', 1000)}
    assert bd.groupby(['cell', 'size']).has_expression.nunique().eq(1).all()  # same in every network type
    assert set(bd[bd.species == 'human'].cell) == {'hESC', 'hHEP'}


@pytest.mark.parametrize('network', D.BEELINE_NETWORKS)
def test_beeline_labels_all_sets(root, network):
    for cell in D.BEELINE_CELLS:
        for size in D.BEELINE_SIZES:
            bs = D.load_beeline(cell, network, size, expression=False)
            assert bs.expression is None and bs.species == ('human' if cell[0] == 'h' else 'mouse')
            assert len(bs.genes) == len(set(bs.genes)) and set(bs.tfs) <= set(bs.genes)
            assert len(bs.edges) > 0 and set(bs.edges.tf) <= set(bs.tfs) and set(bs.edges.target) <= set(bs.genes)
            g = np.array(bs.genes, dtype=object)
            assert (g[bs.edges.tf_idx] == bs.edges.tf.values).all()
            net = pd.read_csv(K.fetch(f'beeline/{network}/{cell}/{size}/network'))
            assert set(zip(net.Gene1, net.Gene2)) == set(zip(bs.edges.tf, bs.edges.target))
            assert len(bs.genes) <= size + len(bs.tfs)  # TFs + the `size` most variable genes


def test_beeline_expression(root):
    a = D.load_beeline('hHEP', 'STRING', 500)
    assert a.expression.shape[1] == len(a.genes) and list(a.expression.var_names) == a.genes
    assert a.expression.shape[0] == 425 and a.expression.X.dtype == np.float32 and (a.expression.X >= 0).all()
    b = D.load_beeline('hHEP', 'Specific', 500)
    # same matrix up to gene (row) order across network types
    common = sorted(set(a.genes) & set(b.genes))
    assert len(common) > 0.9*len(a.genes)
    np.testing.assert_allclose(a.expression[:, common].X, b.expression[:, common].X)
    assert D.load_beeline('hESC', 'STRING', 500).expression is None
    with pytest.raises(ValueError): D.load_beeline('hXYZ')


def test_beeline_tfs_networks_example(root):
    assert len(D.load_beeline_tfs('human')) == 1563 and len(D.load_beeline_tfs('mouse')) == 1479
    for key in [k for k in K.REGISTRY if k.startswith('beeline_network/')]:
        sp, kind = key.split('/')[1:]
        n = D.load_beeline_network(sp, kind)
        assert {'tf', 'target'} <= set(n.columns) and len(n) > 1000
    ex, ref = D.load_beeline_example()
    assert ex.n_vars == 19 and set(ref.tf) | set(ref.target) <= set(ex.var_names)


def test_string(root):
    s = D.load_string()
    assert len(s) == 174_962 and len(set(s.gene_a) | set(s.gene_b)) == 17_288
    assert list(s.columns[:3]) == ['gene_a', 'gene_b', 'combined_score'] and set(D.STRING_CHANNELS) <= set(s.columns)
    assert s.combined_score.between(400, 1000).all() and (s.combined_score >= 700).mean() > 0.5
    s7 = D.load_string(700)
    assert (s7.combined_score >= 700).all() and len(s7) == (s.combined_score >= 700).sum()
    s.loc[0, 'gene_a'] = 'CHANGED'  # callers get a copy
    assert D.load_string().loc[0, 'gene_a'] != 'CHANGED'


def test_biogrid(root):
    b = D.load_biogrid()
    assert len(b) == 21_038 and (b.n_pmids >= 2).all() and (b.gene_a != b.gene_b).mean() > 0.9


def test_go_and_goa(root):
    g = D.load_go()
    assert g.number_of_nodes() == 45_013  # 47,347 terms minus 2,334 obsolete
    assert {d['namespace'] for _, d in g.nodes(data=True)} == {'biological_process', 'molecular_function', 'cellular_component'}
    assert ('GO:0006915', 'GO:0012501') in {(u, v) for u, v, k in g.out_edges('GO:0006915', keys=True) if k == 'is_a'}
    t = D.go_term_text(g)
    assert len(t) == g.number_of_nodes() and t['GO:0006915'].startswith('apoptotic process. A programmed cell death')
    goa = D.load_goa()
    assert list(goa.columns[:5]) == ['gene', 'go_id', 'aspect', 'evidence', 'qualifier']
    assert set(goa.aspect.unique()) == {'P', 'F', 'C'} and goa.gene.nunique() > 18_000
    assert not goa.qualifier.astype(str).str.contains('NOT').any()
    assert len(D.load_goa(drop_not=False)) > len(goa)
    assert (goa.go_id.isin(set(g.nodes))).mean() > 0.99


def test_ncbi(root):
    n = D.load_ncbi_genes()
    assert len(n) == 20_913 and n.symbol.is_unique and n.gene_id.is_unique
    row = n.set_index('symbol').loc['KMT2A']
    assert 'MLL' in row.aliases and isinstance(row.other_designations, list)


def test_gene_tasks(root):
    want = dict(DosageSensitivity=285, BivalentVsLys4=167, BivalentVsNonMethylated=129, Tf_range=157,
                TF_target_type=3143, solubility=1437, combined_solubility=1964, phastcons=30_992, subcellular_location=8597)
    assert set(want) == set(D.GENE_TASKS)
    for t, n in want.items():
        df = D.load_gene_task(t)
        assert list(df.columns) == ['gene', 'label', 'str_label', 'summary'] and len(df) == n, t
        if t == 'phastcons': assert df.label.dtype == float and df.summary.isna().all()
        elif t == 'subcellular_location':
            assert set(df.str_label) == {'Cell membrane', 'Cytoplasm', 'Nucleus'} and df.label.between(0, 2).all()
        else:
            assert df.summary.notna().all() and df.label.dtype.kind == 'i'
            assert df.groupby('str_label').label.nunique().eq(1).all()  # label <-> name is consistent
    with pytest.raises(ValueError): D.load_gene_task('nope')


def test_regulation(root):
    h = D.load_trrust('human')
    assert len(h) == 9396 and set(h['mode']) == {'Activation', 'Repression', 'Unknown'} and h.tf.nunique() > 700
    assert len(D.load_trrust('mouse')) == 7057
    assert {n: len(D.load_tf_list(n)) for n in D.TF_LISTS} == dict(hs_hgnc_tfs=1839, hs_hgnc_curated_tfs=1390,
                                                                  lambert2018=1639, mm_mgi_tfs=1721)
    k = D.load_k562_chip()
    assert len(k) == 892_990 and list(k.columns) == ['tf', 'target', 'weight'] and k.tf.nunique() < 1000


def test_kinase_substrate(root):
    pn = D.load_kinase_substrate('phosphonetworks')
    assert (len(pn), pn.kinase.nunique(), pn.substrate.nunique()) == (1821, 230, 652)
    assert pn.n_sites.sum() == len(D.load_kinase_substrate('phosphonetworks', level='site'))
    psp = D.load_kinase_substrate('psp_elm_hprd')
    assert len(psp) == 5361 and list(psp.columns) == ['kinase', 'substrate']
    raw = pd.read_csv(K.fetch('psp_elm_hprd'), sep='\t')
    assert (psp.kinase.values == raw['kinase'].values).all()
    om = D.load_kinase_substrate('omnipath')
    assert len(om) == 5067
    # the swapped headers are undone: AKT1 (UniProt P31749) phosphorylates PTPN1, not the reverse
    assert ((om.kinase == 'AKT1') & (om.substrate == 'PTPN1')).any()
    site = D.load_kinase_substrate('omnipath', level='site')
    assert (site[site.kinase_uniprot == 'P31749'].kinase == 'AKT1').all()
    # kinases known from PhosphoSitePlus should be enzymes here, not substrates
    assert len(set(om.kinase) & set(psp.kinase)) > 3*len(set(om.substrate) & set(psp.kinase) - set(om.kinase))
    with pytest.raises(ValueError): D.load_kinase_substrate('nope')


def test_perturbation(root):
    a = D.load_norman()
    assert a.shape == (5961, 500) and {'condition', 'perturbation', 'dataset', 'cell_type'} <= set(a.obs)
    for cell in ('k562', 'rpe1'):
        de = D.load_perturbqa(cell, 'de'); dr = D.load_perturbqa(cell, 'dir')
        for q in (de, dr):
            assert list(q.columns) == ['pert', 'gene', 'label', 'split'] and set(q.label) == {0, 1}
            assert not set(q[q.split == 'train'].pert) & set(q[q.split == 'test'].pert)
        assert de.groupby('pert').size().median() > 50
        r = D.load_ranked_de(cell)
        assert r.perturbation.nunique() == 585 and set(r['list']) == {'up', 'up_full'}
        assert (r[r['list'] == 'up'].groupby('perturbation').size() <= 100).all()
    assert len(D.load_perturbqa('k562', 'de')) == 157_679


def test_not_mirrored_loaders_on_tiny_files(tmp_path):
    import anndata as ad
    obs = pd.DataFrame(index=['1_AARS_P1P2_ENSG00000090861', '2_TP53_P1_ENSG00000141510', '3_non-targeting_x_y'])
    var = pd.DataFrame({'gene_name': ['AARS', 'TP53']}, index=['ENSG00000090861', 'ENSG00000141510'])
    ad.AnnData(np.arange(6, dtype=np.float32).reshape(3, 2), obs=obs, var=var).write_h5ad(tmp_path/'b.h5ad')
    a = D.load_replogle_bulk(path=tmp_path/'b.h5ad')
    assert list(a.obs.perturbation) == ['AARS', 'TP53', 'control'] and list(a.var.gene_id) == list(var.index)
    (tmp_path/'go.csv').write_text('source,target,importance\nA,B,0.5\nA,C,0.25\nB,C,0.1\n')
    assert len(D.load_gears_go(tmp_path/'go.csv')) == 3
    g = D.load_gears_go(tmp_path/'go.csv', genes=['B', 'C'])
    assert g[['source', 'target']].values.tolist() == [['B', 'C']] and np.isclose(g.importance[0], 0.1)
    with pytest.raises(ValueError): D.load_replogle_bulk('hek293')


# ---------------------------------------------------------------- the registry is data (genenet/assets/datasets.csv)

def test_registry_asset_loader(tmp_path):
    reg = K.load_registry()
    assert reg == K.REGISTRY and all(isinstance(d.size, (int, type(None))) for d in reg.values())
    assert reg['go'].kind == 'archive' and reg['string'].kind == 'derived' and not reg['gears_go'].in_mirror
    src = (Path(D.__file__).parent/'assets'/'datasets.csv').read_text()
    header, first = src.splitlines()[:2]
    (tmp_path/'dup.csv').write_text(f'{header}\n{first}\n{first}\n')
    with pytest.raises(ValueError, match='listed twice'): K.load_registry(tmp_path/'dup.csv')
    (tmp_path/'extra.csv').write_text(f'{header},colour\n{first},red\n')
    with pytest.raises(ValueError, match='unknown registry columns'): K.load_registry(tmp_path/'extra.csv')


# ---------------------------------------------------------------- integrity: fault injection on copies under tmp dirs

@pytest.fixture
def farm(tmp_path, monkeypatch, root):
    "A data root of symlinks to the real mirror (GENENET_DATA), an empty download folder and a fresh cache."
    monkeypatch.setenv('GENENET_DATA', str(tmp_path/'farm'))
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path/'cache'))
    monkeypatch.setattr(K, 'download_root', lambda: tmp_path/'downloads')
    monkeypatch.setattr(K, '_MEMO', None)
    def link(*names):
        for n in names:
            rel = K.REGISTRY[n].relpath
            (tmp_path/'farm'/rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path/'farm'/rel).symlink_to(root/rel)
        return tmp_path/'farm'
    def damage(name, how):
        "Replace the link of `name` by a damaged copy: 'truncate' (first 60%) or 'flip' (one byte changed, same size)."
        p = tmp_path/'farm'/K.REGISTRY[name].relpath
        b = bytearray((root/K.REGISTRY[name].relpath).read_bytes())
        p.unlink()
        if how == 'truncate': b = b[:int(len(b)*0.6)]
        else: b[len(b)//2] ^= 0xFF
        p.write_bytes(bytes(b))
        return p
    link.damage = damage
    return link


def test_truncated_label_is_refused_naming_dataset_file_and_remedy(farm):
    k = 'beeline/STRING/mHSC-E/500'
    farm(f'{k}/label', f'{k}/tf', f'{k}/target')
    D._beeline_tables.cache_clear()
    assert len(D.load_beeline('mHSC-E', 'STRING', 500, expression=False).edges) > 0  # intact: loads
    p = farm.damage(f'{k}/label', 'truncate')
    D._beeline_tables.cache_clear()
    with pytest.raises(K.DataIntegrityError) as e: D.load_beeline('mHSC-E', 'STRING', 500, expression=False)
    msg = str(e.value)
    assert f'{k}/label' in msg and str(p) in msg and 'bytes, expected' in msg and f'genenet data fetch {k}/label' in msg
    assert isinstance(e.value, ValueError) and K.verify(f'{k}/label') == 'mismatch' and K.verify(f'{k}/tf') == 'ok'
    D._beeline_tables.cache_clear()


@pytest.mark.parametrize('name, load', [('norman', lambda: D.load_norman()),
                                        ('perturbqa/rpe1/de', lambda: D.load_perturbqa.__wrapped__('rpe1', 'de'))])
def test_damaged_h5ad_and_gz_same_size(farm, name, load):
    "A flipped byte keeps the size: the SHA-256 catches it before h5py / gzip raise a bare OSError / EOFError."
    farm(name)
    p = farm.damage(name, 'flip')
    with pytest.raises(K.DataIntegrityError, match='SHA-256') as e: load()
    assert name in str(e.value) and str(p) in str(e.value) and 'Remedy' in str(e.value)


def test_unhashed_damaged_files_name_the_dataset(tmp_path):
    "Files the registry cannot check (a user's own download) still fail with the dataset's name, not a raw EOFError/OSError."
    (tmp_path/'bulk.h5ad').write_bytes(b'\x89HDF\r\n\x1a\n' + b'\0'*100)
    with pytest.raises(K.DataIntegrityError, match='replogle_bulk/k562_essential'): D.load_replogle_bulk(path=tmp_path/'bulk.h5ad')
    import gzip
    good = gzip.compress(b'source,target,importance\n' + b'A,B,0.5\n'*5000)
    (tmp_path/'go.csv.gz').write_bytes(good[:len(good)//2])
    with pytest.raises(K.DataIntegrityError, match='gears_go'): D.load_gears_go(tmp_path/'go.csv.gz')


def test_check_is_memoised_by_path_size_mtime(farm, monkeypatch):
    farm('gene_task/Tf_range')
    calls = []
    real = K.sha256_file
    monkeypatch.setattr(K, 'sha256_file', lambda p, *a: calls.append(p) or real(p, *a))
    p = K.locate('gene_task/Tf_range')
    assert len(calls) == 1
    K.locate('gene_task/Tf_range'); K.fetch('gene_task/Tf_range')
    assert len(calls) == 1                       # remembered in this process
    memo = D.cache_dir('data')/'verified.json'
    assert str(p) in __import__('json').loads(memo.read_text())
    monkeypatch.setattr(K, '_MEMO', None)         # a new process reads the memo file
    K.locate('gene_task/Tf_range')
    assert len(calls) == 1
    assert K.verify('gene_task/Tf_range') == 'ok' and len(calls) == 2  # verify rechecks by default
    memo.write_text('{not json')                  # a damaged memo costs a re-hash, nothing else
    monkeypatch.setattr(K, '_MEMO', None)
    with pytest.warns(UserWarning, match='unreadable'): K.locate('gene_task/Tf_range')
    assert len(calls) == 3
    os_ = __import__('os'); st = p.stat()
    os_.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9), follow_symlinks=True)  # touched: checked again
    K.locate('gene_task/Tf_range')
    assert len(calls) == 4


def test_verify_all_statuses(farm, monkeypatch):
    names = ['gene_task/Tf_range', 'gene_task/solubility', 'tfs/lambert2018', 'replogle_bulk/rpe1', 'gears_go']
    farm('gene_task/Tf_range', 'gene_task/solubility')
    farm.damage('gene_task/solubility', 'flip')
    v = K.verify_all(names).set_index('name')
    assert v.status.to_dict() == {'gene_task/Tf_range': 'ok', 'gene_task/solubility': 'mismatch', 'tfs/lambert2018': 'missing',
                                  'replogle_bulk/rpe1': 'not mirrored (optional)', 'gears_go': 'not mirrored (optional)'}
    assert 'SHA-256' in v.detail['gene_task/solubility'] and set(v.status) <= set(K.STATUSES)
    # a downloaded copy of a dataset without a recorded checksum is 'unchecked'
    dl = K.download_root()/K.REGISTRY['gears_go'].relpath
    dl.parent.mkdir(parents=True); dl.write_text('source,target,importance\nA,B,0.5\n')
    assert K.verify('gears_go') == 'unchecked' and K.locate('gears_go') == dl
    with pytest.raises(FileNotFoundError, match='genenet data fetch tfs/lambert2018'): K.locate('tfs/lambert2018')
    with pytest.raises(KeyError): K.verify('no-such-dataset')


def test_fetch_without_network_is_a_clear_error(isolated):
    "The real downloader, offline: a ConnectionError that says so, and no partial file left."
    def no_dns(url, output_file, pooch): raise OSError("Failed to resolve 'plus.figshare.com'")
    with pytest.raises(ConnectionError, match='no network') as e: K.fetch('replogle_bulk/rpe1', downloader=no_dns)
    assert 'GENENET_DATA' in str(e.value) and not list(K.download_root().rglob('*.h5ad'))


# ---------------------------------------------------------------- nothing executes code from data

def test_no_pickle_in_the_package():
    "No module of genenet imports pickle or loads torch files with weights_only=False."
    import ast
    for f in sorted(Path(D.__file__).parent.glob('*.py')):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                assert not any(m.split('.')[0] in ('pickle', 'cPickle', 'dill', 'joblib') for m in mods), f'{f.name}:{node.lineno}'
            if isinstance(node, ast.keyword) and node.arg == 'weights_only':
                assert not (isinstance(node.value, ast.Constant) and node.value.value is False), f'{f.name}:{node.lineno}'
            if isinstance(node, ast.keyword) and node.arg == 'allow_pickle':
                assert not (isinstance(node.value, ast.Constant) and node.value.value is True), f'{f.name}:{node.lineno}'


class _Boom:
    "Unpickling this runs code: it writes a marker file."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (Path.write_text, (Path(self.marker), 'pwned'))


def test_planted_pickle_in_the_cache_is_never_loaded(tmp_path, monkeypatch, root):
    import pickle, shutil
    from genenet.core import cache_dir, user_cache_root
    real_cache = cache_dir('data')
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path/'cache'))
    marker = tmp_path/'marker.txt'
    d = cache_dir('data')
    key = f'go_{K.REGISTRY["go"].sha256[:16]}_{(root/K.REGISTRY["go"].relpath).stat().st_size}'
    for name in (f'{key}.pkl', f'{key}.pickle', f'{key}.json', 'verified.pkl'):  # the old cache name, and junk under the new one
        (d/name).write_bytes(pickle.dumps(_Boom(marker)))
    D._go_graph.cache_clear()
    try:
        with pytest.warns(UserWarning, match='rebuilt'): g = D.load_go()
        assert g.number_of_nodes() == 45_013 and not marker.exists()
        assert (d/f'{key}.json').read_bytes()[:1] == b'{'  # replaced by the JSON cache
    finally: D._go_graph.cache_clear()
