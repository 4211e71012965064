"""Sphinx configuration of the genenet documentation site.

`genenet docs` (`genenet.docs.build_site`) copies this folder into a staging folder, writes the nbdev-processed
notebooks and `genenet_site.json` (title, repository, version from settings.ini) beside it, and runs sphinx-build
there. Everything the pages load is served from the site itself (no CDN): the theme's assets and MathJax 3 in
`_static/mathjax/` (copied from the sphinx-mathjax-offline wheel).
"""
import json
from pathlib import Path

site = json.loads((Path(__file__).parent/'genenet_site.json').read_text())

project = site['title']
author = site['author']
copyright = site['copyright']
release = version = site['version']

extensions = ['myst_nb', 'sphinx_copybutton', 'sphinx.ext.mathjax']
exclude_patterns = ['_build', 'jupyter_execute', '**.ipynb_checkpoints', 'README.md']
root_doc = 'index'

# notebooks arrive executed (or deliberately not): myst-nb only renders them
nb_execution_mode = 'off'
nb_merge_streams = True
nb_output_stderr = 'show'
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence', 'deflist']
myst_dmath_double_inline = True
suppress_warnings = ['mystnb.unknown_mime_type', 'myst.header', 'misc.highlighting_failure']

mathjax_path = 'mathjax/tex-chtml.js'  # relative to _static/

html_theme = 'sphinx_book_theme'
html_title = site['title']
html_static_path = ['_static']
html_css_files = ['genenet.css']
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = dict(
    repository_url=site['git_url'], repository_branch=site['branch'], path_to_docs='nbs',
    use_repository_button=True, use_source_button=False, use_download_button=False, use_fullscreen_button=False,
    show_toc_level=2, home_page_in_toc=True, navigation_with_keys=False,
)
copybutton_exclude = '.linenos, .gp, .go'
