using Sharpformer.Data;
using Sharpformer.Pipelines;

namespace Sharpformer.Tests.Pipelines;

/// <summary>
/// A model replaced by outputs transformers recorded in the fixtures: looks each batch row up by its token ids and returns
/// the recorded logits, so the pipelines' pre- and postprocessing can be checked without the network.
/// Rows it has no recording for fail the test loudly.
/// </summary>
public sealed class RecordedModel(PipelineModelInfo info, int outputsPerPosition, bool perToken) : IPipelineModel
{
    readonly Dictionary<string, Func<int, float[]>> _rows = new();   // key: ids; value: position → logits (perToken) or row logits (position -1)

    public PipelineModelInfo Info { get; } = info;
    public int Calls { get; private set; }
    public List<int> BatchSizes { get; } = [];

    public void Add(IReadOnlyList<int> ids, Func<int, float[]> logits) => _rows[Key(ids)] = logits;

    static string Key(IEnumerable<int> ids) => string.Join(',', ids);

    public PipelineModelOutput Forward(CollatedBatch batch, ForwardRequest request, CancellationToken cancellationToken = default)
    {
        Calls++;
        BatchSizes.Add(batch.Batch);
        int b = batch.Batch, s = batch.Seq, c = outputsPerPosition;
        var logits = new float[perToken ? b * s * c : b * c];
        for (int r = 0; r < b; r++)
        {
            var ids = Enumerable.Range(0, s).Where(j => batch.AttentionMask[r * s + j] == 1).Select(j => batch.InputIds[r * s + j]).ToList();
            if (!_rows.TryGetValue(Key(ids), out var f)) throw new InvalidOperationException($"no recorded output for ids [{Key(ids)}]");
            if (perToken) for (int j = 0; j < ids.Count; j++) f(j).CopyTo(logits, (r * s + j) * c);
            else f(-1).CopyTo(logits, r * c);
        }
        return new PipelineModelOutput(logits, perToken ? [b, s, c] : [b, c], null, 0, null, null);
    }
}
