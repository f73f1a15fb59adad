"""Variational autoencoders: generative pre-training for representations."""
