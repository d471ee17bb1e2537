"""raybench's Ray actors, each whole in one module (installed as ``raybench.actors``).

* :mod:`raybench.actors.loadgen`: the LoadGen actor (SUT and QSL of one test, the query
  path, progress).
* :mod:`raybench.actors.engine`: the engine actor (an engine, its loaded samples, batches).
* :mod:`raybench.actors.transport`: how batches travel between them.
* :mod:`raybench.actors.telemetry`: the run's live Ray metrics.
"""
