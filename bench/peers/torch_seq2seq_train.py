#!/usr/bin/env python3
"""PyTorch peer of `Sharpformer.Bench seq2seq`: training tokens/s of the two G2P encoder-decoders at the sizes
`sharpformer train seq2seq` uses by default, on the same fixed batch of CMUdict training words.

One step = teacher-forced forward + cross-entropy (ignore_index = PAD) + backward + clip_grad_norm_(5) + AdamW
(weight decay 0). Batch: every floor(N/B)-th pronunciation of train.tsv (file order, stress digits removed), the
vocabulary <pad> <s> </s> <unk> + sorted letters + sorted phonemes, sources right-padded, targets BOS ... EOS PAD*.

Models (the same as Sharpformer's, parameter names included):
  bahdanau     the fixture README's Seq2Seq (../shared/fixtures/torch-rnn/README.md): embedding 64, bi-GRU encoder 128 on
               packed sequences, bridge, decoder GRU 256 stepped once per target position with additive attention
               (units 128; W1(values) computed once per batch) and input feeding [context; embedding].
  transformer  embedding ×sqrt(d) + sinusoidal positions, dropout 0.1, nn.Transformer(d_model 128, nhead 4, 3 + 3 layers,
               dim_feedforward 512, post-norm, batch_first), causal target mask, source padding masks, output tied to the
               embedding.

Usage: /usr/bin/python3 torch_seq2seq_train.py [--data DIR] [--threads 2] [--repeats 7] [--batch 64] [--only bahdanau|transformer]
Prints one JSON line per model: median wall ms per step, process CPU seconds per step, target/source tokens per second.
(/usr/bin/python3: Debian's python3-torch 1.13 is installed for the system interpreter, not for a pyenv python3 on PATH.
That build reports BLAS_INFO=generic and CPU capability AVX2 in torch.__config__.show(): its GEMMs are not MKL/OpenBLAS.
For a fair comparison run it against OpenBLAS as pretrain_torch.py describes: LD_LIBRARY_PATH=<unpacked
libopenblas0-pthread>/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_NUM_THREADS=<threads> OMP_WAIT_POLICY=PASSIVE.)
"""
import argparse, json, math, os, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, BOS, EOS, UNK = 0, 1, 2, 3


def read_cmudict(path):
    entries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            word, phones = line.split("\t", 1)
            entries.append((word, [p.rstrip("012") for p in phones.split()]))
    return entries


def build_batch(entries, batch):
    letters = sorted({c for w, _ in entries for c in w.lower()})
    phonemes = sorted({p for _, ps in entries for p in ps})
    symbols = ["<pad>", "<s>", "</s>", "<unk>"] + letters + phonemes
    index = {s: i for i, s in enumerate(symbols)}
    stride = len(entries) // batch
    rows = [entries[i * stride] for i in range(batch)]
    src = [[index.get(c, UNK) for c in w.lower()] for w, _ in rows]
    tgt = [[BOS] + [index[p] for p in ps] + [EOS] for _, ps in rows]
    S, T = max(len(s) for s in src), max(len(t) for t in tgt) - 1
    src_t = torch.zeros(batch, S, dtype=torch.long)
    dec_in = torch.zeros(batch, T, dtype=torch.long)
    labels = torch.zeros(batch, T, dtype=torch.long)
    for b in range(batch):
        src_t[b, :len(src[b])] = torch.tensor(src[b])
        dec_in[b, :len(tgt[b]) - 1] = torch.tensor(tgt[b][:-1])
        labels[b, :len(tgt[b]) - 1] = torch.tensor(tgt[b][1:])
    lengths = torch.tensor([len(s) for s in src])
    return len(symbols), src_t, lengths, dec_in, labels


class BahdanauAttention(nn.Module):
    def __init__(self, query_dim, values_dim, units):
        super().__init__()
        self.W1 = nn.Linear(values_dim, units)
        self.W2 = nn.Linear(query_dim, units)
        self.V = nn.Linear(units, 1)

    def forward(self, query, values, keys, mask):
        scores = self.V(torch.tanh(keys + self.W2(query).unsqueeze(1))).squeeze(-1)
        attention = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return torch.bmm(attention.unsqueeze(1), values).squeeze(1), attention


class Encoder(nn.Module):
    def __init__(self, vocab, emb, hidden):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.gru = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)


class Decoder(nn.Module):
    def __init__(self, vocab, emb, enc_hidden, dec_hidden, units):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.attention = BahdanauAttention(dec_hidden, 2 * enc_hidden, units)
        self.gru = nn.GRU(2 * enc_hidden + emb, dec_hidden, batch_first=True)
        self.fc = nn.Linear(dec_hidden, vocab)


class Seq2Seq(nn.Module):
    def __init__(self, vocab, emb=64, enc_hidden=128, dec_hidden=256, units=128):
        super().__init__()
        self.encoder = Encoder(vocab, emb, enc_hidden)
        self.bridge = nn.Linear(2 * enc_hidden, dec_hidden)
        self.decoder = Decoder(vocab, emb, enc_hidden, dec_hidden, units)

    def forward(self, src, lengths, dec_in):
        S = src.shape[1]
        packed = pack_padded_sequence(self.encoder.embedding(src), lengths, batch_first=True, enforce_sorted=False)
        out, h_n = self.encoder.gru(packed)
        values, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        state = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=-1)))
        mask = torch.arange(S).unsqueeze(0) < lengths.unsqueeze(1)
        keys = self.decoder.attention.W1(values)
        embedded = self.decoder.embedding(dec_in)
        logits = []
        for t in range(dec_in.shape[1]):
            context, _ = self.decoder.attention(state, values, keys, mask)
            x = torch.cat([context, embedded[:, t]], dim=-1).unsqueeze(1)
            _, h = self.decoder.gru(x, state.unsqueeze(0))
            state = h[0]
            logits.append(self.decoder.fc(state))
        return torch.stack(logits, 1)


class TransformerSeq2Seq(nn.Module):
    def __init__(self, vocab, d_model=128, nhead=4, layers=3, ff=512, dropout=0.1, max_positions=64):
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(vocab, d_model, padding_idx=PAD)
        nn.init.normal_(self.embedding.weight, 0, d_model ** -0.5)
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()
        self.dropout = nn.Dropout(dropout)
        self.transformer = nn.Transformer(d_model, nhead, layers, layers, ff, dropout, batch_first=True)
        pe = torch.zeros(max_positions, d_model)
        for p in range(max_positions):
            for j in range(d_model):
                angle = p / 10000 ** (2 * (j // 2) / d_model)
                pe[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
        self.register_buffer("pe", pe, persistent=False)

    def embed(self, ids):
        return self.dropout(self.embedding(ids) * math.sqrt(self.d_model) + self.pe[:ids.shape[1]])

    def forward(self, src, lengths, dec_in):
        src_pad = torch.arange(src.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
        tgt_mask = self.transformer.generate_square_subsequent_mask(dec_in.shape[1])
        h = self.transformer(self.embed(src), self.embed(dec_in), tgt_mask=tgt_mask,
                             src_key_padding_mask=src_pad, memory_key_padding_mask=src_pad)
        return F.linear(h, self.embedding.weight)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--only", default="all")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    entries = read_cmudict(os.path.join(a.data, "cmudict", "train.tsv"))
    vocab, src, lengths, dec_in, labels = build_batch(entries, a.batch)
    target_tokens, source_tokens = int((labels != PAD).sum()), int(lengths.sum())
    models = {"bahdanau": (lambda: Seq2Seq(vocab), 2e-3), "transformer": (lambda: TransformerSeq2Seq(vocab), 7e-4)}
    for name, (make, lr) in models.items():
        if a.only not in ("all", name):
            continue
        model = make()
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)

        def step():
            opt.zero_grad(set_to_none=True)
            logits = model(src, lengths, dec_in)
            loss = F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1), ignore_index=PAD)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()

        step(); step()
        walls = []
        cpu0 = time.process_time()
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            step()
            walls.append(time.perf_counter() - t0)
        cpu = (time.process_time() - cpu0) / a.repeats
        s = statistics.median(walls)
        print(json.dumps({"bench": "seq2seq_train", "peer": "pytorch " + torch.__version__, "model": name,
                          "parameters": sum(p.numel() for p in model.parameters()), "batch": a.batch,
                          "source_tokens": source_tokens, "target_tokens": target_tokens, "threads": torch.get_num_threads(),
                          "step_ms": round(s * 1000, 1), "target_tokens_per_s": round(target_tokens / s),
                          "source_tokens_per_s": round(source_tokens / s), "cpu_seconds_per_step": round(cpu, 3)}), flush=True)


if __name__ == "__main__":
    main()
