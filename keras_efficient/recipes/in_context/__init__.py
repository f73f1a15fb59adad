"""In-context few-shot learning with a causal language model (no weight update)."""

from keras_efficient.recipes.in_context.few_shot_prompter import FewShotPrompter
from keras_efficient.recipes.in_context.few_shot_prompter import k_shot_curve
