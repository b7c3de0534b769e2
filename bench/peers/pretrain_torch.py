"""PyTorch 1.13 peer of `Sharpformer.Bench pretrain`: one pretraining update of the mini config
(4 layers, hidden 256, 4 heads, FFN 1024, vocabulary 16 000, 128 positions, dropout 0.1) on a batch of
32 random blocks of 128 ids = forward + loss + backward + clip_grad_norm_(1.0) + AdamW(lr 5e-4, wd 0.01).

  mlm: BERT as HF BertForMaskedLM (post-LN, erf GELU, transform dense+GELU+LayerNorm, decoder tied to the word
       embeddings + bias), 15 % of tokens selected, 80/10/10. By default the head runs only at the masked
       positions, as Sharpformer's trainer does; --full-logits runs it over every position (HF's own forward).
  clm: GPT-2 as HF GPT2LMHeadModel (pre-LN, gelu_new, causal mask, tied lm_head), shifted next-token loss.

Plain torch (no transformers). Prints one JSON line per objective: median wall ms per update, tokens/s, and process
CPU seconds per update (time.process_time; on a shared machine CPU time is the steadier figure).
Usage: /usr/bin/python3 pretrain_torch.py [--threads 2] [--repeats 7] [--objective mlm|clm|all] [--full-logits]
BLAS: Debian's python3-torch does its GEMMs through libblas.so.3, which is the slow reference BLAS unless an optimised one
is installed (torch.__config__.show() says BLAS_INFO=generic). For a fair peer run it against OpenBLAS without touching the
system: `apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb ob` and then
`LD_LIBRARY_PATH=ob/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 …`.
"""
import argparse
import json
import math
import time

import torch
from torch import nn
import torch.nn.functional as F

V, H, L, A, I, S, B = 16000, 256, 4, 4, 1024, 128, 32
P_DROP = 0.1


def init_weights(model):
    """HF's init: linear and embedding weights N(0, 0.02), biases 0, LayerNorm 1/0 (torch's default)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


class BertLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(H, H) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(H, eps=1e-12), nn.LayerNorm(H, eps=1e-12)
        self.fc1, self.fc2 = nn.Linear(H, I), nn.Linear(I, H)
        self.drop = nn.Dropout(P_DROP)

    def heads(self, x):
        return x.view(x.shape[0], x.shape[1], A, H // A).transpose(1, 2)

    def forward(self, x):
        q, k, v = self.heads(self.q(x)), self.heads(self.k(x)), self.heads(self.v(x))
        p = self.drop(F.softmax(q @ k.transpose(-1, -2) / math.sqrt(H // A), dim=-1))
        ctx = (p @ v).transpose(1, 2).reshape(x.shape)
        a = self.ln1(self.drop(self.o(ctx)) + x)
        return self.ln2(self.drop(self.fc2(F.gelu(self.fc1(a)))) + a)


class BertForMaskedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.word, self.pos, self.token_type = nn.Embedding(V, H, padding_idx=0), nn.Embedding(S, H), nn.Embedding(2, H)
        self.ln = nn.LayerNorm(H, eps=1e-12)
        self.drop = nn.Dropout(P_DROP)
        self.layers = nn.ModuleList(BertLayer() for _ in range(L))
        self.transform, self.transform_ln = nn.Linear(H, H), nn.LayerNorm(H, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(V))
        init_weights(self)

    def forward(self, ids, labels, full_logits):
        x = self.word(ids) + self.token_type(torch.zeros_like(ids)) + self.pos(torch.arange(ids.shape[1]))[None]
        x = self.drop(self.ln(x))
        for layer in self.layers:
            x = layer(x)
        x, y = x.reshape(-1, H), labels.reshape(-1)
        if not full_logits:
            keep = y != -100
            x, y = x[keep], y[keep]
        logits = F.linear(self.transform_ln(F.gelu(self.transform(x))), self.word.weight, self.bias)
        return F.cross_entropy(logits, y, ignore_index=-100)


class Gpt2Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(H), nn.LayerNorm(H)
        self.c_attn, self.c_proj = nn.Linear(H, 3 * H), nn.Linear(H, H)
        self.fc, self.proj = nn.Linear(H, 4 * H), nn.Linear(4 * H, H)
        self.drop = nn.Dropout(P_DROP)
        self.register_buffer("causal", torch.tril(torch.ones(S, S, dtype=torch.bool)), persistent=False)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = (z.view(b, t, A, H // A).transpose(1, 2) for z in self.c_attn(self.ln1(x)).split(H, dim=2))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(H // A)
        s = s.masked_fill(~self.causal[:t, :t], torch.finfo(s.dtype).min)
        ctx = (self.drop(F.softmax(s, dim=-1)) @ v).transpose(1, 2).reshape(b, t, H)
        x = x + self.drop(self.c_proj(ctx))
        return x + self.drop(self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh")))


class Gpt2LMHeadModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, H), nn.Embedding(S, H)
        self.drop = nn.Dropout(P_DROP)
        self.h = nn.ModuleList(Gpt2Block() for _ in range(L))
        self.ln_f = nn.LayerNorm(H)
        init_weights(self)

    def forward(self, ids, labels, full_logits):
        x = self.drop(self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))[None])
        for block in self.h:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)
        return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))


def mlm_batch(gen):
    ids = torch.randint(5, V, (B, S), generator=gen)
    ids[:, 0], ids[:, -1] = 2, 3
    labels = ids.clone()
    selected = torch.bernoulli(torch.full((B, S), 0.15), generator=gen).bool()
    selected[:, 0] = selected[:, -1] = False
    labels[~selected] = -100
    replace = torch.bernoulli(torch.full((B, S), 0.8), generator=gen).bool() & selected
    ids[replace] = 4
    rand = torch.bernoulli(torch.full((B, S), 0.5), generator=gen).bool() & selected & ~replace
    ids[rand] = torch.randint(V, (B, S), generator=gen)[rand]
    return ids, labels


def run(objective, repeats, full_logits):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = BertForMaskedLM() if objective == "mlm" else Gpt2LMHeadModel()
    model.train()
    if objective == "mlm":
        ids, labels = mlm_batch(gen)
    else:
        ids = torch.randint(5, V, (B, S), generator=gen)
        labels = ids
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=5e-4)

    def step():
        loss = model(ids, labels, full_logits)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=False)
        return loss.item()

    step(); step()
    times, cpu0 = [], time.process_time()
    for _ in range(repeats):
        t0 = time.perf_counter()
        last = step()
        times.append(time.perf_counter() - t0)
    cpu = (time.process_time() - cpu0) / repeats
    times.sort()
    med = times[len(times) // 2]
    name = "pretrain_%s_mini%s" % (objective, "_full_logits" if full_logits and objective == "mlm" else "")
    print(json.dumps({"bench": name, "peer": "torch " + torch.__version__, "batch": B, "seq_len": S, "threads": torch.get_num_threads(),
                      "step_ms": round(med * 1000, 1), "tokens_per_s": round(B * S / med), "cpu_seconds_per_step": round(cpu, 3),
                      "tokens_per_cpu_s": round(B * S / cpu), "parameters": sum(p.numel() for p in model.parameters()),
                      "last_loss": round(last, 4)}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--objective", default="all", choices=["mlm", "clm", "all"])
    ap.add_argument("--full-logits", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for objective in (["mlm", "clm"] if a.objective == "all" else [a.objective]):
        run(objective, a.repeats, a.full_logits)


if __name__ == "__main__":
    main()
