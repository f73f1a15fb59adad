"""What a federated simulation records per round."""

import dataclasses

from keras_efficient.utils import export


@export("keras_efficient.federated.FederatedHistory")
@dataclasses.dataclass
class FederatedHistory:
    """Per-round records of a federated run (index 0 is round 1).

    Attributes:
        accuracy, loss: the global model's test metrics after each round (None
            without test data).
        clients: the client ids that took part in each round (after drops).
        bytes_up, bytes_down: model bytes sent to and from the server (or between
            nodes for decentralized training) in each round.
        seconds: wall time of each round (training and aggregation).
        extra: further per-round series by name (e.g. `consensus_distance`).
    """

    accuracy: list = dataclasses.field(default_factory=list)
    loss: list = dataclasses.field(default_factory=list)
    clients: list = dataclasses.field(default_factory=list)
    bytes_up: list = dataclasses.field(default_factory=list)
    bytes_down: list = dataclasses.field(default_factory=list)
    seconds: list = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def rounds(self):
        return len(self.seconds)

    def rounds_to_target(self, accuracy):
        """The first round (1-based) whose test accuracy reaches `accuracy`, else None."""
        for index, value in enumerate(self.accuracy):
            if value is not None and value >= accuracy:
                return index + 1
        return None

    def bytes_to_round(self, round_number):
        """Total bytes communicated (up + down) in rounds 1..`round_number`."""
        return int(sum(self.bytes_up[:round_number]) + sum(self.bytes_down[:round_number]))
