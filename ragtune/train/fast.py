"""Training speed-ups that leave the model, the LoRA maths and the adapter format as peft has them.

`undo = speed_up(peft_model)` after get_peft_model / PeftModel.from_pretrained, then train,
then `undo()`: the model's own modules come back and the caches are freed.

Why: profiled on SmolLM2-135M with LoRA on all 7 linear layers of each of the 30 blocks (1,577
tokens per step, one thread), peft's per-module `nn.Dropout` drew 210 random masks of shape
(tokens, 576 or 1536) per forward, ~10% of the step, and the LoRA matrices ran as 6 thin matmuls
per module. q/k/v read the same normed hidden state, and so do gate/up, so:

- one dropout mask per input (as a transformer's own dropout on its residual stream would be)
  instead of one per consumer: 7 draws per block become 4, and the backward multiplies by each
  mask once; each mask is drawn as int16 (2 bytes a unit, ~2x faster than F.dropout's float
  bernoulli on CPU);
- the A matrices of a group run as one matmul: x (T, H) @ [A_q; A_k; A_v]^T (H, 3r) -> (T, 3r),
  split into the three (T, r) inputs of the B matrices. The parameters stay where peft keeps
  them (the stand-in module holds the very same `weight`), so state dicts and saved adapters
  are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

# modules of one block that read the same input tensor
GROUPS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def _version(t) -> int:
    # inference tensors (torch.inference_mode, e.g. eval loss) keep no version counter; nothing
    # modifies a hidden state in place between the calls of one group
    return -1 if t.is_inference() else t._version


def _classes():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class SharedDropout(nn.Module):
        """Dropout that reuses its last output when called again on the very same tensor.

        One instance serves every LoRA module (per p), so q/k/v (and gate/up) get one dropped
        copy of their common input. The check is identity plus the tensor's version counter:
        a new or modified input draws afresh.
        """

        def __init__(self, p: float) -> None:
            super().__init__()
            self.p = p
            # keep a unit when a uniform int16 draw in [0, 32767] is >= thr: P(drop) = thr/32768,
            # within 2e-5 of p; the scale makes E[y] = x exactly for that P
            self._thr = round(p * 32768)
            self._scale = 32768 / (32768 - self._thr)
            self._last: tuple | None = None  # (input, its _version, output)
            self.draws = 0  # masks drawn (for tests and profiling)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.training or self.p == 0:
                self._last = None
                return x
            last = self._last
            if last is not None and last[0] is x and last[1] == _version(x):
                return last[2]
            # torch's RNG (seeded like the rest of the run), but 2 bytes a draw instead of
            # F.dropout's float bernoulli: ~2x faster on CPU, where the draw is the whole cost
            keep = torch.empty(x.shape, dtype=torch.int16, device=x.device).random_() >= self._thr
            self.draws += 1
            y = torch.where(keep, x, 0) * self._scale
            self._last = (x, _version(x), y)
            return y

        def extra_repr(self) -> str:
            return f"p={self.p}, shared"

    class _Group:
        """Not a Module (it must not add state-dict keys): the A weights of one input group."""

        def __init__(self, weights: list[nn.Parameter]) -> None:
            self.weights = weights
            self.last: tuple | None = None  # (input, versions, outputs)
            self.runs = 0  # fused matmuls run (for tests and profiling)

        def run(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            # the weights' versions too: an optimiser step between two calls invalidates
            key = (_version(x), *(w._version for w in self.weights))
            last = self.last
            if last is not None and last[0] is x and last[1] == key:
                return last[2]
            w = torch.cat(self.weights)  # (sum r, H); cat's backward hands each A its rows
            # peft's own input cast is off for grouped modules (a cast per module would make
            # three different tensors of one input); autocast casts inside F.linear anyway
            xin = x
            if x.dtype != w.dtype and not torch.is_autocast_enabled(x.device.type):
                xin = x.to(w.dtype)
            ys = F.linear(xin, w).split([int(v.shape[0]) for v in self.weights], dim=-1)
            self.last = (x, key, ys)
            self.runs += 1
            return ys

    class FusedA(nn.Module):
        """Stands in for one module's lora_A: same `weight` parameter, output from the group."""

        def __init__(self, orig: nn.Linear, group: _Group, index: int) -> None:
            super().__init__()
            self.weight = orig.weight  # the same Parameter: optimiser and state dict see no change
            self.in_features, self.out_features = orig.in_features, orig.out_features
            self._group, self._index = group, index

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self._group.run(x)[self._index]

    return SharedDropout, _Group, FusedA


def speed_up(model, dropout: bool = True, fuse: bool = True) -> Callable[[], None]:
    """Share LoRA dropout masks and fuse grouped A matmuls in place; returns the undo function.

    Only modules without weights of their own are swapped, so training, saving and loading the
    adapter are as with peft. A group is fused only when all its members have LoRA with bias-free
    A matrices of one dtype and one shared (or no) dropout; ranks may differ. The caches hold the
    last forward's group inputs and outputs until the next forward or `undo()`.
    """
    from torch import nn

    SharedDropout, Group, FusedA = _classes()
    swapped: list[tuple[nn.ModuleDict, str, nn.Module]] = []  # to undo: (dict, key, original)
    groups: list = []
    casts: dict = {}  # id(module) -> (module, its own cast_input_dtype_enabled or None)
    if dropout:
        shared: dict[float, nn.Module] = {}
        for mod in model.modules():
            drops = getattr(mod, "lora_dropout", None)
            if isinstance(drops, nn.ModuleDict):
                for name, d in list(drops.items()):
                    if type(d) is nn.Dropout and 0 < d.p < 1:
                        swapped.append((drops, name, d))
                        drops[name] = shared.setdefault(d.p, SharedDropout(d.p))
    if fuse:
        for parent in model.modules():
            for names in GROUPS:
                members = [getattr(parent, n, None) for n in names]
                if not all(isinstance(getattr(m, "lora_A", None), nn.ModuleDict) for m in members):
                    continue
                for key in members[0].lora_A:
                    As = [m.lora_A[key] if key in m.lora_A else None for m in members]
                    drops = {
                        id(m.lora_dropout[key])
                        for m in members
                        if key in m.lora_dropout and type(m.lora_dropout[key]) is not nn.Identity
                    }
                    if (
                        any(type(a) is not nn.Linear or a.bias is not None for a in As)
                        or len({a.weight.dtype for a in As}) > 1
                        or len(drops) > 1  # separate masks: inputs differ, nothing to share
                    ):
                        continue
                    g = Group([a.weight for a in As])
                    groups.append(g)
                    for i, (m, a) in enumerate(zip(members, As, strict=True)):
                        swapped.append((m.lora_A, key, a))
                        m.lora_A[key] = FusedA(a, g, i)
                        # once per module (several adapters may share it), before changing it
                        casts.setdefault(id(m), (m, m.__dict__.get("cast_input_dtype_enabled")))
                        m.cast_input_dtype_enabled = False

    def undo() -> None:
        for d, name, orig in reversed(swapped):
            d[name] = orig
        for m, flag in casts.values():
            if flag is None:
                del m.cast_input_dtype_enabled
            else:
                m.cast_input_dtype_enabled = flag
        for g in groups:
            g.last = None
        swapped.clear()
        casts.clear()

    return undo
