using System.Globalization;
using System.Text;
using Sharpformer.Tensors;

namespace Sharpformer.Nn;

/// <summary>One row of a <see cref="ModuleSummary"/>.</summary>
/// <param name="Name">dotted path ("" for the root)</param>
/// <param name="Type">the module's class name</param>
/// <param name="Depth">nesting depth (root = 0)</param>
/// <param name="OutputShape">shape of the module's output in the summary's probe run, when it ran one</param>
/// <param name="ParameterShapes">shapes of the parameters counted in this row, by leaf name</param>
/// <param name="Parameters">parameter elements counted in this row (own ones, or the whole subtree at the depth limit)</param>
/// <param name="TrainableParameters">the trainable part of <paramref name="Parameters"/></param>
public sealed record SummaryRow(string Name, string Type, int Depth, int[]? OutputShape,
    IReadOnlyList<(string Name, int[] Shape)> ParameterShapes, long Parameters, long TrainableParameters);

/// <summary>A Keras-style model summary: one row per module with output shape and parameter counts, and totals.</summary>
public sealed record ModuleSummary(IReadOnlyList<SummaryRow> Rows, long TotalParameters, long TrainableParameters)
{
    public long NonTrainableParameters => TotalParameters - TrainableParameters;

    internal static ModuleSummary Of(Module root, int maxDepth, Action? probe)
    {
        // A module called more than once in the probe (a shared layer) shows its last output shape.
        var shapes = new Dictionary<Module, int[]>(ReferenceEqualityComparer.Instance);
        if (probe != null)
        {
            var hooks = root.NamedModules().Select(m => m.Module.RegisterForwardHook((module, y) => { lock (shapes) shapes[module] = y.ShapeArray; })).ToList();
            try { probe(); }
            finally { foreach (var h in hooks) h.Dispose(); }
        }
        var rows = new List<SummaryRow>();
        Walk(root, "", 0, maxDepth, shapes, rows);
        return new ModuleSummary(rows, root.ParameterCount(), root.ParameterCount(trainableOnly: true));
    }

    static void Walk(Module m, string name, int depth, int maxDepth, Dictionary<Module, int[]> shapes, List<SummaryRow> rows)
    {
        bool leafRow = depth >= maxDepth || !m.NamedChildren().Any();
        var ps = leafRow ? m.NamedParameters().ToList() : m.OwnParameters().ToList();
        rows.Add(new SummaryRow(name, m.GetType().Name.Split('`')[0], depth, shapes.GetValueOrDefault(m),
            ps.Select(p => (p.Name, p.Parameter.Value.ShapeArray)).ToList(),
            ps.Sum(p => (long)p.Parameter.Size), ps.Where(p => p.Parameter.Trainable).Sum(p => (long)p.Parameter.Size)));
        if (leafRow) return;
        foreach (var (childName, child) in m.NamedChildren())
            Walk(child, name.Length == 0 ? childName : name + "." + childName, depth + 1, maxDepth, shapes, rows);
    }

    /// <summary>The table: layer (type), output shape, parameter shapes, #params; then totals.</summary>
    public override string ToString()
    {
        var table = new List<string[]> { new[] { "Layer (type)", "Output shape", "Parameter shapes", "Param #" } };
        foreach (var r in Rows)
        {
            string label = (r.Name.Length == 0 ? "(root)" : new string(' ', 2 * Math.Max(0, r.Depth - 1)) + r.Name.Split('.')[^1]) + $" ({r.Type})";
            // A row cut off by the depth limit carries its whole subtree: list a count, not dozens of shapes.
            string shapes = r.ParameterShapes.Count <= 3
                ? string.Join(" ", r.ParameterShapes.Select(p => p.Name + Tensor.FormatShape(p.Shape)))
                : $"{r.ParameterShapes.Count} tensors";
            table.Add([label, r.OutputShape is { } s ? Tensor.FormatShape(s) : "-", shapes,
                r.Parameters.ToString("N0", CultureInfo.InvariantCulture)]);
        }
        var widths = Enumerable.Range(0, 4).Select(c => table.Max(row => row[c].Length)).ToArray();
        int total = widths.Sum() + 3 * 3;
        var sb = new StringBuilder();
        sb.AppendLine(new string('=', total));
        for (int i = 0; i < table.Count; i++)
        {
            var row = table[i];
            sb.AppendLine(string.Join("   ", row.Select((cell, c) => c == 3 ? cell.PadLeft(widths[c]) : cell.PadRight(widths[c]))).TrimEnd());
            if (i == 0) sb.AppendLine(new string('=', total));
        }
        sb.AppendLine(new string('=', total));
        sb.AppendLine($"Total params: {TotalParameters.ToString("N0", CultureInfo.InvariantCulture)}");
        sb.AppendLine($"Trainable params: {TrainableParameters.ToString("N0", CultureInfo.InvariantCulture)}");
        sb.AppendLine($"Non-trainable params: {NonTrainableParameters.ToString("N0", CultureInfo.InvariantCulture)}");
        return sb.ToString();
    }
}
