using System.CommandLine;

namespace Sharpformer.Cli.Commands;

/// <summary>The list of verbs. Add one line per verb.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return InfoCommand.Create();
        yield return TokenizeCommand.Create();
        yield return VocabCommand.Create();
        yield return PretrainCommand.Create();
        yield return DownloadCommand.Create();
        yield return SummaryCommand.Create();
        yield return QuantizeCommand.Create();
        yield return ExportCommand.Create();
        yield return ForwardCommand.Create();
        yield return BaselineCommand.Create();
        yield return TrainCommand.Create();
        yield return FeaturesCommand.Create();
        yield return ResultsTableCommand.Create();
        yield return EvaluateCommand.Create();
        yield return ClassifyCommand.Create();
        yield return NerCommand.Create();
        yield return EmbedCommand.Create();
        yield return FillMaskCommand.Create();
        yield return GenerateCommand.Create();
        yield return AttentionCommand.Create();
        yield return G2PCommand.Create();
        yield return ServeCommand.Create();
    }
}
