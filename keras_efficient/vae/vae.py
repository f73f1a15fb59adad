"""The variational autoencoder, trained by `fit` on the negative ELBO."""

import math

import keras
from keras import ops

from keras_efficient.backend import keras_compat
from keras_efficient.schedules.step_counter import add_step_counter
from keras_efficient.schedules.step_counter import count_step
from keras_efficient.utils import from_config_with_layers
from keras_efficient.utils import register
from keras_efficient.utils import validate_choice
from keras_efficient.utils import validate_number
from keras_efficient.utils import validate_seed
from keras_efficient.utils import validate_size
from keras_efficient.vae.active_units import ActiveUnits

LIKELIHOODS = ("bernoulli", "gaussian")


def gaussian_kl(z_mean, z_log_var):
    """`KL(N(mean, exp(log_var)) || N(0, 1))` per latent dimension, in closed form."""
    return 0.5 * (ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var)


def negative_log_likelihood(x, decoded, likelihood):
    """`-log p(x | z)` per example, summed over all non-batch axes.

    `decoded` is the decoder's output: logits for `"bernoulli"`, the mean of a
    unit-variance Gaussian for `"gaussian"`.
    """
    if likelihood == "bernoulli":
        per_element = ops.binary_crossentropy(x, decoded, from_logits=True)
    else:
        per_element = 0.5 * ops.square(x - decoded) + 0.5 * math.log(2.0 * math.pi)
    return ops.sum(ops.reshape(per_element, (ops.shape(x)[0], -1)), axis=1)


@register("keras_efficient.models.VAE")
class VAE(keras.Model):
    """Variational autoencoder: an encoder to a Gaussian posterior, a decoder back.

    The encoder maps `x` to the mean and log-variance of `q(z|x) =
    N(mean, diag(exp(log_var)))`; `z = mean + exp(log_var / 2) * eps` with
    `eps ~ N(0, I)` drawn from the model's `SeedGenerator` (the
    reparameterization trick, so gradients flow through the sample); the
    decoder maps `z` to the parameters of `p(x|z)`. `fit(x)` minimizes, per
    example and averaged over the batch, `reconstruction + beta_t * KL` with
    `reconstruction = -log p(x|z)` (one sample of `z`) and `KL = KL(q(z|x) ||
    N(0, I))` in closed form; with `beta_t = 1` this is the negative ELBO.
    Labels, if given, are ignored.

    `beta > 1` is the beta-VAE. KL warm-up (Bowman et al.) grows `beta_t`
    linearly from 0 at the first step to `beta` at step `kl_warmup_steps`,
    counted by the model's own step counter (a non-trainable weight, so the
    schedule resumes after saving and is right under `jit_compile`, on JAX and
    over replicas). Free bits (Kingma et al. 2016) replace the KL term by
    `sum_j max(free_bits, mean_batch KL_j)`: dimensions whose KL averaged over
    the batch (over each replica's batch under a strategy) is below
    `free_bits` nats get no pressure towards the prior. Both fight posterior
    collapse.

    Logged: `loss` (the objective above), `reconstruction_loss`, `kl` (the
    plain KL, without free bits), `elbo` (`-(reconstruction + KL)`, a lower
    bound of `log p(x)`, estimated with one sample, also in `evaluate`) and
    `active_units`, the number of latent dimensions whose posterior mean
    varies over the epoch's data by more than 0.01 (Burda et al.): falls when
    the posterior collapses onto the prior.

    Calling the model returns a dict: `z_mean`, `z_log_var`, `z` (a sample in
    training, the mean in inference, so `predict` is deterministic) and
    `reconstruction`, the decoder's output for `z`. `evaluate` still samples
    `z` for its ELBO estimate.
    `encode(x)` returns the posterior mean, the representation for downstream
    use; `mean_encoder()` is that map as a Keras model for
    `ke.models.linear_probe` and `fine_tuning_classifier`.

    Args:
        encoder: a Keras layer/model mapping `x` to either a list `[z_mean,
            z_log_var]` of shape `(batch_size, latent_dim)` each, or one tensor
            `(batch_size, 2 * latent_dim)`: the means, then the log-variances.
        decoder: a Keras layer/model mapping `z` `(batch_size, latent_dim)` to
            a tensor of `x`'s shape: logits (no sigmoid) for `"bernoulli"`,
            the mean for `"gaussian"`.
        latent_dim: number of latent dimensions, >= 1.
        beta: weight of the KL term, >= 0. Defaults to 1.0 (the ELBO).
        likelihood: `"bernoulli"` (data in [0, 1], e.g. pixel intensities) or
            `"gaussian"` (unit variance: half the squared error plus a
            constant). Defaults to `"bernoulli"`.
        kl_warmup_steps: optimizer steps over which the KL weight grows
            linearly from 0 to `beta`, >= 0. Defaults to 0 (no warm-up).
        free_bits: nats per latent dimension exempt from the KL penalty, >= 0.
            Defaults to 0.0 (none).
        seed: integer seed of the posterior samples, or None.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: a batch of `x`.
        training: passed to the encoder and decoder; sample `z` if True.

    Returns:
        A dict with `z_mean`, `z_log_var`, `z` and `reconstruction`.

    Example:

    >>> import numpy as np
    >>> encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                             keras.layers.Dense(4)])
    >>> decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(64),
    ...                             keras.layers.Reshape((8, 8, 1))])
    >>> vae = VAE(encoder, decoder, latent_dim=2, kl_warmup_steps=100)
    >>> vae.compile(optimizer="adam")
    >>> history = vae.fit(np.random.rand(32, 8, 8, 1), batch_size=16, verbose=0)
    >>> sorted(history.history)
    ['active_units', 'elbo', 'kl', 'loss', 'reconstruction_loss']
    >>> vae.encode(np.random.rand(3, 8, 8, 1)).shape
    TensorShape([3, 2])

    Reference:
        Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014
        (https://arxiv.org/abs/1312.6114); Higgins et al., "beta-VAE", ICLR
        2017; Bowman et al., "Generating Sentences from a Continuous Space",
        CoNLL 2016 (KL warm-up); Kingma et al., "Improved Variational Inference
        with Inverse Autoregressive Flow", NeurIPS 2016 (free bits); Burda et
        al., "Importance Weighted Autoencoders", ICLR 2016 (active units).
    """

    def __init__(self, encoder, decoder, latent_dim, beta=1.0, likelihood="bernoulli",
                 kl_warmup_steps=0, free_bits=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        for name, network in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(network, keras.layers.Layer):
                raise TypeError(
                    f"Invalid type received for argument `{name}`. Expected a Keras layer "
                    f"or model. Received: {name} of type {type(network).__name__}"
                )
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = validate_size("latent_dim", latent_dim)
        self.beta = validate_number("beta", beta, 0)
        self.likelihood = validate_choice("likelihood", likelihood, LIKELIHOODS)
        self.kl_warmup_steps = validate_size("kl_warmup_steps", kl_warmup_steps, 0)
        self.free_bits = validate_number("free_bits", free_bits, 0)
        self.seed = validate_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.steps_trained = add_step_counter(self)  # for the KL warm-up
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.active_units = ActiveUnits(latent_dim)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if not self.encoder.built:
            self.encoder.build(input_shape)
        expected = (None, self.latent_dim)
        shapes = self.encoder.compute_output_shape(input_shape)
        if isinstance(shapes, (list, tuple)) and isinstance(shapes[0], (list, tuple)):
            valid = len(shapes) == 2 and all(tuple(s)[1:] == expected[1:] for s in shapes)
        else:
            valid = tuple(shapes)[1:] == (2 * self.latent_dim,)
        if not valid:
            raise ValueError(
                "The `encoder` must return `[z_mean, z_log_var]` of shape (batch_size, "
                f"{self.latent_dim}) each, or one tensor (batch_size, {2 * self.latent_dim}) "
                f"for latent_dim={self.latent_dim}. Received: encoder output shape {shapes}"
            )
        if not self.decoder.built:
            self.decoder.build(expected)
        decoded = tuple(self.decoder.compute_output_shape(expected))
        if decoded[1:] != input_shape[1:]:
            raise ValueError(
                f"The `decoder` must map z (batch_size, {self.latent_dim}) to the input's "
                f"shape {input_shape}. Received: decoder output shape {decoded}"
            )
        self.data_shape = input_shape[1:]
        self.built = True

    def posterior(self, x, training=None):
        """The posterior's `(z_mean, z_log_var)` for a batch `x`."""
        outputs = self.encoder(x, training=training)
        if isinstance(outputs, (list, tuple)):
            return tuple(outputs)
        return outputs[:, : self.latent_dim], outputs[:, self.latent_dim:]

    def call(self, inputs, training=None):
        z_mean, z_log_var = self.posterior(inputs, training=training)
        z = self._sample(z_mean, z_log_var) if training else z_mean
        return {"z_mean": z_mean, "z_log_var": z_log_var, "z": z,
                "reconstruction": self.decoder(z, training=training)}

    def _sample(self, z_mean, z_log_var):
        noise = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype,
                                    seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * noise

    def kl_weight(self):
        """`beta_t`, the KL weight at the current training step (after warm-up: `beta`)."""
        if self.kl_warmup_steps == 0:
            return ops.convert_to_tensor(self.beta, "float32")
        progress = ops.cast(self.steps_trained, "float32") / self.kl_warmup_steps
        return self.beta * ops.minimum(progress, 1.0)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        def batch_mean(values):  # Keras's "sum over batch size" reduction
            if sample_weight is not None:
                weights = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
                values = values * ops.reshape(weights, (-1,) + (1,) * (len(values.shape) - 1))
            return ops.sum(values, axis=0) / ops.cast(ops.shape(values)[0], "float32")

        # Float32 whatever the compute dtype: sums over pixels and exp(log_var).
        decoded = y_pred["reconstruction"]
        if not training:  # inference calls decode the mean; the ELBO needs a sample
            decoded = self.decoder(self._sample(y_pred["z_mean"], y_pred["z_log_var"]),
                                   training=False)
        x, decoded, z_mean, z_log_var = (ops.cast(value, "float32") for value in (
            x, decoded, y_pred["z_mean"], y_pred["z_log_var"]))
        reconstruction = batch_mean(negative_log_likelihood(x, decoded, self.likelihood))
        kl_per_unit = batch_mean(gaussian_kl(z_mean, z_log_var))
        kl = ops.sum(kl_per_unit)
        kl_penalty = ops.sum(ops.maximum(kl_per_unit, self.free_bits)) if self.free_bits else kl
        loss = reconstruction + self.kl_weight() * kl_penalty
        count_step(self.steps_trained, training)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        self.elbo_tracker.update_state(-(reconstruction + kl))
        self.active_units.update_state(z_mean)
        extra = [keras_compat.additional_loss(self, term) for term in self.losses]
        return keras_compat.scale_loss_for_distribution(loss) + sum(extra, 0.0)

    def encode(self, x):
        """The posterior mean `E_q(z|x)[z]` of a batch `x`: the representation."""
        return self.posterior(x, training=False)[0]

    def decode(self, z):
        """The mean of `p(x|z)` for latents `z`: probabilities for `"bernoulli"`."""
        decoded = self.decoder(z, training=False)
        return ops.sigmoid(decoded) if self.likelihood == "bernoulli" else decoded

    def reconstruct(self, x):
        """`decode(encode(x))`: the reconstruction from the posterior mean."""
        return self.decode(self.encode(x))

    def sample(self, num_samples, seed=None):
        """`num_samples` new examples: `decode(z)` for `z` drawn from the prior."""
        validate_size("num_samples", num_samples)
        return self.decode(keras.random.normal((num_samples, self.latent_dim), seed=seed))

    def mean_encoder(self):
        """`encode` as a functional Keras model sharing the encoder's weights.

        For `ke.models.linear_probe(vae.mean_encoder(), num_classes)` and
        `fine_tuning_classifier`. The VAE must be built (trained or called).
        """
        if not self.built:
            raise ValueError("`mean_encoder()` needs a built VAE: fit or call it first.")
        inputs = keras.Input(self.data_shape)
        return keras.Model(inputs, self.encode(inputs), name="mean_encoder")

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "latent_dim": self.latent_dim,
            "beta": self.beta,
            "likelihood": self.likelihood,
            "kl_warmup_steps": self.kl_warmup_steps,
            "free_bits": self.free_bits,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return from_config_with_layers(cls, config, "encoder", "decoder")
