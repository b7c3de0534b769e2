namespace Sharpformer.Training.Workflows;

/// <summary>The workflows' shared way of collecting a run's evaluation records as the trainer logs them.</summary>
internal static class EvaluationRecords
{
    /// <summary>Keeps every "eval" record <paramref name="trainer"/> logs and hands each to <paramref name="onEvaluation"/> as it comes.</summary>
    public static List<IReadOnlyDictionary<string, object?>> Collect<TBatch>(Trainer<TBatch> trainer, Action<IReadOnlyDictionary<string, object?>>? onEvaluation)
    {
        var evaluations = new List<IReadOnlyDictionary<string, object?>>();
        trainer.Logged += r =>
        {
            if ((string?)r["kind"] != "eval") return;
            evaluations.Add(r);
            onEvaluation?.Invoke(r);
        };
        return evaluations;
    }
}
