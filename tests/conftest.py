import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Tests run on 2 shared cores: 1 torch thread avoids oversubscription (3-7x slowdowns).
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from ragtune.testing import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="session")
def glimmer_index(tmp_path_factory, tiny_tokenizer):
    """The bundled example corpus indexed (BM25 + dense), chunked with the tiny tokenizer."""
    from ragtune.corpus.build import IndexConfig, build_index
    from ragtune.examples import GLIMMERDB

    out = tmp_path_factory.mktemp("glimmer") / "index"
    return build_index(
        IndexConfig(paths=[str(GLIMMERDB)], out=str(out), chunk_size=128), tokenizer=tiny_tokenizer
    )


def write_short_api(path: Path, n: int = 16) -> Path:
    """API records short enough for the tiny model's 1,024-token window, even with distractors."""
    import json

    path.write_text(
        "".join(
            json.dumps(
                {
                    "api_name": f"zz.op{i}",
                    "api_call": f"zz.op{i}(a)",
                    "description": f"Run op {i}.",
                    "returns": f"R{i}",
                }
            )
            + "\n"
            for i in range(n)
        )
    )
    return path
