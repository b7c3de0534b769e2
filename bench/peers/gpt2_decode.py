#!/usr/bin/env python3
"""PyTorch peer of `Sharpformer.Bench generate`: GPT-2 in plain torch (no transformers) with a KV cache.

Same architecture and shapes as transformers' GPT2LMHeadModel (pre-norm blocks, fused c_attn [in, out] Conv1D weights,
gelu_new, tied LM head), random N(0, 0.02) weights. Prints one JSON line per (model, batch) with the fields of the C#
bench: prefill ms of a --prompt-token prompt, median per-token decode ms (one new token per row through the cache and
the LM head), process CPU ms per token, weight GB/s.

Usage: OMP_NUM_THREADS=2 python3 bench/peers/gpt2_decode.py --threads 2 --models 124m,small --batches 1,8 --prompt 64 --new 32 --repeats 3
--dtypes fp32,int8: int8 is torch's dynamic quantization (torch.quantization.quantize_dynamic on nn.Linear copies of the four
projections of every block and of the tied LM head: int8 weights per tensor, activations quantized per call, fbgemm),
the same layers Sharpformer's int8 runs; the dtypes alternate within every round.
BLAS: Debian's torch calls libblas.so.3 (reference BLAS unless another is installed); for a fair fp32 peer run it with
OpenBLAS (see pretrain_torch.py's docstring for the LD_LIBRARY_PATH recipe).
The KV cache is preallocated [B, heads, capacity, d] per layer and appended in place (no torch.cat per token), the
fastest plain-torch form; torch.cat (what transformers 4.30 does) is selectable with --cat.
"""
import argparse, json, math, statistics, time

import torch
import torch.nn.functional as F

CONFIGS = {
    "124m": dict(vocab=50257, positions=1024, width=768, layers=12, heads=12),
    "small": dict(vocab=8192, positions=512, width=256, layers=4, heads=4),
    # the shapes of models/sharpformer-mini-gpt (the C# bench's "shipped"); weights are random, which costs the same
    "mini": dict(vocab=16000, positions=128, width=256, layers=4, heads=4),
}


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Gpt2:
    def __init__(self, vocab, positions, width, layers, heads, seed=1):
        g = torch.Generator().manual_seed(seed)
        n = lambda *s, std=0.02: torch.randn(*s, generator=g) * std
        self.heads, self.width, self.d = heads, width, width // heads
        self.wte, self.wpe = n(vocab, width), n(positions, width)
        proj_std = 0.02 / math.sqrt(2 * layers)
        self.blocks = [dict(
            ln1_w=torch.ones(width), ln1_b=torch.zeros(width),
            attn_w=n(width, 3 * width), attn_b=torch.zeros(3 * width),
            proj_w=n(width, width, std=proj_std), proj_b=torch.zeros(width),
            ln2_w=torch.ones(width), ln2_b=torch.zeros(width),
            fc_w=n(width, 4 * width), fc_b=torch.zeros(4 * width),
            fc2_w=n(4 * width, width, std=proj_std), fc2_b=torch.zeros(width)) for _ in range(layers)]
        self.lnf_w, self.lnf_b = torch.ones(width), torch.zeros(width)

    def quantize_int8(self):
        """nn.Linear copies ([out, in] = the Conv1D weight transposed) of every projection and of the LM head, dynamically quantized."""
        def linear(w_in_out, b):
            lin = torch.nn.Linear(w_in_out.shape[0], w_in_out.shape[1], bias=b is not None)
            lin.weight.data = w_in_out.t().contiguous()
            if b is not None: lin.bias.data = b.clone()
            return lin
        mods = torch.nn.ModuleDict()
        for l, p in enumerate(self.blocks):
            for w, b in (("attn_w", "attn_b"), ("proj_w", "proj_b"), ("fc_w", "fc_b"), ("fc2_w", "fc2_b")):
                mods[f"{l}_{w}"] = linear(p[w], p[b])
        mods["lm_head"] = linear(self.wte.t(), None)
        self.q = torch.quantization.quantize_dynamic(mods, {torch.nn.Linear}, dtype=torch.qint8)

    def mm(self, l, p, w, b, x):
        q = getattr(self, "q", None)
        return q[f"{l}_{w}"](x) if q is not None else torch.addmm(p[b], x, p[w])

    def parameters(self):
        yield self.wte; yield self.wpe; yield self.lnf_w; yield self.lnf_b
        for b in self.blocks: yield from b.values()

    def new_cache(self, batch, capacity):
        shape = (batch, self.heads, capacity, self.d)
        return dict(k=[torch.empty(shape) for _ in self.blocks], v=[torch.empty(shape) for _ in self.blocks], length=0)

    def forward(self, ids, cache, use_cat):
        """ids [B, T] → last-position logits [B, V]; appends the T new keys/values to the cache."""
        B, T = ids.shape
        past = cache["length"]
        pos = torch.arange(past, past + T)
        x = self.wte[ids] + self.wpe[pos]
        for l, p in enumerate(self.blocks):
            h = F.layer_norm(x, (self.width,), p["ln1_w"], p["ln1_b"], 1e-5)
            qkv = self.mm(l, p, "attn_w", "attn_b", h.view(-1, self.width)).view(B, T, 3, self.heads, self.d)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, heads, T, d]
            if use_cat:
                if past == 0: cache["k"][l], cache["v"][l] = k, v
                else:
                    cache["k"][l] = torch.cat([cache["k"][l], k], dim=2)
                    cache["v"][l] = torch.cat([cache["v"][l], v], dim=2)
                K, V = cache["k"][l], cache["v"][l]
            else:
                cache["k"][l][:, :, past:past + T] = k
                cache["v"][l][:, :, past:past + T] = v
                K, V = cache["k"][l][:, :, :past + T], cache["v"][l][:, :, :past + T]
            scores = torch.matmul(q, K.transpose(-1, -2)) / math.sqrt(self.d)
            if T > 1:
                causal = torch.ones(T, past + T, dtype=torch.bool).tril(past)
                scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
            ctx = torch.matmul(torch.softmax(scores, dim=-1), V).transpose(1, 2).reshape(B * T, self.width)
            x = x + self.mm(l, p, "proj_w", "proj_b", ctx).view(B, T, self.width)
            h = F.layer_norm(x, (self.width,), p["ln2_w"], p["ln2_b"], 1e-5)
            f = gelu_new(self.mm(l, p, "fc_w", "fc_b", h.view(-1, self.width)))
            x = x + self.mm(l, p, "fc2_w", "fc2_b", f).view(B, T, self.width)
        cache["length"] = past + T
        last = F.layer_norm(x[:, -1], (self.width,), self.lnf_w, self.lnf_b, 1e-5)
        q = getattr(self, "q", None)
        return q["lm_head"](last) if q is not None else last @ self.wte.t()


def measure(model, ids, steps, use_cat):
    B, P = ids.shape
    cache = model.new_cache(B, P + steps)
    c0, w0 = time.process_time(), time.perf_counter()
    logits = model.forward(ids, cache, use_cat)
    prefill_ms, prefill_cpu = (time.perf_counter() - w0) * 1e3, (time.process_time() - c0) * 1e3
    times = []
    cpu0 = time.process_time()
    for _ in range(steps):
        nxt = logits.argmax(-1, keepdim=True)
        w0 = time.perf_counter()
        logits = model.forward(nxt, cache, use_cat)
        times.append((time.perf_counter() - w0) * 1e3)
    return prefill_ms, prefill_cpu, statistics.median(times), (time.process_time() - cpu0) * 1e3 / max(1, steps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="124m,small")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtypes", default="fp32", help="fp32,int8 (int8 = quantize_dynamic)")
    ap.add_argument("--cat", action="store_true", help="grow the cache with torch.cat per token (transformers 4.30's way)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    dtypes = a.dtypes.split(",")
    for name in a.models.split(","):
        c = CONFIGS[name]
        variants = []
        for dt in dtypes:
            model = Gpt2(**c)
            if dt == "int8": model.quantize_int8()
            elif dt != "fp32": raise SystemExit(f"--dtypes {dt}: expected fp32 or int8")
            variants.append((dt, model))
        params = sum(t.numel() for t in variants[0][1].parameters())
        fp32_bytes = 4 * (params - c["positions"] * c["width"])
        # int8: every projection and the head at 1 byte per weight (+ fp32 bias); LayerNorms fp32.
        matrices = sum(p[w].numel() for p in variants[0][1].blocks for w in ("attn_w", "proj_w", "fc_w", "fc2_w")) + c["vocab"] * c["width"]
        for B in (int(b) for b in a.batches.split(",")):
            ids = torch.randint(0, c["vocab"], (B, a.prompt), generator=torch.Generator().manual_seed(3))
            for _, model in variants: measure(model, ids, min(2, a.new), a.cat)  # warm-up
            runs = {dt: [] for dt in dtypes}
            for _ in range(a.repeats):
                for dt, model in variants: runs[dt].append(measure(model, ids, a.new, a.cat))
            for dt in dtypes:
                med = lambda i: statistics.median(r[i] for r in runs[dt])
                per_token = med(2)
                weight_bytes = fp32_bytes if dt == "fp32" else fp32_bytes - 3 * matrices
                print(json.dumps(dict(
                    bench="generate-torch", model=("gpt2-124m-random" if name == "124m" else "gpt2-small-random"), dtype=dt, parameters=params,
                    batch=B, prompt_tokens=a.prompt, new_tokens=a.new, threads=a.threads, torch=torch.__version__,
                    cache="cat" if a.cat else "preallocated",
                    prefill_ms=round(med(0), 3), prefill_cpu_ms=round(med(1), 3), decode_ms_per_token=round(per_token, 3),
                    decode_cpu_ms_per_token=round(med(3), 3), decode_tokens_per_s=round(B * 1000 / per_token, 3),
                    weight_bytes=weight_bytes, weight_gbs=round(weight_bytes / per_token / 1e6, 3), repeats=a.repeats,
                    load_average=float(open("/proc/loadavg").read().split()[0]))), flush=True)


if __name__ == "__main__":
    main()
