using System.Text.Encodings.Web;
using System.Text.Json;

namespace Sharpformer.Pipelines;

/// <summary>
/// JSON with transformers' field names (<c>entity_group</c>, <c>token_str</c>, …) for the pipeline result records,
/// shared by the CLI's <c>--json</c> output and the server.
/// </summary>
public static class PipelineJson
{
    /// <summary>snake_case property names, compact, non-ASCII text kept readable.</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);
}
