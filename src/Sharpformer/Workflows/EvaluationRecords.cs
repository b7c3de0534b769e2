namespace Sharpformer.Training.Workflows;

/// <summary>The workflows' shared way of collecting a run's evaluation records as the trainer logs them.</summary>
internal static class EvaluationRecords
{
    /// <summary>Keeps every <see cref="EvaluationLog"/> <paramref name="trainer"/> logs and hands each to <paramref name="onEvaluation"/> as it comes.</summary>
    public static List<EvaluationLog> Collect<TBatch>(Trainer<TBatch> trainer, Action<EvaluationLog>? onEvaluation)
    {
        var evaluations = new List<EvaluationLog>();
        trainer.Logged += r =>
        {
            if (r is not EvaluationLog e) return;
            evaluations.Add(e);
            onEvaluation?.Invoke(e);
        };
        return evaluations;
    }
}
