import math

import keras
import numpy as np
import pytest

from keras_efficient import testing
from keras_efficient.ssl.evaluation import fine_tuning_classifier
from keras_efficient.ssl.evaluation import linear_probe
from keras_efficient.vae.active_units import ActiveUnits
from keras_efficient.vae.vae import VAE
from keras_efficient.vae.vae import gaussian_kl

LATENT = 2
RNG = np.random.default_rng(0)
X = RNG.uniform(size=(8, 4, 4, 1)).astype("float32")


def _encoder(log_var_bias=0.0):
    """Two heads, `[z_mean, z_log_var]`; a very negative log-variance makes z = z_mean."""
    inputs = keras.Input((4, 4, 1))
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(inputs))
    z_mean = keras.layers.Dense(LATENT)(hidden)
    z_log_var = keras.layers.Dense(LATENT, kernel_initializer="zeros",
                                   bias_initializer=keras.initializers.Constant(log_var_bias))(hidden)
    return keras.Model(inputs, [z_mean, z_log_var])


def _decoder():
    return keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(16),
                             keras.layers.Reshape((4, 4, 1))])


def _sgd():
    return {"optimizer": keras.optimizers.SGD(0.1)}


def test_gaussian_kl__equals_float64_monte_carlo():
    rng = np.random.default_rng(1)
    mean, log_var = np.array([0.7, -1.2, 0.0]), np.array([-0.5, 0.8, 0.0])
    std = np.exp(0.5 * log_var)
    z = mean + std * rng.standard_normal((400_000, 3))
    # log q(z) - log p(z) per dimension; its expectation under q is the KL.
    log_ratio = (-0.5 * ((z - mean) / std) ** 2 - np.log(std)) - (-0.5 * z**2)
    estimate = log_ratio.mean(axis=0)
    standard_error = log_ratio.std(axis=0) / math.sqrt(len(z))
    analytic = keras.ops.convert_to_numpy(gaussian_kl(mean.astype("float32"),
                                                      log_var.astype("float32")))
    assert np.all(np.abs(analytic - estimate) < 5 * standard_error + 1e-6)
    assert analytic[2] == pytest.approx(0.0, abs=1e-7)  # q = p


def test_vae__elbo_of_linear_gaussian_model_equals_closed_form():
    rng = np.random.default_rng(2)
    dim, latent, copies = 3, 2, 20_000
    a, a0 = rng.normal(size=(dim, latent)) * 0.5, rng.normal(size=latent) * 0.1
    b, b0 = rng.normal(size=(dim, latent)) * 0.3, np.array([-0.4, 0.2])
    w, w0 = rng.normal(size=(latent, dim)), rng.normal(size=dim) * 0.1
    encoder = keras.Sequential([keras.Input((dim,)), keras.layers.Dense(2 * latent)])
    encoder.set_weights([np.concatenate([a, b], axis=1), np.concatenate([a0, b0])])
    decoder = keras.Sequential([keras.Input((latent,)), keras.layers.Dense(dim)])
    decoder.set_weights([w, w0])
    vae = VAE(encoder, decoder, latent_dim=latent, likelihood="gaussian", seed=3)
    vae.compile(optimizer="sgd")
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])
    logs = vae.evaluate(np.repeat(x, copies, axis=0).astype("float32"),
                        batch_size=2 * copies, verbose=0, return_dict=True)

    # Closed form: E_q ||x - W z - w0||^2 = ||x - W mu - w0||^2 + tr(W^T diag(s2) W).
    mu, log_var = x @ a + a0, x @ b + b0
    variance = np.exp(log_var)
    squared = np.sum((x - mu @ w - w0) ** 2, axis=1) + np.sum(variance @ (w**2), axis=1)
    reconstruction = 0.5 * squared + 0.5 * dim * math.log(2 * math.pi)
    kl = 0.5 * np.sum(mu**2 + variance - 1 - log_var, axis=1)
    elbo = -(reconstruction + kl)
    # The reconstruction term is a one-sample estimate: its standard error from
    # Var(0.5 ||x - W z - w0||^2), computed in float64 from samples of z.
    z = mu[:, None] + np.sqrt(variance)[:, None] * rng.standard_normal((2, 50_000, latent))
    per_sample = 0.5 * np.sum((x[:, None] - z @ w - w0) ** 2, axis=-1)
    standard_error = math.sqrt(per_sample.var(axis=1).mean() / (2 * copies))
    # float32 sums over 40,000 rows: exact to ~1e-3 (the free-bits test checks 1e-5).
    assert logs["kl"] == pytest.approx(kl.mean(), rel=1e-3)
    assert abs(logs["reconstruction_loss"] - reconstruction.mean()) < 5 * standard_error
    assert abs(logs["elbo"] - elbo.mean()) < 5 * standard_error
    assert logs["loss"] == pytest.approx(logs["reconstruction_loss"] + logs["kl"], rel=1e-4)


def test_vae__kl_warmup_equals_formula():
    keras.utils.set_random_seed(0)
    vae = VAE(_encoder(), _decoder(), LATENT, beta=2.0, kl_warmup_steps=4, seed=0)
    vae.compile(optimizer=keras.optimizers.SGD(0.01))
    history = vae.fit(X, batch_size=len(X), epochs=6, verbose=0).history  # one step per epoch
    for step in range(6):
        beta_t = 2.0 * min(1.0, step / 4)
        expected = history["reconstruction_loss"][step] + beta_t * history["kl"][step]
        assert history["loss"][step] == pytest.approx(expected, rel=1e-5), step
    assert int(keras.ops.convert_to_numpy(vae.steps_trained)) == 6
    assert float(vae.kl_weight()) == pytest.approx(2.0)


def test_vae__free_bits_floor_the_batch_mean_kl_per_unit():
    keras.utils.set_random_seed(0)
    vae = VAE(_encoder(), _decoder(), LATENT, beta=0.5, free_bits=0.3, seed=0)
    vae.compile(optimizer="sgd")
    logs = vae.evaluate(X, batch_size=len(X), verbose=0, return_dict=True)
    z_mean, z_log_var = (np.asarray(keras.ops.convert_to_numpy(t), np.float64)
                         for t in vae.posterior(X))
    kl_per_unit = (0.5 * (z_mean**2 + np.exp(z_log_var) - 1 - z_log_var)).mean(axis=0)
    assert kl_per_unit.min() < 0.3  # the floor is active for at least one unit
    expected = logs["reconstruction_loss"] + 0.5 * np.maximum(kl_per_unit, 0.3).sum()
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    assert logs["kl"] == pytest.approx(kl_per_unit.sum(), rel=1e-5)


def test_active_units__counts_posterior_mean_variance_over_batches():
    rng = np.random.default_rng(4)
    scales = np.array([1.0, 0.05, 0.2, 0.0])  # variances 1, 0.0025, 0.04, 0
    batches = [rng.normal(size=(50, 4)) * scales + 3.0 for _ in range(3)]
    metric = ActiveUnits(latent_dim=4)
    for batch in batches:
        metric.update_state(batch.astype("float32"))
    expected = np.sum(np.concatenate(batches).var(axis=0) > 0.01)
    assert expected == 2
    assert float(metric.result()) == expected


def test_vae__active_units_logged_over_the_whole_evaluation():
    keras.utils.set_random_seed(0)
    vae = VAE(_encoder(), _decoder(), LATENT, seed=0)
    vae.compile(optimizer="sgd")
    logs = vae.evaluate(X, batch_size=4, verbose=0, return_dict=True)
    z_mean = keras.ops.convert_to_numpy(vae.encode(X))
    assert sorted(logs) == ["active_units", "elbo", "kl", "loss", "reconstruction_loss"]
    assert logs["active_units"] == np.sum(z_mean.var(axis=0) > 0.01)


def test_vae__mean_encoder_serves_linear_probe_and_fine_tuning():
    keras.utils.set_random_seed(0)
    vae = VAE(_encoder(), _decoder(), LATENT, seed=0)
    vae.compile(optimizer="adam")
    vae.fit(X, batch_size=4, epochs=1, verbose=0)
    tuned = fine_tuning_classifier(vae.mean_encoder(), num_classes=3)
    tuned.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = keras.ops.convert_to_numpy(vae.encode(X))
    tuned.fit(X, np.arange(8) % 3, verbose=0)
    assert not np.allclose(keras.ops.convert_to_numpy(vae.encode(X)), before)  # shared weights
    probe = linear_probe(vae.mean_encoder(), num_classes=3)
    kernel, bias = probe.get_layer("classifier").get_weights()
    expected = keras.ops.convert_to_numpy(vae.encode(X)) @ kernel + bias
    np.testing.assert_allclose(probe.predict(X, verbose=0), expected, atol=1e-5)
    assert len(probe.trainable_weights) == 2


def test_vae__fine_tuning_after_linear_probe_unfreezes_the_encoder():
    # Each `mean_encoder()` is a new trainable wrapper around the shared encoder,
    # which the probe froze: fine-tuning must unfreeze it (on TensorFlow a plain
    # `wrapper.trainable = True` is skipped since the wrapper's flag is already True).
    keras.utils.set_random_seed(0)
    vae = VAE(_encoder(), _decoder(), LATENT, seed=0)
    vae(X)
    probe = linear_probe(vae.mean_encoder(), num_classes=3)
    assert len(probe.trainable_weights) == 2
    tuned = fine_tuning_classifier(vae.mean_encoder(), num_classes=3)
    assert len(tuned.trainable_weights) == len(vae.encoder.weights) + 2
    tuned.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = keras.ops.convert_to_numpy(vae.encode(X))
    tuned.fit(X, np.arange(8) % 3, verbose=0)
    assert not np.allclose(keras.ops.convert_to_numpy(vae.encode(X)), before)


def test_vae__sample_and_reconstruct_are_probabilities():
    keras.utils.set_random_seed(0)
    vae = VAE(_encoder(), _decoder(), LATENT, seed=0)
    vae(X)
    for images in (vae.sample(5, seed=1), vae.reconstruct(X)):
        images = keras.ops.convert_to_numpy(images)
        assert images.shape[1:] == X.shape[1:]
        assert np.all((images > 0) & (images < 1))


@pytest.mark.parametrize("check", testing.MODEL_CHECKS)
def test_vae__harness(check):
    # log_var = -40: samples equal the mean to ~1e-9, so runs are comparable.
    testing.check_model(
        lambda: VAE(_encoder(log_var_bias=-40.0), _decoder(), LATENT, kl_warmup_steps=2,
                    free_bits=0.01, seed=1),
        _sgd, X, checks=[check], atol=1e-5)


def test_vae__harness_single_output_encoder_with_sampling():
    def make_vae():  # the encoder returns one tensor: the means, then the log-variances
        encoder = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                    keras.layers.Dense(2 * LATENT)])
        return VAE(encoder, _decoder(), LATENT, likelihood="gaussian")

    testing.check_model(make_vae, _sgd, X, checks=["saving", "jit"], random_in_training=True)


@pytest.mark.parametrize("kwargs, match", [
    ({"latent_dim": 0}, "latent_dim"),
    ({"latent_dim": 1.5}, "latent_dim"),
    ({"beta": -0.1}, "beta"),
    ({"likelihood": "poisson"}, "likelihood"),
    ({"kl_warmup_steps": -1}, "kl_warmup_steps"),
    ({"free_bits": -0.5}, "free_bits"),
    ({"seed": -1}, "seed"),
])
def test_vae__rejects_bad_arguments(kwargs, match):
    arguments = {"latent_dim": LATENT, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        VAE(_encoder(), _decoder(), **arguments)


def test_vae__rejects_mismatched_networks():
    with pytest.raises(TypeError, match="encoder"):
        VAE("encoder", _decoder(), LATENT)
    with pytest.raises(ValueError, match="encoder"):
        VAE(_encoder(), _decoder(), latent_dim=3).build(X.shape)
    wrong_decoder = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(15)])
    with pytest.raises(ValueError, match="decoder"):
        VAE(_encoder(), wrong_decoder, LATENT).build(X.shape)
