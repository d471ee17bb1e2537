"""MLPerf submissions from raybench's results: compliance verification, the
``<division>/<submitter>/`` tree and its checker.

The audit tests themselves (``audit.config`` and the TestSettings of each test) and the
LoadGen config files are rules, in :mod:`raybench.rules.audit` and
:mod:`raybench.rules.loadgen_conf`, so that a run can apply them.
"""
