"""Local transformers backend: an HF model directory or a GGUF file, optional PEFT adapter.

lm = TransformersLM("path/to/model")                 # HF directory
lm = TransformersLM("model.gguf")                    # GGUF (converted once, cached)
lm = TransformersLM("base", adapter="runs/raft/adapter", threads=2)
lm = TransformersLM("path/to/model", device="cuda", dtype="bf16")   # auto: see ragtune.llm.device

Any causal LM transformers ships works (Llama, Qwen2, Mistral, Phi-3, GPT-2, GPT-NeoX, ...);
a tokenizer without a chat template gets the messages joined by blank lines.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from ragtune.errors import ConfigError, ContextTooLong
from ragtune.llm.base import LM, Completion, GenerationConfig, Messages, truncate_at_stop

STOP_CACHE = 16  # stop lists whose criteria are kept (least recently used dropped first)


class TransformersLM(LM):
    local = can_score = can_stream = can_prefill = can_constrain = True
    can_batch = True  # run_rows: a server's requests share decode steps (ragtune.llm.batching)

    def __init__(
        self,
        path: str | Path,
        *,
        adapter: str | Path | None = None,
        threads: int | None = None,
        batch_size: int = 8,
        device: str = "auto",
        dtype: str = "auto",
    ) -> None:
        super().__init__()
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bars per load

        from ragtune.llm.bundled import converted_gguf_dir
        from ragtune.llm.device import resolve

        self.device, self.dtype = resolve(device, dtype)  # a ConfigError before any loading
        if threads:
            torch.set_num_threads(int(threads))
        path = Path(path)
        if path.suffix == ".gguf":
            if not path.exists():
                raise ConfigError(f"GGUF file {path} does not exist; check the path")
            path = converted_gguf_dir(path)
        if not (path / "config.json").exists():
            raise ConfigError(
                f"{path} is not a model directory (no config.json); pass a Hugging Face model "
                "directory, a .gguf file, 'smollm2-135m', or 'openai:MODEL@URL'"
            )
        self.path = path
        self.name = str(path) + (f"+{adapter}" if adapter else "")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"  # decoder-only batching: pad on the left
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # A GGUF's cache entry holds the exact fp32 dequantisation; loading it in `dtype` rounds
        # each weight once, as dequantising straight to that dtype would.
        model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype)
        if adapter is not None:
            from ragtune.extras import require

            PeftModel = require("peft", "--adapter").PeftModel
            from ragtune.store import recover_dir

            recover_dir(adapter)  # a save killed mid-swap may have left the adapter moved aside
            if not (Path(adapter) / "adapter_config.json").exists():
                raise ConfigError(f"{adapter} is not a PEFT adapter (no adapter_config.json)")
            from ragtune.train.trainer import grow_for_adapter

            # The adapter may have added tokens (RoG's <PATH> markers): take its tokenizer
            # and grow the embedding matrix before loading the rows it carries.
            self.tokenizer = grow_for_adapter(model, self.tokenizer, adapter)
            self.tokenizer.padding_side = "left"
            model = PeftModel.from_pretrained(model, str(adapter))
            from ragtune.rag.formats import adapter_format

            # ask the tuned model in the format it was trained on (ragtune.json, by ragtune train)
            self.prompt_format = adapter_format(adapter)
        self.adapter = str(adapter) if adapter is not None else None
        # the adapter's LoRA weights load in fp32 (peft's default); keep the whole model in one
        # dtype so every matmul runs in the precision asked for
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.batch_size = batch_size
        self._stops: OrderedDict[tuple[str, ...], object] = OrderedDict()
        self._stops_lock = threading.Lock()  # a server generates from several threads
        self.context_window = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)

    # -- helpers ------------------------------------------------------------------------
    def render(self, messages: Messages, add_generation_prompt: bool = True) -> str:
        """The chat template applied to `messages` (plain concatenation if the model has none).

        A trailing assistant message is a *prefill*: the reply continues from its text.
        """
        if add_generation_prompt and messages and messages[-1]["role"] == "assistant":
            return self.render(messages[:-1]) + messages[-1]["content"]
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        text = "\n\n".join(m["content"] for m in messages)
        return text + ("\n" if add_generation_prompt else "")

    @property
    def end_of_turn_id(self) -> int:
        """The token that ends an assistant turn: ChatML's ``<|im_end|>`` when the tokenizer has
        it (SmolLM2, Qwen), else EOS. Constrained decoders end their allowed sequences with it."""
        tok = self.tokenizer
        if "<|im_end|>" in tok.get_vocab():
            return tok.convert_tokens_to_ids("<|im_end|>")
        return tok.eos_token_id

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    # -- the backend method -------------------------------------------------------------
    def _generate(self, batch: list[Messages], cfg: GenerationConfig) -> list[Completion]:
        out: list[Completion] = []
        for i in range(0, len(batch), self.batch_size):
            out.extend(self._generate_batch(batch[i : i + self.batch_size], cfg))
        return out

    def _check_window(self, n_prompt: int, max_tokens: int) -> None:
        if n_prompt + max_tokens > self.context_window:
            raise ContextTooLong(
                f"prompt of {n_prompt} tokens + max_tokens {max_tokens} exceeds the model's "
                f"{self.context_window}-token window; retrieve fewer documents (-k) or lower "
                "max_tokens"
            )

    def _gen_kwargs(self, cfg: GenerationConfig) -> dict:
        """model.generate() settings shared by batch generation and streaming."""
        import torch

        kw: dict = dict(
            max_new_tokens=cfg.max_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            do_sample=cfg.temperature > 0,
        )
        if cfg.temperature > 0:
            kw.update(temperature=cfg.temperature, top_p=cfg.top_p)
            if cfg.seed is not None:
                torch.manual_seed(cfg.seed)
        else:  # greedy: silence the model's sampling defaults from generation_config
            kw.update(temperature=None, top_p=None, top_k=None)
        return kw

    def _generate_batch(self, batch: list[Messages], cfg: GenerationConfig) -> list[Completion]:
        import torch

        prompts = [self.render(m) for m in batch]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        n_prompt = enc["attention_mask"].sum(dim=1).tolist()  # real (unpadded) prompt lengths
        enc = enc.to(self.device)
        longest = enc["input_ids"].shape[1]
        self._check_window(longest, cfg.max_tokens)
        kw = self._gen_kwargs(cfg)
        if cfg.stop:
            kw["stopping_criteria"] = self._stop_criteria(tuple(cfg.stop))
        with torch.inference_mode():
            gen = self.model.generate(**enc, **kw)
        new = gen[:, longest:]  # (batch, new_tokens): prompt part sliced off
        res = []
        eos = self.tokenizer.eos_token_id
        for row, np_ in zip(new.tolist(), n_prompt, strict=True):
            # count tokens up to (not including) the first pad/eos the batch appended
            n = len(row)
            for j, t in enumerate(row):
                if t == eos or t == self.tokenizer.pad_token_id:
                    n = j
                    break
            text = self.tokenizer.decode(row[:n], skip_special_tokens=True)
            text, cut = truncate_at_stop(text, cfg.stop)
            finish = "length" if (n >= cfg.max_tokens and not cut) else "stop"
            res.append(Completion(text.strip(), int(np_), n, finish))
        return res

    def run_rows(self, rows, more=None, max_batch: int = 8) -> None:
        """Many requests in one batch, each with its own settings and stream (see LM.run_rows)."""
        from ragtune.llm.batching import BatchDecoder

        BatchDecoder(self).run(rows, more, max_batch)

    def _stop_criteria(self, stop: tuple[str, ...]):
        # Building StopStringCriteria scans the whole vocabulary (~0.2 s for 49k tokens): do it
        # once per distinct stop list, not once per generate() call. It holds no per-call state.
        # A small LRU: a server's clients may send many distinct lists.
        from transformers import StoppingCriteriaList, StopStringCriteria

        with self._stops_lock:
            hit = self._stops.get(stop)
            if hit is not None:
                self._stops.move_to_end(stop)
                return hit
        built = StoppingCriteriaList([StopStringCriteria(self.tokenizer, list(stop))])
        with self._stops_lock:
            self._stops[stop] = built
            self._stops.move_to_end(stop)
            while len(self._stops) > STOP_CACHE:
                self._stops.popitem(last=False)
        return built

    def score(self, prompt: Messages, continuations: list[str]) -> list[float]:
        """Sum of log p(continuation tokens | chat prompt) for each continuation. Shapes in comments."""
        import torch

        prefix = self.render(prompt)
        p_ids = self.tokenizer.encode(prefix, add_special_tokens=False)
        scores = []
        for cont in continuations:
            c_ids = self.tokenizer.encode(prefix + cont, add_special_tokens=False)[len(p_ids) :]
            if not c_ids:
                scores.append(0.0)
                continue
            ids = torch.tensor([p_ids + c_ids], device=self.device)  # (1, T)
            with torch.inference_mode():
                logits = self.model(ids).logits[0, len(p_ids) - 1 : -1]  # (len(c), V)
            logp = torch.log_softmax(logits.float(), dim=-1)
            tgt = torch.tensor(c_ids, device=self.device)[:, None]
            scores.append(float(logp.gather(1, tgt).sum()))
        return scores

    def stream(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the reply as it is generated (transformers' TextIteratorStreamer).

        Generation runs in a helper thread; closing this generator early (a client hung up)
        stops it at the next token.
        """
        import threading

        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        from ragtune.llm.base import stream_until_stop

        enc = self.tokenizer([self.render(messages)], return_tensors="pt", add_special_tokens=False)
        enc = enc.to(self.device)
        n_prompt = int(enc["input_ids"].shape[1])
        self._check_window(n_prompt, max_tokens)
        cancel = threading.Event()

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool)

        criteria = [_Cancelled()]
        if stop:
            criteria.extend(self._stop_criteria(tuple(stop)))
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kw = self._gen_kwargs(GenerationConfig(max_tokens, temperature, top_p, [], seed))
        kw.update(stopping_criteria=StoppingCriteriaList(criteria), streamer=streamer)
        result: dict = {}

        def work() -> None:
            try:
                with torch.inference_mode():
                    result["ids"] = self.model.generate(**enc, **kw)
            except BaseException as e:  # handed to the consumer below
                result["error"] = e
                streamer.end()  # unblock the consumer

        thread = threading.Thread(target=work, name="ragtune-stream", daemon=True)
        thread.start()
        text = []
        try:
            for piece in stream_until_stop(streamer, stop):
                if not text:
                    piece = piece.lstrip()
                if not piece:  # the streamer holds back partial characters as ""
                    continue
                text.append(piece)
                yield piece
        finally:
            cancel.set()
            thread.join()
        if "error" in result:
            raise result["error"]
        new = result["ids"][0, n_prompt:].tolist()
        eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        n = next((j for j, t in enumerate(new) if t in eos), len(new))
        self.usage.add(Completion("".join(text), n_prompt, n))
