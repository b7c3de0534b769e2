using Sharpformer.Nn;

namespace Sharpformer.Optim;

/// <summary>Builders of parameter groups.</summary>
public static class ParameterGroups
{
    /// <summary>
    /// HF Trainer's grouping: weight decay applies to trainable parameters that are not inside a LayerNorm module and whose
    /// name has no "bias"; the rest get weight decay 0. Returns [decay group, no-decay group] (an empty group is omitted).
    /// </summary>
    public static IReadOnlyList<ParamGroup> HuggingFaceWeightDecay(Module model, float weightDecay)
    {
        var inLayerNorm = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (_, m) in model.NamedModules())
            if (m is LayerNorm) foreach (var p in m.Parameters()) inLayerNorm.Add(p);
        var decay = new List<Parameter>(); var noDecay = new List<Parameter>();
        foreach (var (name, p) in model.NamedParameters())
        {
            if (!p.Trainable) continue;
            if (!inLayerNorm.Contains(p) && !name.Contains("bias", StringComparison.Ordinal)) decay.Add(p); else noDecay.Add(p);
        }
        var groups = new List<ParamGroup>();
        if (decay.Count > 0) groups.Add(new ParamGroup(decay, weightDecay: weightDecay));
        if (noDecay.Count > 0) groups.Add(new ParamGroup(noDecay, weightDecay: 0f));
        return groups;
    }

    /// <summary>Decay names for inspection: (name, decays) in parameter order, by the same rule.</summary>
    public static IReadOnlyList<(string Name, bool Decay)> DescribeHuggingFaceWeightDecay(Module model)
    {
        var inLayerNorm = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (_, m) in model.NamedModules())
            if (m is LayerNorm) foreach (var p in m.Parameters()) inLayerNorm.Add(p);
        return model.NamedParameters().Where(x => x.Parameter.Trainable)
            .Select(x => (x.Name, !inLayerNorm.Contains(x.Parameter) && !x.Name.Contains("bias", StringComparison.Ordinal))).ToList();
    }
}
