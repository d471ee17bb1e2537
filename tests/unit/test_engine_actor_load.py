"""The engine actor (a plain object here, no Ray) keeps loaded samples in its model's
input dtype: the cast happens once, at LoadGen's untimed load, not in every batch."""

from __future__ import annotations

import numpy as np

from raybench.actors.engine import EngineActor, EngineSpec
from raybench.actors.transport import pack
from raybench.engines.base import EngineOptions


def test_samples_are_cast_at_load_and_answer_as_before(resnet50_standin):
    spec = EngineSpec(benchmark="resnet50", engine="onnxruntime",
                      options=EngineOptions(model=resnet50_standin.model, threads=1),
                      data_dir=resnet50_standin.data_dir)
    cast_at_load = EngineActor(spec)
    per_batch = EngineActor(spec)
    per_batch.dataset.load_as = None  # the former way: int8 kept, cast in every batch
    for actor in (cast_at_load, per_batch):
        actor.load_samples([0, 1, 2])
    assert cast_at_load.dataset.load_as == np.float32
    assert all(s.dtype == np.float32 for s in cast_at_load.dataset.samples([0, 1, 2]))
    assert all(s.dtype == np.int8 for s in per_batch.dataset.samples([0, 1, 2]))
    np.testing.assert_array_equal(cast_at_load.dataset.samples([1])[0],
                                  per_batch.dataset.samples([1])[0].astype(np.float32))
    assert cast_at_load.run(pack([2, 0, 1]), True) == per_batch.run(pack([2, 0, 1]), True)


def test_samples_the_dataset_converts_itself_are_kept_as_stored(standin):
    """ssd-mobilenet's feeds map NVIDIA's int8 values back to uint8 pixels: a cast to the
    model's uint8 at load would wrap them."""
    mobilenet = standin("ssd-mobilenet")
    actor = EngineActor(EngineSpec(benchmark="ssd-mobilenet", engine="onnxruntime",
                                   options=EngineOptions(model=mobilenet.model, threads=1),
                                   data_dir=mobilenet.data_dir))
    actor.load_samples([0])
    assert actor.dataset.load_as is None
    assert actor.dataset.samples([0])[0].dtype == np.int8


def test_a_batch_of_one_is_a_view_of_the_loaded_sample(resnet50_standin):
    from raybench.benchmarks import get_benchmark

    dataset = get_benchmark("resnet50").open_dataset(resnet50_standin.data_dir)
    one, two = dataset.feeds([3])["input_tensor:0"], dataset.feeds([3, 4])["input_tensor:0"]
    assert one.shape[0] == 1 and np.shares_memory(one, dataset.samples([3])[0])
    assert two.shape[0] == 2 and not np.shares_memory(two, dataset.samples([3])[0])
    np.testing.assert_array_equal(one[0], two[0])
