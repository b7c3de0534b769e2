using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>The losses of the classification and MLM heads, chosen exactly as transformers 4.30 chooses them.</summary>
public static class HeadLosses
{
    /// <summary>Label id that contributes no loss (torch's CrossEntropyLoss ignore_index).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>
    /// Resolves the problem type as <c>BertForSequenceClassification.forward</c> does: config.problem_type when set, else
    /// regression when num_labels = 1, single-label when the labels are integers, multi-label otherwise.
    /// </summary>
    public static ProblemType ResolveProblemType(string? configProblemType, int numLabels, SequenceLabels labels) => configProblemType switch
    {
        "regression" => ProblemType.Regression,
        "single_label_classification" => ProblemType.SingleLabelClassification,
        "multi_label_classification" => ProblemType.MultiLabelClassification,
        null => numLabels == 1 ? ProblemType.Regression
              : labels is SequenceLabels.ClassIds ? ProblemType.SingleLabelClassification
              : ProblemType.MultiLabelClassification,
        _ => throw new NotSupportedException($"config.json problem_type = \"{configProblemType}\" is not one of regression, single_label_classification, multi_label_classification."),
    };

    /// <summary>
    /// Sequence-classification loss over logits [B, L]: cross-entropy (single label), BCE-with-logits (multi label) or
    /// MSE (regression; with one label, logits and targets are both flattened to [B] as HF's <c>squeeze()</c>).
    /// </summary>
    public static Tensor Sequence(Tensor logits, SequenceLabels labels, int numLabels, string? configProblemType)
    {
        int batch = logits.Dim(0);
        var problem = ResolveProblemType(configProblemType, numLabels, labels);
        switch (problem)
        {
            case ProblemType.SingleLabelClassification:
                {
                    var ids = labels switch
                    {
                        SequenceLabels.ClassIds c => c.Ids,
                        SequenceLabels.Values v => v.Targets.Select((x, i) => x == MathF.Round(x) ? (int)x
                            : throw new ModelInputException($"labels[{i}] = {x} is not a class id, but problem_type is single_label_classification.")).ToArray(),
                        _ => throw new ArgumentOutOfRangeException(nameof(labels)),
                    };
                    if (ids.Length != batch) throw new ModelInputException($"{ids.Length} labels given for a batch of {batch} sequences.");
                    CheckIds(ids, numLabels, "labels");
                    return Losses.CrossEntropy(logits.Reshape(-1, numLabels), ids, IgnoreIndex);
                }
            case ProblemType.MultiLabelClassification:
                {
                    if (labels is not SequenceLabels.Values v)
                        throw new ModelInputException("multi_label_classification needs float targets [batch, num_labels] (SequenceLabels.Values), not class ids.");
                    if (v.Targets.Length != batch * numLabels)
                        throw new ModelInputException($"multi-label targets hold {v.Targets.Length} values; batch {batch} × num_labels {numLabels} = {batch * numLabels} expected.");
                    return Losses.BinaryCrossEntropyWithLogits(logits, Tensor.FromArray((float[])v.Targets.Clone(), batch, numLabels));
                }
            default:
                {
                    float[] targets = labels switch
                    {
                        SequenceLabels.Values v => v.Targets,
                        SequenceLabels.ClassIds c => c.Ids.Select(i => (float)i).ToArray(),
                        _ => throw new ArgumentOutOfRangeException(nameof(labels)),
                    };
                    if (targets.Length != batch * numLabels)
                        throw new ModelInputException($"regression targets hold {targets.Length} values; batch {batch} × num_labels {numLabels} = {batch * numLabels} expected.");
                    return Losses.Mse(logits.Reshape(-1), Tensor.FromArray((float[])targets.Clone(), targets.Length));
                }
        }
    }

    /// <summary>Per-token cross-entropy over logits [B, S, C] and labels [B·S], positions labelled −100 ignored, mean over the rest.</summary>
    public static Tensor Token(Tensor logits, int[] labels, EncoderInput input)
    {
        int classes = logits.Dim(-1);
        CheckTokenLabels(labels, classes, input);
        return Losses.CrossEntropy(logits.Reshape(-1, classes), labels, IgnoreIndex);
    }

    /// <summary>Per-token labels: one per position of <paramref name="input"/>, each a class id below <paramref name="classes"/> or −100.</summary>
    internal static void CheckTokenLabels(int[] labels, int classes, EncoderInput input)
    {
        if (labels.Length != input.TokenCount)
            throw new ModelInputException($"{labels.Length} token labels given; batch {input.BatchSize} × sequence {input.SequenceLength} = {input.TokenCount} expected (use −100 for positions without a label).");
        CheckIds(labels, classes, "labels");
    }

    static void CheckIds(int[] ids, int classes, string field)
    {
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] != IgnoreIndex && (uint)ids[i] >= (uint)classes)
                throw new ModelInputException($"{field}[{i}] = {ids[i]} is outside 0..{classes - 1} (and is not the ignore index −100).");
    }
}
