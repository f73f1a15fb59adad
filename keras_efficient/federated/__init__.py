"""Federated learning: FedAvg/FedSGD, decentralized SGD on a graph, client data
partitioners, and the same client update on Flower (`keras_efficient.federated.flower`,
needs `pip install keras-efficient[federated]`)."""

from keras_efficient.federated.client import ClientUpdate
from keras_efficient.federated.fedavg import FedAvg
from keras_efficient.federated.fedavg import FedSGD
from keras_efficient.federated.fedavg import weighted_average
from keras_efficient.federated.gossip import DecentralizedSGD
from keras_efficient.federated.gossip import check_mixing_matrix
from keras_efficient.federated.gossip import complete_graph
from keras_efficient.federated.gossip import consensus_distance
from keras_efficient.federated.gossip import metropolis_hastings_weights
from keras_efficient.federated.gossip import mix
from keras_efficient.federated.gossip import random_regular_graph
from keras_efficient.federated.gossip import ring_graph
from keras_efficient.federated.gossip import spectral_gap
from keras_efficient.federated.gossip import torus_graph
from keras_efficient.federated.history import FederatedHistory
from keras_efficient.federated.partition import Partition
from keras_efficient.federated.partition import dirichlet_partition
from keras_efficient.federated.partition import iid_partition
from keras_efficient.federated.partition import quantity_skew_partition
from keras_efficient.federated.partition import shard_partition
