"""LoRA fine-tuning (DSF, RAFT, continued pre-training) and merging."""

from ragtune.train.trainer import TrainConfig, merge, train

__all__ = ["TrainConfig", "train", "merge"]
