using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>A recurrent layer's shape, with torch.nn.GRU / torch.nn.LSTM's constructor arguments (no dropout between layers).</summary>
/// <param name="InputSize">features of the input (input_size).</param>
/// <param name="HiddenSize">units per direction (hidden_size).</param>
/// <param name="NumLayers">stacked layers; layer k &gt; 0 reads the concatenated [forward; reverse] outputs of layer k − 1.</param>
/// <param name="Bidirectional">a second direction per layer running backwards in time (parameters suffixed <c>_reverse</c>).</param>
/// <param name="BatchFirst">input and output are [B, T, ·] instead of [T, B, ·] (h0/h_n are [layers·directions, B, ·] either way).</param>
/// <param name="Bias">bias_ih and bias_hh exist.</param>
/// <param name="ProjSize">LSTM only: project the state to this width with weight_hr (0 = none).</param>
public sealed record RecurrentOptions(int InputSize, int HiddenSize, int NumLayers = 1, bool Bidirectional = false,
    bool BatchFirst = false, bool Bias = true, int ProjSize = 0)
{
    /// <summary>1 or 2.</summary>
    public int Directions => Bidirectional ? 2 : 1;

    /// <summary>Width of the state and of each direction's output: proj_size when set, else hidden_size.</summary>
    public int StateSize => ProjSize > 0 ? ProjSize : HiddenSize;
}

/// <summary>Output of <see cref="Gru.Forward"/> / <see cref="Lstm.Forward"/>, laid out as PyTorch's.</summary>
/// <param name="Output">[B, T, D·H_out] (batch_first) or [T, B, D·H_out]: the last layer's states, forward direction first; 0 past each length.</param>
/// <param name="HN">[layers·D, B, H_out], row layer·D + direction: each sequence's state after its last real step (reverse: after step 0).</param>
/// <param name="CN">LSTM: [layers·D, B, H] final cell states likewise; null for a GRU.</param>
public sealed record RecurrentOutput(Tensor Output, Tensor HN, Tensor? CN);

/// <summary>The parameters of one direction of one layer (or of a cell), under PyTorch's names.</summary>
public sealed record RecurrentWeights(Parameter WeightIh, Parameter WeightHh, Parameter? BiasIh, Parameter? BiasHh, Parameter? WeightHr);

/// <summary>Base of the recurrent layers and cells: PyTorch's parameter names and init.</summary>
public abstract class RecurrentModule : Module
{
    /// <summary>
    /// Registers weight_ih{suffix} [G·H, input], weight_hh{suffix} [G·H, state], bias_ih/bias_hh{suffix} [G·H] and, with a
    /// projection, weight_hr{suffix} [state, H] — in PyTorch's state-dict order, each U(±1/√H) when the builder lacks it.
    /// </summary>
    private protected RecurrentWeights RegisterWeights(VarBuilder vb, string suffix, int gates, int input, int hidden, int state, bool bias, bool projection)
    {
        var init = WeightInit.Uniform(1.0 / Math.Sqrt(hidden));
        Parameter Get(string name, params int[] shape) => RegisterParameter(name + suffix, vb.Get(name + suffix, shape, init));
        var ih = Get("weight_ih", gates * hidden, input);
        var hh = Get("weight_hh", gates * hidden, state);
        var bih = bias ? Get("bias_ih", gates * hidden) : null;
        var bhh = bias ? Get("bias_hh", gates * hidden) : null;
        var hr = projection ? Get("weight_hr", state, hidden) : null;
        return new RecurrentWeights(ih, hh, bih, bhh, hr);
    }

    private protected static void CheckSizes(string module, int input, int hidden)
    {
        if (input <= 0 || hidden <= 0) throw new ArgumentOutOfRangeException(nameof(input), $"{module}(input_size={input}, hidden_size={hidden}): sizes must be positive.");
    }
}

/// <summary>
/// A multi-layer, optionally bidirectional GRU or LSTM with torch.nn.GRU / torch.nn.LSTM's parameters, layouts and packed-sequence
/// semantics. Per layer and direction the input projection of every time step is one GEMM (<see cref="Functional.Linear"/>)
/// and the recurrence is one autograd op (<see cref="Functional.GruRecurrence"/> / <see cref="Functional.LstmRecurrence"/>).
/// </summary>
public abstract class RecurrentLayer : RecurrentModule
{
    readonly RecurrentWeights[] _weights;
    readonly int _gates;

    private protected RecurrentLayer(VarBuilder vb, RecurrentOptions options, int gates, string module)
    {
        ArgumentNullException.ThrowIfNull(options);
        CheckSizes(module, options.InputSize, options.HiddenSize);
        if (options.NumLayers <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.NumLayers, $"{module}: num_layers must be positive.");
        if (options.ProjSize < 0 || options.ProjSize >= options.HiddenSize && options.ProjSize != 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.ProjSize, $"{module}: proj_size must be in [0, hidden_size) as in PyTorch.");
        Options = options; _gates = gates;
        int D = options.Directions;
        _weights = new RecurrentWeights[options.NumLayers * D];
        for (int k = 0; k < options.NumLayers; k++)
            for (int d = 0; d < D; d++)
                _weights[k * D + d] = RegisterWeights(vb, $"_l{k}" + (d == 1 ? "_reverse" : ""), gates,
                    k == 0 ? options.InputSize : D * options.StateSize, options.HiddenSize, options.StateSize, options.Bias, options.ProjSize > 0);
    }

    public RecurrentOptions Options { get; }

    /// <summary>Layer <paramref name="layer"/>'s weights in direction <paramref name="direction"/> (0 forward, 1 reverse).</summary>
    public RecurrentWeights Weights(int layer, int direction) => _weights[layer * Options.Directions + direction];

    private protected RecurrentOutput Run(Tensor input, Tensor? h0, Tensor? c0, int[]? lengths, string module)
    {
        var o = Options;
        if (input.Rank != 3 || input.Dim(2) != o.InputSize)
            throw new ShapeMismatchException($"{module}: input must be {(o.BatchFirst ? "[batch, time" : "[time, batch")}, {o.InputSize}]; got {Tensor.FormatShape(input.Shape)}.");
        var x = o.BatchFirst ? input.Transpose(0, 1) : input;   // time-major from here on
        int B = x.Dim(1), D = o.Directions, rows = o.NumLayers * D, HO = o.StateSize, H = o.HiddenSize;
        CheckState(module, "h0", h0, rows, B, HO);
        CheckState(module, "c0", c0, rows, B, H);
        bool lstm = _gates == 4;
        var hN = new List<Tensor>(rows); var cN = new List<Tensor>(rows);
        for (int k = 0; k < o.NumLayers; k++)
        {
            var outs = new Tensor[D];
            for (int d = 0; d < D; d++)
            {
                int row = k * D + d;
                var w = _weights[row];
                var gates = Functional.Linear(x, w.WeightIh.Value, w.BiasIh?.Value);   // [T, B, G·H] for every step at once
                var h = h0?.Select(0, row) ?? Tensor.Zeros(B, HO);
                var r = lstm
                    ? Functional.LstmRecurrence(gates, w.WeightHh.Value, w.BiasHh?.Value, w.WeightHr?.Value, h, c0?.Select(0, row) ?? Tensor.Zeros(B, H), lengths, reverse: d == 1)
                    : Functional.GruRecurrence(gates, w.WeightHh.Value, w.BiasHh?.Value, h, lengths, reverse: d == 1);
                outs[d] = r.Output; hN.Add(r.LastHidden);
                if (r.LastCell != null) cN.Add(r.LastCell);
            }
            x = D == 1 ? outs[0] : Tensor.Concat(outs, -1);
        }
        var output = o.BatchFirst ? x.Transpose(0, 1).Contiguous() : x;
        Forwarded(output);
        return new RecurrentOutput(output, Tensor.Stack(hN, 0), lstm ? Tensor.Stack(cN, 0) : null);
    }

    static void CheckState(string module, string name, Tensor? s, int rows, int batch, int width)
    {
        if (s != null && (s.Rank != 3 || s.Dim(0) != rows || s.Dim(1) != batch || s.Dim(2) != width))
            throw new ShapeMismatchException($"{module}: {name} must be [num_layers·directions = {rows}, batch = {batch}, {width}]; got {Tensor.FormatShape(s.Shape)}.");
    }
}

/// <summary>torch.nn.GRU: gates r, z, n with n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h′ = (1 − z) ⊙ n + z ⊙ h.</summary>
public sealed class Gru : RecurrentLayer
{
    /// <summary>Parameters from <paramref name="vb"/> under torch's names (weight_ih_l0, bias_hh_l1_reverse, …), else U(±1/√hidden_size).</summary>
    public Gru(VarBuilder vb, RecurrentOptions options) : base(vb, Check(options), 3, "GRU") { }

    /// <summary>A freshly initialised GRU (torch's default init, seeded).</summary>
    public Gru(RecurrentOptions options, int seed = 0) : this(VarBuilder.Fresh(seed), options) { }

    static RecurrentOptions Check(RecurrentOptions o) =>
        o?.ProjSize > 0 ? throw new ArgumentException("GRU has no proj_size (PyTorch supports it only for LSTM).", nameof(o)) : o!;

    /// <summary>Runs the GRU over <paramref name="input"/> ([B, T, I] or [T, B, I]).</summary>
    /// <param name="input">the sequence batch; positions past a sequence's length may hold anything (they get gradient 0).</param>
    /// <param name="h0">[layers·D, B, H] initial states, or null for zeros.</param>
    /// <param name="lengths">per-sequence lengths (as pack_padded_sequence with enforce_sorted=False), or null when all are T.</param>
    public RecurrentOutput Forward(Tensor input, Tensor? h0 = null, int[]? lengths = null) => Run(input, h0, null, lengths, "GRU");
}

/// <summary>torch.nn.LSTM: gates i, f, g, o; c′ = f ⊙ c + i ⊙ g, h′ = o ⊙ tanh(c′) (times W_hr with proj_size).</summary>
public sealed class Lstm : RecurrentLayer
{
    /// <summary>Parameters from <paramref name="vb"/> under torch's names (weight_ih_l0, …, weight_hr_l0 with proj_size), else U(±1/√hidden_size).</summary>
    public Lstm(VarBuilder vb, RecurrentOptions options) : base(vb, options, 4, "LSTM") { }

    /// <summary>A freshly initialised LSTM (torch's default init, seeded).</summary>
    public Lstm(RecurrentOptions options, int seed = 0) : this(VarBuilder.Fresh(seed), options) { }

    /// <summary>Runs the LSTM over <paramref name="input"/> ([B, T, I] or [T, B, I]).</summary>
    /// <param name="input">the sequence batch.</param>
    /// <param name="h0">[layers·D, B, H_out] initial states, or null for zeros.</param>
    /// <param name="c0">[layers·D, B, H] initial cells, or null for zeros.</param>
    /// <param name="lengths">per-sequence lengths (packed-sequence semantics), or null.</param>
    public RecurrentOutput Forward(Tensor input, Tensor? h0 = null, Tensor? c0 = null, int[]? lengths = null) => Run(input, h0, c0, lengths, "LSTM");
}

/// <summary>Base of <see cref="GruCell"/> and <see cref="LstmCell"/>: weight_ih [G·H, I], weight_hh [G·H, H], bias_ih, bias_hh (no suffix).</summary>
public abstract class RecurrentCell : RecurrentModule
{
    readonly string _module;

    private protected RecurrentCell(VarBuilder vb, string module, int gates, int inputSize, int hiddenSize, bool bias)
    {
        CheckSizes(module, inputSize, hiddenSize);
        _module = module; InputSize = inputSize; HiddenSize = hiddenSize;
        Weights = RegisterWeights(vb, "", gates, inputSize, hiddenSize, hiddenSize, bias, projection: false);
    }

    public int InputSize { get; }
    public int HiddenSize { get; }
    public RecurrentWeights Weights { get; }

    /// <summary>x·W_ihᵀ + b_ih as a one-step sequence [1, B, G·H].</summary>
    private protected Tensor InputGates(Tensor input)
    {
        if (input.Rank != 2 || input.Dim(1) != InputSize)
            throw new ShapeMismatchException($"{_module}: input must be [batch, {InputSize}]; got {Tensor.FormatShape(input.Shape)}.");
        return Functional.Linear(input.Unsqueeze(0), Weights.WeightIh.Value, Weights.BiasIh?.Value);
    }
}

/// <summary>torch.nn.GRUCell: one GRU step, parameters weight_ih [3H, I], weight_hh [3H, H], bias_ih, bias_hh.</summary>
public sealed class GruCell(VarBuilder vb, int inputSize, int hiddenSize, bool bias = true)
    : RecurrentCell(vb, "GRUCell", 3, inputSize, hiddenSize, bias)
{
    /// <summary>h′ [B, H] from input [B, I] and h [B, H] (null = zeros).</summary>
    public Tensor Forward(Tensor input, Tensor? h = null)
    {
        var gates = InputGates(input);
        var y = Functional.GruRecurrence(gates, Weights.WeightHh.Value, Weights.BiasHh?.Value, h ?? Tensor.Zeros(input.Dim(0), HiddenSize)).LastHidden;
        Forwarded(y);
        return y;
    }
}

/// <summary>The state of an <see cref="LstmCell"/>: h and c, each [B, H].</summary>
public sealed record LstmState(Tensor H, Tensor C);

/// <summary>torch.nn.LSTMCell: one LSTM step, parameters weight_ih [4H, I], weight_hh [4H, H], bias_ih, bias_hh.</summary>
public sealed class LstmCell(VarBuilder vb, int inputSize, int hiddenSize, bool bias = true)
    : RecurrentCell(vb, "LSTMCell", 4, inputSize, hiddenSize, bias)
{
    /// <summary>(h′, c′) from input [B, I] and the previous state (null = zeros).</summary>
    public LstmState Forward(Tensor input, LstmState? state = null)
    {
        var gates = InputGates(input);
        int B = input.Dim(0);
        var r = Functional.LstmRecurrence(gates, Weights.WeightHh.Value, Weights.BiasHh?.Value, null,
            state?.H ?? Tensor.Zeros(B, HiddenSize), state?.C ?? Tensor.Zeros(B, HiddenSize));
        Forwarded(r.LastHidden);
        return new LstmState(r.LastHidden, r.LastCell!);
    }
}
