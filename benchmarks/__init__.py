"""switchman's benchmark suite: load tests and side-by-side comparisons with LiteLLM.

``python -m benchmarks`` runs the quick profile, ``--full`` the whole suite,
``--smoke`` every scenario at tiny sizes (CI). See ``benchmarks/README.md``.
"""
