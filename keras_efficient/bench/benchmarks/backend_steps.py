"""Step times of the same models as users train them, to compare Keras backends.

`keras-efficient bench backend_steps --backends tensorflow jax` runs this
benchmark once under each backend (each in its own process) and prints each
model's median time per backend and the JAX/TensorFlow ratio. Alone, it times
one backend (`KERAS_BACKEND`), and the ratios between its cases mean nothing.

One timed unit is one `model.fit` over `_STEPS` batches of in-memory arrays
(epochs=1, the compile defaults, so XLA wherever Keras's "auto" chooses it),
after one untimed warm-up `fit` that traces and compiles. The models are the
ratio benchmarks' own:
- `sam_step`: `ke.models.SharpnessAwareMinimization` on `sam`'s BN CNN,
  32x32x3, batch 64, SGD with momentum;
- `stochastic_depth_resnet`: `stochastic_depth`'s eight-block ResNet
  (`ke.models.build_resnet`, 64 channels, 32x32x3, batch 32, p_L = 0.5);
- `simclr_step`: `ke.models.SimCLR` with `ssl`'s encoder, a
  `ProjectionHead((64,), 32)` and the CIFAR `SimCLRAugmentation`, batch 64.
Half the ratio benchmarks' batches, so both backends run in a few minutes.
"""

import keras
import numpy as np

import keras_efficient as ke
from keras_efficient.bench.base import Benchmark
from keras_efficient.bench.base import Case
from keras_efficient.bench.base import fit_step
from keras_efficient.bench.benchmarks import sam
from keras_efficient.bench.benchmarks import ssl
from keras_efficient.bench.benchmarks import stochastic_depth

_STEPS = 2

def _fit_case(make_model, batch_size, labels=True):
    def setup():
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x = rng.uniform(size=(_STEPS * batch_size, 32, 32, 3)).astype("float32")
        y = rng.integers(0, 10, size=len(x)).astype("int32") if labels else None
        model = make_model()
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss=(keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                            if labels else None))
        return fit_step(model, x, y, batch_size)

    return setup


def _sam():
    return ke.models.SharpnessAwareMinimization(sam._small_cnn())


def _stochastic_depth_resnet():
    return stochastic_depth._resnet(stochastic_depth.FINAL_SURVIVAL)()


def _simclr():
    return ke.models.SimCLR(ssl._encoder(), ke.layers.ProjectionHead((64,), 32),
                            ke.layers.SimCLRAugmentation.from_preset("cifar", seed=0),
                            temperature=0.5)


BENCHMARKS = [
    Benchmark(
        name="backend_steps",
        description=(f"one unit = fit over {_STEPS} batches of arrays: SAM step (BN CNN, "
                     "batch 64), stochastic-depth ResNet (8 blocks, batch 32), SimCLR step "
                     "(batch 64); compare with --backends tensorflow jax"),
        cases=[
            Case("sam_step", _fit_case(_sam, 64)),
            Case("stochastic_depth_resnet", _fit_case(_stochastic_depth_resnet, 32)),
            Case("simclr_step", _fit_case(_simclr, 64, labels=False)),
        ],
        baseline="sam_step",
        rounds=5,
        warmup=1,
    )
]
