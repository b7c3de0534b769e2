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
        return HuggingFaceWeightDecay(model.NamedParameters().Select(x => (x.Name, x.Parameter, inLayerNorm.Contains(x.Parameter))), weightDecay);
    }

    /// <summary>HF Trainer's rule for one parameter: decay unless it sits inside a LayerNorm module or its name contains "bias".</summary>
    public static bool Decays(string name, bool inLayerNorm) => !inLayerNorm && !name.Contains("bias", StringComparison.Ordinal);

    /// <summary>
    /// The same grouping over named parameters whose LayerNorm membership the caller knows (e.g. flat buffers of a model
    /// that is not a <see cref="Module"/>): [decay group, no-decay group], an empty group omitted, frozen parameters skipped.
    /// </summary>
    public static IReadOnlyList<ParamGroup> HuggingFaceWeightDecay(IEnumerable<(string Name, Parameter Parameter, bool InLayerNorm)> parameters, float weightDecay)
    {
        var decay = new List<Parameter>(); var noDecay = new List<Parameter>();
        foreach (var (name, p, inLayerNorm) in parameters)
        {
            if (!p.Trainable) continue;
            if (Decays(name, inLayerNorm)) decay.Add(p); else noDecay.Add(p);
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
            .Select(x => (x.Name, Decays(x.Name, inLayerNorm.Contains(x.Parameter)))).ToList();
    }
}
