"""Policy/value networks: jraph GNN encoder, raster + CNN extractors, WSA fusion (docs/design.md §5)."""

from balancedrl.networks.actor_critic import (
    EXTRACTOR_TYPES,
    HybridActorCritic,
    NetworkConfig,
    PolicyOutput,
    WSAConfig,
    count_params,
    extractor_names,
    frozen_mask,
    frozen_param_names,
    init_network,
)
from balancedrl.networks.cnn import ResidualBlock, ResNetEncoder
from balancedrl.networks.gnn import (
    GraphAttentionLayer,
    GraphEncoder,
    TreeEdges,
    batched_tree_edges,
    observation_to_graph,
    tree_edges,
)
from balancedrl.networks.pretrained import DEFAULT_PTM_PATH, insert_pretrained, load_ptm, save_ptm
from balancedrl.networks.raster import rasterize, rasterize_batch
from balancedrl.networks.wsa import FUSION_MODES, WSAFusion

__all__ = [
    "DEFAULT_PTM_PATH",
    "EXTRACTOR_TYPES",
    "FUSION_MODES",
    "GraphAttentionLayer",
    "GraphEncoder",
    "HybridActorCritic",
    "NetworkConfig",
    "PolicyOutput",
    "ResNetEncoder",
    "ResidualBlock",
    "TreeEdges",
    "WSAConfig",
    "WSAFusion",
    "batched_tree_edges",
    "count_params",
    "extractor_names",
    "frozen_mask",
    "frozen_param_names",
    "init_network",
    "insert_pretrained",
    "load_ptm",
    "observation_to_graph",
    "rasterize",
    "rasterize_batch",
    "save_ptm",
    "tree_edges",
]
