"""PyTorch 1.13 loss curve of the mini-BERT masked-LM recipe, to set beside a `sharpformer pretrain` run's metrics.jsonl.

The model is pretrain_torch.py's BertForMaskedLM (HF's architecture and initialisation) trained on the same corpus files
and vocabulary with the recipe of models/README.md: batch 32 x 128, AdamW (weight decay 0.01 on matrices), linear warmup
over 720 steps then linear decay to step 12,000, clipping at 1.0, 15 % masking with 80/10/10. Prints the mean train loss
every 50 steps and the held-out masked-LM loss / perplexity / accuracy (256 blocks from every 100th line) every 250.
Tokenization is a plain-Python BERT uncased WordPiece over vocab.txt (close to, not bit-equal with, Sharpformer's), and
the line order differs, so the curves agree statistically, not bit for bit.

Why: a from-scratch BERT sits on a long "bag of words" plateau (loss ~6-7); this tells a slow recipe from a wrong
implementation. 2026-12-03, AMD EPYC: steps 50/100/150/200 train loss 9.547/8.886/8.138/7.390 here vs 9.556/8.913/
8.182/7.454 for Sharpformer; step 500 held-out loss 6.719 vs 6.725.

Usage: /usr/bin/python3 pretrain_curve_torch.py VOCAB_TXT CORPUS_DIR STEPS PEAK_LR [THREADS] [normal|sin]
  (sin: sinusoidal initial position embeddings scaled to std 0.02; with OpenBLAS as pretrain_torch.py says)."""
import gzip, json, math, random, sys, time, unicodedata, importlib.util
import torch, torch.nn.functional as F
import os
spec = importlib.util.spec_from_file_location("pt", os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrain_torch.py")); pt = importlib.util.module_from_spec(spec); spec.loader.exec_module(pt)
if len(sys.argv) < 5: sys.exit(__doc__)
vocab_path, corpus = sys.argv[1], sys.argv[2]
steps = int(sys.argv[3]); lr_peak = float(sys.argv[4]); threads = int(sys.argv[5]) if len(sys.argv) > 5 else 1
posinit = sys.argv[6] if len(sys.argv) > 6 else "normal"
torch.set_num_threads(threads)
vocab = [l.rstrip("\n") for l in open(vocab_path, encoding="utf-8")]
tid = {t: i for i, t in enumerate(vocab)}
CLS, SEP, MASK, UNK = tid["[CLS]"], tid["[SEP]"], tid["[MASK]"], tid["[UNK]"]
def basic(text):
    text = unicodedata.normalize("NFD", text.lower()); text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out, cur = [], []
    for c in text:
        if c.isspace():
            if cur: out.append("".join(cur)); cur = []
        elif unicodedata.category(c).startswith("P") or (33 <= ord(c) <= 47 or 58 <= ord(c) <= 64 or 91 <= ord(c) <= 96 or 123 <= ord(c) <= 126):
            if cur: out.append("".join(cur)); cur = []
            out.append(c)
        else: cur.append(c)
    if cur: out.append("".join(cur))
    return out
def wordpiece(w):
    if len(w) > 100: return [UNK]
    ids, s = [], 0
    while s < len(w):
        e, found = len(w), None
        while e > s:
            piece = w[s:e] if s == 0 else "##" + w[s:e]
            if piece in tid: found = tid[piece]; break
            e -= 1
        if found is None: return [UNK]
        ids.append(found); s = e
    return ids
lines = []
for f in sorted(os.listdir(corpus)):
    if f.endswith(".txt.gz") or f.endswith(".txt"):
        opener = gzip.open if f.endswith(".gz") else open
        lines += [l.strip() for l in opener(os.path.join(corpus, f), "rt", encoding="utf-8") if l.strip()]
held = lines[::100]; train = [l for i, l in enumerate(lines) if i % 100]
rnd = random.Random(0); rnd.shuffle(train)
def blocks(ls, n):
    buf, out = [], []
    for l in ls:
        buf += [CLS] + [i for w in basic(l) for i in wordpiece(w)] + [SEP]
        while len(buf) >= 128:
            out.append(buf[:128]); buf = buf[128:]
            if len(out) == n: return out
    return out
need = steps * 32
t0 = time.time(); tr = torch.tensor(blocks(train, need)); ho = torch.tensor(blocks(held, 256)); print("blocks", tr.shape, ho.shape, "%.0fs" % (time.time() - t0), flush=True)
special = torch.zeros(len(vocab), dtype=torch.bool); special[[tid[t] for t in vocab if t.startswith("[") and t.endswith("]")]] = True
def mask(ids, gen):
    ids = ids.clone(); labels = ids.clone()
    sel = torch.bernoulli(torch.full(ids.shape, 0.15), generator=gen).bool() & ~special[ids]
    labels[~sel] = -100
    rep = torch.bernoulli(torch.full(ids.shape, 0.8), generator=gen).bool() & sel; ids[rep] = MASK
    rnd_ = torch.bernoulli(torch.full(ids.shape, 0.5), generator=gen).bool() & sel & ~rep
    ids[rnd_] = torch.randint(len(vocab), ids.shape, generator=gen)[rnd_]
    return ids, labels
torch.manual_seed(0); gen = torch.Generator().manual_seed(1)
pt.V = len(vocab)
model = pt.BertForMaskedLM()
if posinit == "sin":
    pos = torch.arange(128, dtype=torch.float64)[:, None]; k = torch.arange(0, pt.H, 2, dtype=torch.float64)
    ang = pos / torch.pow(10000.0, k / pt.H); pe = torch.zeros(128, pt.H, dtype=torch.float64); pe[:, 0::2] = torch.sin(ang); pe[:, 1::2] = torch.cos(ang)
    with torch.no_grad(): model.pos.weight.copy_((pe / pe.std() * 0.02).float())
print("position init", posinit, "std %.4f" % model.pos.weight.std().item(), flush=True)
decay = [p for n, p in model.named_parameters() if p.dim() >= 2]; no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=lr_peak)
total, warm = 12000, 720
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / warm if s < warm else max(0.0, (total - s) / (total - warm)))
hgen = torch.Generator().manual_seed(7); hids, hlab = mask(ho, hgen)
def evaluate():
    model.eval()
    with torch.no_grad():
        tot, n, corr = 0.0, 0, 0
        for i in range(0, 256, 32):
            x, y = hids[i:i+32], hlab[i:i+32]
            # loss and accuracy at masked positions
            h = model.drop(model.ln(model.word(x) + model.token_type(torch.zeros_like(x)) + model.pos(torch.arange(128))[None]))
            for layer in model.layers: h = layer(h)
            h, yy = h.reshape(-1, pt.H), y.reshape(-1); keep = yy != -100
            logits = F.linear(model.transform_ln(F.gelu(model.transform(h[keep]))), model.word.weight, model.bias)
            tot += F.cross_entropy(logits, yy[keep], reduction="sum").item(); n += keep.sum().item(); corr += (logits.argmax(-1) == yy[keep]).sum().item()
    model.train(); return tot / n, corr / n
model.train(); run = 0.0; c0 = time.process_time()
for s in range(1, steps + 1):
    x, y = mask(tr[(s - 1) * 32: s * 32], gen)
    loss = model(x, y, False); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); sched.step(); opt.zero_grad()
    run += loss.item()
    if s % 50 == 0: print(json.dumps({"step": s, "train_loss": round(run / 50, 4), "lr": sched.get_last_lr()[0], "cpu_s": round(time.process_time() - c0)}), flush=True); run = 0.0
    if s % 250 == 0:
        l, a = evaluate(); print(json.dumps({"step": s, "eval_loss": round(l, 4), "ppl": round(math.exp(l), 1), "eval_acc": round(a, 4)}), flush=True)
