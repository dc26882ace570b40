"""Evaluation: retrieval recall now; QA metrics (EM/F1, Hits@1) join as the project grows."""
