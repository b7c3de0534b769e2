using System.Text.Json;
using Sharpformer.Nn;
using Sharpformer.Tensors;

namespace Sharpformer.Tests.Nn;

/// <summary>
/// One file of ../shared/fixtures/torch-rnn (schema torch-rnn-fixture/1, see its README): parameters, inputs, outputs,
/// loss weights and gradients as tensors. Floats parse back to the exact float32 values PyTorch used.
/// </summary>
public sealed class TorchRnnFixture
{
    /// <summary>The README's tolerance for a float32 port: |ours − stored| ≤ 1e-5 + 1e-5·|stored|.</summary>
    public const double Abs = 1e-5, Rel = 1e-5;

    static readonly Dictionary<string, TorchRnnFixture> Cache = new();

    TorchRnnFixture(JsonElement root) { Root = root; }

    public JsonElement Root { get; }

    public static TorchRnnFixture Load(string file)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(file, out var f))
                Cache[file] = f = new TorchRnnFixture(JsonDocument.Parse(File.ReadAllBytes(SharedData.Fixture("torch-rnn", file))).RootElement);
            return f;
        }
    }

    public JsonElement Kwargs => Root.GetProperty("module").GetProperty("kwargs");

    public Tensor Input(string name) => ToTensor(Root.GetProperty("inputs").GetProperty(name));
    public Tensor Output(string name) => ToTensor(Root.GetProperty("outputs").GetProperty(name));
    public Tensor LossWeight(string name) => ToTensor(Root.GetProperty("loss_weights").GetProperty(name));
    public Tensor InputGrad(string name) => ToTensor(Root.GetProperty("grads").GetProperty("inputs").GetProperty(name));
    public Tensor ParameterGrad(string name) => ToTensor(Root.GetProperty("grads").GetProperty("parameters").GetProperty(name));
    public bool HasInput(string name) => Root.GetProperty("inputs").TryGetProperty(name, out _);
    public bool HasOutput(string name) => Root.GetProperty("outputs").TryGetProperty(name, out _);

    /// <summary>An integer or bool input as ints (lengths, masks).</summary>
    public int[] Ints(string inputName) => Root.GetProperty("inputs").GetProperty(inputName).GetProperty("data").EnumerateArray()
        .Select(e => e.ValueKind switch { JsonValueKind.True => 1, JsonValueKind.False => 0, _ => e.GetInt32() }).ToArray();

    /// <summary>The state dict in file order.</summary>
    public IReadOnlyList<(string Name, Tensor Value)> Parameters() =>
        Root.GetProperty("parameters").EnumerateObject().Select(p => (p.Name, ToTensor(p.Value))).ToList();

    public IReadOnlyDictionary<string, Tensor> StateDict() => Parameters().ToDictionary(p => p.Name, p => p.Value);

    public static Tensor ToTensor(JsonElement t)
    {
        var shape = t.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var data = t.GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        return Tensor.FromArray(data, shape);
    }

    /// <summary>Loads the fixture's state dict strictly (every name and shape must match) and checks the order equals PyTorch's.</summary>
    public void LoadInto(Module module)
    {
        var report = module.LoadStateDict(StateDict(), strict: true);
        Assert.True(report.IsComplete, report.ToString());
        Assert.Equal(Parameters().Select(p => p.Name), module.NamedParameters().Select(p => p.Name));
    }

    /// <summary>Σ out ⊙ loss_weights[name] over the named outputs (the fixtures' loss).</summary>
    public Tensor Loss(params (string Name, Tensor Value)[] outputs)
    {
        Tensor? loss = null;
        foreach (var (name, value) in outputs)
        {
            var term = (value * LossWeight(name)).Sum();
            loss = loss == null ? term : loss + term;
        }
        return loss!;
    }

    public static void AssertClose(Tensor expected, Tensor actual, string what, double abs = Abs, double rel = Rel)
    {
        Assert.Equal(expected.ShapeArray, actual.ShapeArray);
        var e = expected.ToArray(); var a = actual.ToArray();
        for (int i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(a[i] - e[i]) <= abs + rel * Math.Abs(e[i]), $"{what}[{i}]: ours {a[i]} vs PyTorch {e[i]} (|Δ| {Math.Abs(a[i] - e[i])})");
    }
}
