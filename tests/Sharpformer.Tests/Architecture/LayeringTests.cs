namespace Sharpformer.Tests.Architecture;

/// <summary>
/// The dependency rule of docs/CONTRACTS.md ("Layers"), checked on the compiled assemblies: the top-level Sharpformer
/// namespaces form a DAG and each uses only its own layer and the layers below it.
/// </summary>
public sealed class LayeringTests
{
    /// <summary>
    /// The layer order, bottom first (the same table as docs/CONTRACTS.md "Layers"). A namespace may use namespaces in its
    /// own row or any row above; namespaces in one row must still not form a cycle.
    /// </summary>
    static readonly string[][] Layers =
    [
        ["Sharpformer"],                                         // root: SharpformerException, shared exception types, TrainingRandom
        ["Kernels"],                                             // span kernels, no tensor type
        ["Tensors"],                                             // Tensor, autograd, functional ops, losses
        ["Nn", "Optim"],                                         // modules, VarBuilder; optimizers
        ["Checkpoints"],                                         // safetensors / torch readers and writers, StateDict
        ["Hub"],                                                 // HF cache layout and download client
        ["Models"],                                              // configs, BERT family, seed model
        ["Tokenization", "Data", "Metrics", "Classical"],        // text, datasets and collators, metrics, classical ML
        ["Training"],                                            // Trainer, run checkpoints, optimizer set-up
        ["Pipelines", "Visualization"],                          // task pipelines, attention pictures
        ["Training.Workflows"],                                  // recipes: fine-tune, evaluate, feature extraction (use pipelines)
        ["Serving", "Cli", "Extensions"],                        // apps and adapters: ASP.NET server, CLI, Extensions.AI (IEmbeddingGenerator)
    ];

    /// <summary>
    /// Edges that break the rule today and are allowed only until the change named beside them lands; the tests fail when
    /// one of them no longer occurs, so the line is deleted with the fix.
    /// </summary>
    static readonly HashSet<(string From, string To)> KnownViolations = [];

    static readonly IReadOnlyList<string> Assemblies = NamespaceDependencies.ProductAssemblies();
    static readonly IReadOnlyList<NamespaceUse> Uses = NamespaceDependencies.Read(Assemblies);

    static int RankOf(string layer)
    {
        for (int i = 0; i < Layers.Length; i++)
            if (Layers[i].Contains(layer)) return i;
        return -1;
    }

    static string Examples(IEnumerable<NamespaceUse> uses, int most = 5)
    {
        var list = uses.ToList();
        var shown = list.Take(most).Select(u => "    " + u);
        return string.Join("\n", shown) + (list.Count > most ? $"\n    (+{list.Count - most} more)" : "");
    }

    [Fact]
    public void Reader_SeesTheFourProductAssembliesAndKnownEdges()
    {
        Assert.Equal(["Sharpformer.Cli.dll", "Sharpformer.Extensions.AI.dll", "Sharpformer.Serving.dll", "Sharpformer.dll"],
            Assemblies.Select(Path.GetFileName).Order(StringComparer.Ordinal));
        // Edges that are certainly there, one of each way the reader finds them: signatures (Nn.Module.Forward takes a
        // Tensor), IL of method bodies (Tensors calls Kernels.Gemm), and uses across assemblies (CLI runs pipelines).
        Assert.Contains(Uses, u => u.FromLayer == "Nn" && u.ToLayer == "Tensors");
        Assert.Contains(Uses, u => u.FromLayer == "Tensors" && u.UsedType == "Sharpformer.Kernels.Gemm");
        Assert.Contains(Uses, u => u.FromLayer == "Cli" && u.ToLayer == "Pipelines");
        Assert.Contains(Uses, u => u.FromLayer == "Training.Workflows" && u.ToLayer == "Training");   // a nested layer
        Assert.All(Uses, u => Assert.NotNull(u.File));
    }

    [Fact]
    public void CoreAssembly_DoesNotReferenceMicrosoftExtensionsAI()
    {
        // The IEmbeddingGenerator adapter is src/Sharpformer.Extensions.AI; the core stays free of that package.
        var referenced = typeof(SharpformerException).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.Contains("System.Numerics.Tensors", referenced);
        Assert.DoesNotContain(referenced, n => n.StartsWith("Microsoft.Extensions.AI", StringComparison.Ordinal));
    }

    [Fact]
    public void EveryNamespace_HasALayer()
    {
        var unplaced = NamespaceDependencies.DeclaredLayers(Assemblies).Where(l => RankOf(l) < 0).ToList();
        Assert.True(unplaced.Count == 0,
            $"Namespaces without a layer: {string.Join(", ", unplaced)}. Add each to LayeringTests.Layers and docs/CONTRACTS.md \"Layers\".");
    }

    [Fact]
    public void Namespaces_UseOnlyTheirOwnOrLowerLayers()
    {
        var upward = Uses
            .Where(u => RankOf(u.ToLayer) > RankOf(u.FromLayer) && !KnownViolations.Contains((u.FromLayer, u.ToLayer)))
            .GroupBy(u => (u.FromLayer, u.ToLayer))
            .Select(g => $"{g.Key.FromLayer} (layer {RankOf(g.Key.FromLayer)}) uses {g.Key.ToLayer} (layer {RankOf(g.Key.ToLayer)}):\n{Examples(g)}")
            .ToList();
        Assert.True(upward.Count == 0,
            "Upward dependencies (move the code to the layer it belongs to, or pass the value in from above):\n" + string.Join("\n", upward));
    }

    [Fact]
    public void Namespaces_FormADirectedAcyclicGraph()
    {
        var edges = Uses.Where(u => !KnownViolations.Contains((u.FromLayer, u.ToLayer)))
            .GroupBy(u => u.FromLayer)
            .ToDictionary(g => g.Key, g => g.Select(u => u.ToLayer).ToHashSet());
        var cycle = FindCycle(edges);
        if (cycle == null) return;
        var hops = cycle.Zip(cycle.Skip(1).Append(cycle[0]))
            .Select(e => $"{e.First} -> {e.Second}:\n{Examples(Uses.Where(u => u.FromLayer == e.First && u.ToLayer == e.Second), 3)}");
        Assert.Fail($"Namespace cycle {string.Join(" -> ", cycle.Append(cycle[0]))}:\n{string.Join("\n", hops)}");
    }

    [Fact]
    public void KnownViolations_StillOccur()
    {
        var gone = KnownViolations.Where(v => !Uses.Any(u => u.FromLayer == v.From && u.ToLayer == v.To)).ToList();
        Assert.True(gone.Count == 0,
            $"Fixed, so delete from LayeringTests.KnownViolations: {string.Join(", ", gone.Select(v => $"{v.From} -> {v.To}"))}");
    }

    /// <summary>One cycle of the graph as a list of nodes (depth-first search, grey/black marking), or null for a DAG.</summary>
    static List<string>? FindCycle(Dictionary<string, HashSet<string>> edges)
    {
        var state = new Dictionary<string, int>();   // absent: unvisited, 1: on the stack, 2: done
        var stack = new List<string>();
        List<string>? Visit(string node)
        {
            state[node] = 1;
            stack.Add(node);
            foreach (var next in edges.GetValueOrDefault(node, []).Order(StringComparer.Ordinal))
            {
                if (state.GetValueOrDefault(next) == 1) return stack[stack.IndexOf(next)..];
                if (state.GetValueOrDefault(next) == 0 && Visit(next) is { } found) return found;
            }
            stack.RemoveAt(stack.Count - 1);
            state[node] = 2;
            return null;
        }
        foreach (var node in edges.Keys.Order(StringComparer.Ordinal))
            if (state.GetValueOrDefault(node) == 0 && Visit(node) is { } cycle) return cycle;
        return null;
    }
}
