using Sharpformer.Kernels;

namespace Sharpformer.Tensors;

/// <summary>Result of <see cref="Functional.GruRecurrence"/> / <see cref="Functional.LstmRecurrence"/> for one direction of one layer.</summary>
/// <param name="Output">[T, B, H_out] the state after every time step (time order, also for a reverse run), 0 past each length.</param>
/// <param name="LastHidden">[B, H_out] each sequence's state after its last real step (after step 0 for a reverse run).</param>
/// <param name="LastCell">[B, H] the LSTM cell state likewise; null for a GRU.</param>
public sealed record RecurrenceResult(Tensor Output, Tensor LastHidden, Tensor? LastCell);

/// <summary>Result of <see cref="Functional.AdditiveAttention"/>: context [B, Dv], weights [B, S] (0 at masked positions), raw scores [B, S].</summary>
public sealed record AdditiveAttentionResult(Tensor Context, Tensor Weights, Tensor Scores);

public static partial class Functional
{
    /// <summary>
    /// The GRU recurrence over a whole sequence, as one autograd op, from the input projection of every step
    /// (<paramref name="inputGates"/> [T, B, 3H] = x·W_ihᵀ + b_ih, time-major, computed by the caller as one GEMM).
    /// </summary>
    /// <param name="inputGates">[T, B, 3H], gate blocks r, z, n.</param>
    /// <param name="weightHh">W_hh [3H, H] (PyTorch's weight_hh_l{k}).</param>
    /// <param name="biasHh">b_hh [3H] or null.</param>
    /// <param name="h0">[B, H] initial state.</param>
    /// <param name="lengths">per-sequence lengths in [0, T] (PyTorch's packed sequences: row b runs over steps 0..lengths[b]−1), or null for all T.
    /// A length of 0 (which pack_padded_sequence rejects) gives zero outputs and keeps h0.</param>
    /// <param name="reverse">run from the last real step down to step 0 (the backward direction of a bidirectional layer).</param>
    /// <remarks>
    /// Per step: gh = h·W_hhᵀ + b_hh (GEMM), then the fused gates of <see cref="Recurrent.GruForward"/>. The forward keeps every
    /// state and the gate activations; the backward runs through time explicitly (llm.c style): per step the fused gate
    /// backward and dh·W_hh, and at the end dW_hh = Σₜ dghₜᵀ·hₜ₋₁ as one GEMM over all steps.
    /// </remarks>
    public static RecurrenceResult GruRecurrence(Tensor inputGates, Tensor weightHh, Tensor? biasHh, Tensor h0, int[]? lengths = null, bool reverse = false)
    {
        var p = RecurrencePlan.Create("GruRecurrence", 3, inputGates, weightHh, biasHh, null, h0, null, lengths, reverse);
        int T = p.T, B = p.B, H = p.H, G = 3 * H, BH = B * H;
        var gx = inputGates.Contiguous(); var w = weightHh.Contiguous(); var bias = biasHh?.Contiguous(); var h0c = h0.Contiguous();
        bool grad = NeedsGradAny(gx, w, bias, h0c);
        // Every buffer is pooled (TensorScope.RentArray, like Tensor.Empty): a decoder runs this once per output step, and fresh
        // arrays made a Bahdanau training step allocate ~24 MiB. Each is fully written before it is read (the kernels write
        // inactive rows too), so the unspecified contents of a rented buffer never show.
        var states = TensorScope.RentArray((T + 1) * BH);   // row t + Off = the state before time t
        h0c.ContiguousSpan().CopyTo(states.AsSpan(p.InitRow * BH, BH));
        var saved = grad ? TensorScope.RentArray(T * B * Recurrent.GruSaved * H) : null;
        var result = Tensor.Empty(T * BH + BH);   // outputs in time order, then h_n
        var gh = TensorScope.RentArray(B * G);
        var lens = p.Lengths;
        for (int s = 0; s < T; s++)
        {
            int t = p.Time(s);
            var prev = states.AsSpan(p.PrevRow(t) * BH, BH); var next = states.AsSpan(p.NextRow(t) * BH, BH);
            HiddenProjection(prev, w, bias, gh, B, G, H);
            Recurrent.GruForward(gx.ContiguousSpan().Slice(t * B * G, B * G), gh, prev, next,
                saved == null ? default : saved.AsSpan(t * B * Recurrent.GruSaved * H, B * Recurrent.GruSaved * H), B, H, lens, t);
            Recurrent.CopyActive(next, result.Data.AsSpan(t * BH, BH), B, H, lens, t);
        }
        states.AsSpan(p.FinalRow * BH, BH).CopyTo(result.Data.AsSpan(T * BH, BH));
        if (grad)
        {
            var wd = w.Detach();
            result = Tensor.Record(result, "GruRecurrence", (g, sink) =>
            {
                var go = g.ContiguousSpan();
                var dgxT = Tensor.Empty(T, B, G); var dgx = dgxT.Data; var dgh = TensorScope.RentArray(T * B * G);
                var (dh, dhPrev) = GradientPair(go.Slice(T * BH, BH), B, BH, H, out var dhT);
                for (int s = T - 1; s >= 0; s--)
                {
                    int t = p.Time(s);
                    Recurrent.AddActive(go.Slice(t * BH, BH), dh, B, H, lens, t);
                    Recurrent.GruBackward(saved!.AsSpan(t * B * Recurrent.GruSaved * H, B * Recurrent.GruSaved * H), states.AsSpan(p.PrevRow(t) * BH, BH),
                        dh, dgx.AsSpan(t * B * G, B * G), dgh.AsSpan(t * B * G, B * G), dhPrev, B, H, lens, t);
                    // dh_{t-1} = z ⊙ dh + dgh·W_hh
                    Gemm.Sgemm(false, false, B, H, G, 1f, dgh.AsSpan(t * B * G, B * G), G, wd.ContiguousSpan(), H, 1f, dhPrev, H);
                    (dh, dhPrev) = (dhPrev, dh);
                }
                p.DeliverWeightGradients(sink, dgh, states, G, H);
                if (sink.Needs(0)) sink.Add(0, dgxT, owned: true);
                if (sink.Needs(3)) sink.Add(3, dhT(dh), owned: true);
            }, gx, w, bias, h0c);
        }
        return new RecurrenceResult(result.Slice(0, 0, T * BH).Reshape(T, B, H), result.Slice(0, T * BH, BH).Reshape(B, H), null);
    }

    /// <summary>
    /// The LSTM recurrence over a whole sequence, as one autograd op, from the input projection of every step
    /// (<paramref name="inputGates"/> [T, B, 4H] = x·W_ihᵀ + b_ih, time-major). With <paramref name="weightHr"/> (proj_size) the
    /// state is h = W_hr·(o ⊙ tanh c) of width H_out; otherwise H_out = H.
    /// </summary>
    /// <param name="inputGates">[T, B, 4H], gate blocks i, f, g, o.</param>
    /// <param name="weightHh">W_hh [4H, H_out].</param>
    /// <param name="biasHh">b_hh [4H] or null.</param>
    /// <param name="weightHr">W_hr [H_out, H] (PyTorch's weight_hr_l{k}) or null.</param>
    /// <param name="h0">[B, H_out] initial state.</param>
    /// <param name="c0">[B, H] initial cell.</param>
    /// <param name="lengths">per-sequence lengths as in <see cref="GruRecurrence"/>, or null.</param>
    /// <param name="reverse">run backwards in time.</param>
    /// <remarks>
    /// Saved for the backward: every h and c, the gate activations and tanh c′ (and o ⊙ tanh c′ with a projection).
    /// The backward per step: dm = dh (or dh·W_hr), the fused gate backward, dh·W_hh; at the end dW_hh and dW_hr as one GEMM each.
    /// </remarks>
    public static RecurrenceResult LstmRecurrence(Tensor inputGates, Tensor weightHh, Tensor? biasHh, Tensor? weightHr, Tensor h0, Tensor c0,
        int[]? lengths = null, bool reverse = false)
    {
        var p = RecurrencePlan.Create("LstmRecurrence", 4, inputGates, weightHh, biasHh, weightHr, h0, c0, lengths, reverse);
        int T = p.T, B = p.B, H = p.H, HO = p.HOut, G = 4 * H, BH = B * H, BO = B * HO, S = Recurrent.LstmSaved * H;
        var gx = inputGates.Contiguous(); var w = weightHh.Contiguous(); var bias = biasHh?.Contiguous();
        var wr = weightHr?.Contiguous(); var h0c = h0.Contiguous(); var c0c = c0.Contiguous();
        bool grad = NeedsGradAny(gx, w, bias, wr, h0c, c0c);
        // Pooled buffers, fully written before they are read, as in GruRecurrence.
        var hs = TensorScope.RentArray((T + 1) * BO); var cs = TensorScope.RentArray((T + 1) * BH);   // row t + Off = state before time t
        h0c.ContiguousSpan().CopyTo(hs.AsSpan(p.InitRow * BO, BO));
        c0c.ContiguousSpan().CopyTo(cs.AsSpan(p.InitRow * BH, BH));
        var saved = grad ? TensorScope.RentArray(T * B * S) : null;
        var ms = wr != null ? TensorScope.RentArray(T * BH) : null;   // o ⊙ tanh c′ per time step, the projection's input
        var result = Tensor.Empty(T * BO + BO + BH);   // outputs in time order, then h_n, then c_n
        var gh = TensorScope.RentArray(B * G);
        var lens = p.Lengths;
        for (int s = 0; s < T; s++)
        {
            int t = p.Time(s);
            var hPrev = hs.AsSpan(p.PrevRow(t) * BO, BO); var hNext = hs.AsSpan(p.NextRow(t) * BO, BO);
            HiddenProjection(hPrev, w, bias, gh, B, G, HO);
            var m = ms == null ? hNext : ms.AsSpan(t * BH, BH);
            Recurrent.LstmForward(gx.ContiguousSpan().Slice(t * B * G, B * G), gh, cs.AsSpan(p.PrevRow(t) * BH, BH), cs.AsSpan(p.NextRow(t) * BH, BH),
                m, saved == null ? default : saved.AsSpan(t * B * S, B * S), B, H, lens, t);
            if (wr != null) Gemm.Sgemm(false, true, B, HO, H, 1f, m, H, wr.ContiguousSpan(), H, 0f, hNext, HO);
            CarryInactive(hPrev, hNext, B, HO, lens, t);
            Recurrent.CopyActive(hNext, result.Data.AsSpan(t * BO, BO), B, HO, lens, t);
        }
        hs.AsSpan(p.FinalRow * BO, BO).CopyTo(result.Data.AsSpan(T * BO, BO));
        cs.AsSpan(p.FinalRow * BH, BH).CopyTo(result.Data.AsSpan(T * BO + BO, BH));
        if (grad)
        {
            var wd = w.Detach(); var wrd = wr?.Detach();
            result = Tensor.Record(result, "LstmRecurrence", (g, sink) =>
            {
                var go = g.ContiguousSpan();
                var dgT = Tensor.Empty(T, B, G); var dg = dgT.Data;
                var dhs = wrd != null ? TensorScope.RentArray(T * BO) : null;   // dL/dh per step, for dW_hr (every row written: CopyActive clears)
                var (dh, dhPrev) = GradientPair(go.Slice(T * BO, BO), B, BO, HO, out var dhT);
                var dcT = Tensor.Empty(B, H); var dc = dcT.Data; go.Slice(T * BO + BO, BH).CopyTo(dc);
                var dm = wrd != null ? TensorScope.RentArray(BH) : null;
                for (int s = T - 1; s >= 0; s--)
                {
                    int t = p.Time(s);
                    Recurrent.AddActive(go.Slice(t * BO, BO), dh, B, HO, lens, t);
                    if (wrd != null)
                    {
                        Recurrent.CopyActive(dh, dhs!.AsSpan(t * BO, BO), B, HO, lens, t);
                        Gemm.Sgemm(false, false, B, H, HO, 1f, dh, HO, wrd.ContiguousSpan(), H, 0f, dm, H);
                    }
                    var dgt = dg.AsSpan(t * B * G, B * G);
                    Recurrent.LstmBackward(saved!.AsSpan(t * B * S, B * S), cs.AsSpan(p.PrevRow(t) * BH, BH), dm ?? dh, dc, dgt, B, H, lens, t);
                    // dh_{t-1} = dg·W_hh (active rows) or dh (rows that skip this step)
                    Recurrent.CopyInactive(dh, dhPrev, B, HO, lens, t);
                    Gemm.Sgemm(false, false, B, HO, G, 1f, dgt, G, wd.ContiguousSpan(), HO, 1f, dhPrev, HO);
                    (dh, dhPrev) = (dhPrev, dh);
                }
                p.DeliverWeightGradients(sink, dg, hs, G, HO);
                if (wrd != null && sink.Needs(3))   // dW_hr [HO, H] = Σₜ dhₜᵀ·mₜ
                {
                    var dwr = sink.Target(3, out float beta);
                    Gemm.Sgemm(true, false, HO, H, T * B, 1f, dhs, HO, ms, H, beta, dwr, H);
                }
                if (sink.Needs(0)) sink.Add(0, dgT, owned: true);
                if (sink.Needs(4)) sink.Add(4, dhT(dh), owned: true);
                if (sink.Needs(5)) sink.Add(5, dcT, owned: true);
            }, gx, w, bias, wr, h0c, c0c);
        }
        return new RecurrenceResult(result.Slice(0, 0, T * BO).Reshape(T, B, HO), result.Slice(0, T * BO, BO).Reshape(B, HO),
            result.Slice(0, T * BO + BO, BH).Reshape(B, H));
    }

    // The two state-gradient buffers a backward through time swaps every step (dh, then dh_{t−1} written over the other), as
    // pooled tensors [B, width]: dh starts as the gradient reaching the last state. owner(dh) is the tensor over whichever
    // buffer ends up holding dL/dh0.
    static (float[] Dh, float[] DhPrev) GradientPair(ReadOnlySpan<float> last, int batch, int size, int width, out Func<float[], Tensor> owner)
    {
        var a = Tensor.Empty(batch, width); var b = Tensor.Empty(batch, width);
        last.CopyTo(a.Data.AsSpan(0, size));
        owner = d => ReferenceEquals(d, a.Data) ? a : b;
        return (a.Data, b.Data);
    }

    // gh [B, G] = h·W_hhᵀ + b_hh
    static void HiddenProjection(ReadOnlySpan<float> h, Tensor w, Tensor? bias, Span<float> gh, int batch, int gates, int width)
    {
        Gemm.Sgemm(false, true, batch, gates, width, 1f, h, width, w.ContiguousSpan(), width, 0f, gh, gates);
        if (bias != null) Elementwise.AddBias(gh, bias.ContiguousSpan(), batch, gates);
    }

    // Rows that skip a step keep their state (with a projection the GEMM wrote something there).
    static void CarryInactive(ReadOnlySpan<float> prev, Span<float> next, int batch, int width, ReadOnlySpan<int> lengths, int time)
    {
        if (lengths.IsEmpty) return;
        for (int b = 0; b < batch; b++)
            if (!Recurrent.IsActive(lengths, b, time)) prev.Slice(b * width, width).CopyTo(next.Slice(b * width, width));
    }

    /// <summary>
    /// Bahdanau's additive attention for one decoder step as one autograd op (<see cref="AdditiveAttention"/>):
    /// scoresⱼ = vᵀ tanh(keysⱼ + query) + b_v, weights = softmax(scores + mask), context = Σⱼ weightsⱼ valuesⱼ.
    /// </summary>
    /// <param name="keys">[B, S, U] the query-independent half W1·h + b1 (computed once per source).</param>
    /// <param name="query">[B, U] W2·s + b2.</param>
    /// <param name="v">the score vector, U elements (a Linear(U → 1) weight [1, U]).</param>
    /// <param name="vBias">its bias (1 element) or null.</param>
    /// <param name="values">[B, S, Dv] the encoder states.</param>
    /// <param name="sourceMask">additive [B, S] mask (0 keeps, <see cref="MaskedValue"/> drops) or null.</param>
    /// <remarks>All three outputs are differentiable: they are views of one result, so gradients reaching the weights or raw scores flow back too.</remarks>
    public static AdditiveAttentionResult AdditiveAttention(Tensor keys, Tensor query, Tensor v, Tensor? vBias, Tensor values, Tensor? sourceMask)
    {
        if (keys.Rank != 3 || values.Rank != 3 || query.Rank != 2 || keys.Dim(0) != query.Dim(0) || keys.Dim(2) != query.Dim(1)
            || values.Dim(0) != keys.Dim(0) || values.Dim(1) != keys.Dim(1) || v.Size != keys.Dim(2) || vBias != null && vBias.Size != 1)
            throw new ShapeMismatchException($"AdditiveAttention: keys must be [B, S, U], query [B, U], v U elements, values [B, S, Dv]; got keys {Tensor.FormatShape(keys.Shape)}, query {Tensor.FormatShape(query.Shape)}, v {Tensor.FormatShape(v.Shape)}, values {Tensor.FormatShape(values.Shape)}.");
        int B = keys.Dim(0), S = keys.Dim(1), U = keys.Dim(2), D = values.Dim(2);
        if (sourceMask != null && sourceMask.Size != B * S)
            throw ShapeMismatchException.For("AdditiveAttention", keys.Shape, sourceMask.Shape, $"the source mask must be [{B}, {S}]");
        var k = keys.Contiguous(); var q = query.Contiguous(); var vc = v.Contiguous(); var bc = vBias?.Contiguous(); var val = values.Contiguous();
        float bias = bc == null ? 0f : bc.ContiguousSpan()[0];
        var mask = sourceMask?.Contiguous();
        bool grad = NeedsGradAny(k, q, vc, bc, val);
        var hidden = TensorScope.RentArray(B * S * U);
        var result = Tensor.Empty(B * D + 2 * B * S);   // context, then weights, then scores
        var r = result.Data.AsSpan();
        Kernels.AdditiveAttention.Forward(k.ContiguousSpan(), q.ContiguousSpan(), vc.ContiguousSpan(), bias, val.ContiguousSpan(),
            mask == null ? default : mask.ContiguousSpan(), hidden, r.Slice(B * D + B * S, B * S), r.Slice(B * D, B * S), r[..(B * D)], B, S, U, D);
        if (grad)
        {
            var weights = result.Data; var vd = vc.Detach(); var vald = val.Detach();
            result = Tensor.Record(result, "AdditiveAttention", (g, sink) =>
            {
                var go = g.ContiguousSpan();
                Kernels.AdditiveAttention.Backward(hidden, vd.ContiguousSpan(), vald.ContiguousSpan(), weights.AsSpan(B * D, B * S),
                    go[..(B * D)], go.Slice(B * D, B * S), go.Slice(B * D + B * S, B * S),
                    sink.Needs(0) ? sink.TargetZeroed(0) : default, sink.Needs(1) ? sink.TargetZeroed(1) : default,
                    sink.Needs(2) ? sink.TargetZeroed(2) : default, sink.Needs(3) ? sink.TargetZeroed(3) : default,
                    sink.Needs(4) ? sink.TargetZeroed(4) : default, B, S, U, D);
            }, k, q, vc, bc, val);
        }
        return new AdditiveAttentionResult(result.Slice(0, 0, B * D).Reshape(B, D), result.Slice(0, B * D, B * S).Reshape(B, S),
            result.Slice(0, B * D + B * S, B * S).Reshape(B, S));
    }

    static bool NeedsGradAny(params Tensor?[] tensors)
    {
        foreach (var t in tensors) if (t != null && Tensor.NeedsGrad(t)) return true;
        return false;
    }

    /// <summary>Sizes, step order and state rows of one recurrence; checks every shape against the PyTorch layout.</summary>
    /// <remarks>
    /// States are stored by time: row t + Off holds the state before time t, so rows Off..Off+T−1 line up with the steps'
    /// gate gradients for one GEMM (forward: Off = 0, initial row 0, final row T; reverse: Off = 1, initial row T, final row 0).
    /// </remarks>
    sealed class RecurrencePlan
    {
        public int T, B, H, HOut, Off;
        public bool Reverse;
        public int[]? Lengths;

        public int Time(int step) => Reverse ? T - 1 - step : step;
        public int PrevRow(int t) => t + Off;
        public int NextRow(int t) => Reverse ? t : t + 1;
        public int InitRow => Reverse ? T : 0;
        public int FinalRow => Reverse ? 0 : T;

        public static RecurrencePlan Create(string op, int gates, Tensor x, Tensor w, Tensor? bias, Tensor? wr, Tensor h0, Tensor? c0, int[]? lengths, bool reverse)
        {
            if (x.Rank != 3) throw new ShapeMismatchException($"{op}: input gates must be [time, batch, {gates}·hidden]; got {Tensor.FormatShape(x.Shape)}.");
            if (w.Rank != 2 || w.Dim(0) % gates != 0 || w.Dim(0) == 0)
                throw new ShapeMismatchException($"{op}: weight_hh must be [{gates}·hidden, state]; got {Tensor.FormatShape(w.Shape)}.");
            int T = x.Dim(0), B = x.Dim(1), H = w.Dim(0) / gates, HOut = w.Dim(1);
            if (x.Dim(2) != gates * H) throw ShapeMismatchException.For(op, x.Shape, w.Shape, $"the input gates' last dimension must be {gates}·{H} like weight_hh's rows");
            if (bias != null && (bias.Rank != 1 || bias.Dim(0) != gates * H)) throw ShapeMismatchException.For(op, w.Shape, bias.Shape, $"bias_hh must be [{gates * H}]");
            if (wr == null && HOut != H) throw ShapeMismatchException.For(op, w.Shape, w.Shape, $"weight_hh must be [{gates * H}, {H}] without a projection");
            if (wr != null && (wr.Rank != 2 || wr.Dim(0) != HOut || wr.Dim(1) != H))
                throw ShapeMismatchException.For(op, w.Shape, wr.Shape, $"weight_hr must be [{HOut}, {H}] (proj_size, hidden_size)");
            if (h0.Rank != 2 || h0.Dim(0) != B || h0.Dim(1) != HOut) throw ShapeMismatchException.For(op, x.Shape, h0.Shape, $"the initial state must be [{B}, {HOut}]");
            if (c0 != null && (c0.Rank != 2 || c0.Dim(0) != B || c0.Dim(1) != H)) throw ShapeMismatchException.For(op, x.Shape, c0.Shape, $"the initial cell must be [{B}, {H}]");
            if (lengths != null)
            {
                if (lengths.Length != B) throw new ArgumentException($"{op}: {lengths.Length} lengths for a batch of {B}.", nameof(lengths));
                for (int b = 0; b < B; b++)
                    if ((uint)lengths[b] > (uint)T) throw new ArgumentOutOfRangeException(nameof(lengths), $"{op}: lengths[{b}] = {lengths[b]} is outside [0, {T}] (the padded sequence length).");
            }
            return new RecurrencePlan { T = T, B = B, H = H, HOut = HOut, Off = reverse ? 1 : 0, Reverse = reverse, Lengths = lengths == null ? null : (int[])lengths.Clone() };
        }

        /// <summary>dW_hh [G, width] = Σₜ dghₜᵀ·hₜ₋₁ (one GEMM over all steps) into input 1, db_hh = Σ dgh into input 2.</summary>
        public void DeliverWeightGradients(GradSink sink, float[] dgh, float[] states, int g, int width)
        {
            if (sink.Needs(1))
            {
                var dw = sink.Target(1, out float beta);
                Gemm.Sgemm(true, false, g, width, T * B, 1f, dgh, g, states.AsSpan(Off * B * width, T * B * width), width, beta, dw, width);
            }
            if (sink.Needs(2)) Elementwise.BiasGradient(dgh, sink.TargetZeroed(2), T * B, g);
        }
    }
}
