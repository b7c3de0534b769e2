using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>
/// What a decoder gives the beam search: one step for N rows (each row one hypothesis), and a way to rearrange its state when
/// the search keeps, drops or duplicates rows. The RNN decoder and a Transformer decoder both fit: the state is whatever the
/// decoder needs to continue (an RNN state plus the encoded source rows, or the cached keys/values of earlier steps).
/// </summary>
/// <typeparam name="TState">the decoder's state for N rows.</typeparam>
public interface IBeamDecoder<TState>
{
    /// <summary>Reads the last token of every row and returns the next-token logits [N, V], the new state and, if the decoder has one, its attention over the source [N, S].</summary>
    BeamDecoderStep<TState> Step(TState state, int[] lastTokens);

    /// <summary>The state of rows <paramref name="rows"/> of <paramref name="state"/>, in that order (repeats allowed).</summary>
    TState Reorder(TState state, int[] rows);
}

/// <summary>One decoder step: logits [N, V], the state after the step, attention [N, S] (null when the decoder has none).</summary>
public sealed record BeamDecoderStep<TState>(Tensor Logits, TState State, Tensor? Attention);

/// <summary>Settings of <see cref="BeamSearch"/>.</summary>
/// <param name="BeamWidth">K live hypotheses kept per source.</param>
/// <param name="MaxSteps">generated tokens at most (EOS included).</param>
/// <param name="Alpha">length normalisation: score = logp / length^α (length counts EOS, not BOS).</param>
/// <param name="BosId">the first decoder input.</param>
/// <param name="EosId">ends a hypothesis.</param>
/// <param name="NBest">hypotheses returned per source, best first.</param>
/// <param name="StopEarly">
/// stop a source once no live hypothesis can still beat its n-th best finished one. Exact: log-probabilities only fall, so a
/// live hypothesis can at best reach logp / MaxSteps^α; the results equal those of running all steps. Off: exactly MaxSteps
/// steps, every hypothesis recorded (as the PyTorch fixture does).
/// </param>
/// <param name="RecordSteps">keep the live and newly finished hypotheses after every step.</param>
public sealed record BeamSearchOptions(int BeamWidth, int MaxSteps, double Alpha, int BosId, int EosId, int NBest = 1, bool StopEarly = true,
    bool RecordSteps = false);

/// <summary>A hypothesis: generated tokens (EOS last when finished), its log-probability (float32 terms summed in float64), normalised score, the step that produced its last token and the attention rows of its steps (null without attention).</summary>
public sealed record BeamHypothesis(int[] Tokens, double LogP, double Score, bool Finished, int Step, float[][]? Attention)
{
    public int Length => Tokens.Length;
}

/// <summary>The live hypotheses after a step and the ones that finished in it.</summary>
public sealed record BeamStepRecord(int Step, IReadOnlyList<BeamHypothesis> Live, IReadOnlyList<BeamHypothesis> Finished);

/// <summary>
/// The search of one source: the best hypothesis, the n-best (best first), every finished hypothesis in the order found, the
/// live hypotheses when the search stopped, and (when recorded) each step.
/// </summary>
public sealed record BeamSearchResult(BeamHypothesis Best, IReadOnlyList<BeamHypothesis> NBest, IReadOnlyList<BeamHypothesis> Finished,
    IReadOnlyList<BeamHypothesis> LiveAtEnd, IReadOnlyList<BeamStepRecord>? Steps, int StepsRun);

/// <summary>
/// Batched beam search with length normalisation. Per step every live hypothesis b and token v gives the candidate
/// logp_b + log_softmax(logits_b)[v]; the candidates of a source are ranked by score (ties: lower b, then lower v) and walked:
/// EOS moves the candidate to the finished list, any other token becomes a live hypothesis, until K are live. At the end the
/// pool is the finished hypotheses (in the order found) followed by the live ones; each is scored logp / length^α and the
/// best is the highest (ties: earlier in the pool). Every token may be generated; no token is suppressed. All sources share
/// the decoder calls: the rows of one call are the live hypotheses of every source still searching.
/// </summary>
public static class BeamSearch
{
    sealed class Node(Node? parent, int token, double logP, float[]? attention, int step)
    {
        public readonly Node? Parent = parent;
        public readonly int Token = token;
        public readonly double LogP = logP;
        public readonly float[]? Attention = attention;
        public readonly int Step = step;
    }

    /// <summary>
    /// Runs the search for <paramref name="batch"/> sources; <paramref name="initial"/> holds one row per source (row i = source i).
    /// </summary>
    public static BeamSearchResult[] Run<TState>(IBeamDecoder<TState> decoder, TState initial, int batch, BeamSearchOptions options)
    {
        ArgumentNullException.ThrowIfNull(decoder); ArgumentNullException.ThrowIfNull(options);
        if (options.BeamWidth < 1) throw new ArgumentOutOfRangeException(nameof(options), options.BeamWidth, "Beam search needs a beam width of at least 1.");
        if (options.MaxSteps < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxSteps, "Beam search needs at least one step.");
        if (options.NBest < 1) throw new ArgumentOutOfRangeException(nameof(options), options.NBest, "Beam search returns at least one hypothesis (NBest ≥ 1).");
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "Beam search needs at least one source.");
        int K = options.BeamWidth;

        var live = new List<Node>[batch];
        var finished = new List<Node>[batch];
        var steps = options.RecordSteps ? Enumerable.Range(0, batch).Select(_ => new List<BeamStepRecord>()).ToArray() : null;
        var stepsRun = new int[batch];
        var active = new bool[batch];
        for (int s = 0; s < batch; s++) { live[s] = [new Node(null, options.BosId, 0, null, 0)]; finished[s] = []; active[s] = true; }

        // Rows of the current decoder state: (source, index into live[source]).
        var rowSource = Enumerable.Range(0, batch).ToArray();
        var state = initial;
        using var noGrad = Autograd.NoGrad();
        for (int step = 1; step <= options.MaxSteps && rowSource.Length > 0; step++)
        {
            var last = new int[rowSource.Length];
            {
                var seen = new int[batch];
                for (int r = 0; r < rowSource.Length; r++) last[r] = live[rowSource[r]][seen[rowSource[r]]++].Token;
            }
            var output = decoder.Step(state, last);
            if (output.Logits.Rank != 2 || output.Logits.Shape[0] != rowSource.Length)
                throw new ShapeMismatchException($"BeamSearch: the decoder returned logits {Tensor.FormatShape(output.Logits.Shape)} for {rowSource.Length} rows; expected [rows, vocab].");
            int V = output.Logits.Shape[1];
            // log_softmax in float32 (as the decoder's own arithmetic), sums in float64.
            var logProbs = Functional.LogSoftmax(output.Logits, -1).ToArray();
            var attention = output.Attention?.ToArray();
            int S = output.Attention == null ? 0 : output.Attention.Shape[1];

            var keepRows = new List<int>();
            var nextRowSource = new List<int>();
            int rowStart = 0;
            while (rowStart < rowSource.Length)
            {
                int src = rowSource[rowStart];
                int n = live[src].Count;
                var candidates = new (double Score, int Beam, int Token)[n * V];
                for (int b = 0; b < n; b++)
                    for (int v = 0; v < V; v++)
                        candidates[b * V + v] = (live[src][b].LogP + logProbs[(rowStart + b) * V + v], b, v);
                Array.Sort(candidates, static (x, y) => y.Score != x.Score ? y.Score.CompareTo(x.Score) : x.Beam != y.Beam ? x.Beam.CompareTo(y.Beam) : x.Token.CompareTo(y.Token));
                var nextLive = new List<Node>(K);
                var newlyFinished = new List<Node>();
                foreach (var (score, b, v) in candidates)
                {
                    float[]? att = attention == null ? null : attention.AsSpan((rowStart + b) * S, S).ToArray();
                    var node = new Node(live[src][b], v, score, att, step);
                    if (v == options.EosId) { finished[src].Add(node); newlyFinished.Add(node); continue; }
                    nextLive.Add(node); keepRows.Add(rowStart + b); nextRowSource.Add(src);
                    if (nextLive.Count == K) break;
                }
                live[src] = nextLive;
                stepsRun[src] = step;
                steps?[src].Add(new BeamStepRecord(step, nextLive.Select(x => Materialise(x, false, options.Alpha)).ToArray(),
                    newlyFinished.Select(x => Materialise(x, true, options.Alpha)).ToArray()));
                if (options.StopEarly && CannotImprove(finished[src], nextLive, options))
                {
                    // Drop this source's rows: nothing it could still find would enter its n-best.
                    int drop = nextLive.Count;
                    keepRows.RemoveRange(keepRows.Count - drop, drop); nextRowSource.RemoveRange(nextRowSource.Count - drop, drop);
                    active[src] = false;
                }
                rowStart += n;
            }
            rowSource = [.. nextRowSource];
            if (keepRows.Count > 0) state = decoder.Reorder(output.State, [.. keepRows]);
        }

        var results = new BeamSearchResult[batch];
        for (int s = 0; s < batch; s++)
        {
            var fin = finished[s].Select(x => Materialise(x, true, options.Alpha)).ToArray();
            var liveEnd = live[s].Select(x => Materialise(x, false, options.Alpha)).ToArray();
            var pool = fin.Concat(liveEnd).ToArray();
            // OrderByDescending is a stable sort: equal scores keep pool order (earlier wins).
            var ranked = pool.OrderByDescending(h => h.Score).Take(options.NBest).ToArray();
            results[s] = new BeamSearchResult(ranked[0], ranked, fin, liveEnd, steps?[s], stepsRun[s]);
        }
        return results;
    }

    /// <summary>logp / length^α (α = 0: the plain log-probability).</summary>
    public static double NormalisedScore(double logP, int length, double alpha) => alpha == 0 ? logP : logP / Math.Pow(length, alpha);

    static bool CannotImprove(List<Node> finished, List<Node> live, BeamSearchOptions o)
    {
        if (live.Count == 0) return true;
        if (finished.Count < o.NBest || o.Alpha < 0) return false;   // α < 0 rewards length: no bound, run all steps
        var nth = finished.Select(f => NormalisedScore(f.LogP, f.Step, o.Alpha)).OrderByDescending(x => x).ElementAt(o.NBest - 1);
        // A live hypothesis ends with logp' ≤ logp < 0 and length L ≤ MaxSteps, so its score is at most logp / MaxSteps^α.
        double bestPossible = live.Max(l => NormalisedScore(l.LogP, o.MaxSteps, o.Alpha));
        return nth >= bestPossible;
    }

    static BeamHypothesis Materialise(Node node, bool isFinished, double alpha)
    {
        var chain = new List<Node>();
        for (var n = node; n.Parent != null; n = n.Parent) chain.Add(n);
        chain.Reverse();
        var tokens = chain.Select(n => n.Token).ToArray();
        float[][]? att = chain.Count > 0 && chain[0].Attention != null ? chain.Select(n => n.Attention!).ToArray() : null;
        return new BeamHypothesis(tokens, node.LogP, NormalisedScore(node.LogP, tokens.Length, alpha), isFinished, node.Step, att);
    }
}
