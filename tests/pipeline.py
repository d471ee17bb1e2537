"""A Ray-free pass over a stand-in: dataset -> feeds -> ONNX Runtime -> LoadGen-style log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional


def run_pipeline(benchmark, standin, batch: int = 4, transform: Optional[Callable] = None,
                 reverse: bool = False, write_to: Optional[Path] = None) -> list[dict]:
    """Accuracy-log entries of every sample, as LoadGen would write them.

    Args:
        benchmark: The benchmark.
        standin: Its stand-in.
        batch: Samples per engine call.
        transform: Applied to each batch's feeds before the engine runs.
        reverse: Issue the samples in reverse order (LoadGen issues in any order).
        write_to: Write the log there as mlperf_log_accuracy.json and read it back.
    """
    from raybench.engines.base import EngineOptions
    from raybench.engines.onnxruntime import OnnxRuntimeEngine

    dataset = benchmark.open_dataset(standin.data_dir)
    engine = OnnxRuntimeEngine(EngineOptions(model=standin.model))
    order = list(range(dataset.total_count))
    if reverse:
        order.reverse()
    entries = []
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        feeds = dataset.feeds(chunk)
        if transform:
            feeds = transform(feeds)
        outputs = benchmark.infer(engine, feeds)
        for idx, payload in zip(chunk, benchmark.responses(outputs, chunk, dataset)):
            entries.append({"seq_id": len(entries), "qsl_idx": idx, "data": payload.hex().upper()})
    dataset.unload(order)
    if write_to is not None:
        path = Path(write_to) / "mlperf_log_accuracy.json"
        path.write_text(json.dumps(entries, indent=4))
        entries = json.loads(path.read_text())
    return entries
