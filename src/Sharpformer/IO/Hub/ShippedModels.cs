namespace Sharpformer.Hub;

/// <summary>The tasks that have a model shipped in the repository's <c>models/</c> folder, used when no model is given.</summary>
public enum ShippedTask
{
    /// <summary>Masked-LM predictions (<c>fill-mask</c>): the pretrained mini BERT.</summary>
    FillMask,
    /// <summary>Frozen encoder features and embeddings (<c>features</c>, <c>embed</c>): the pretrained mini BERT.</summary>
    Features,
    /// <summary>Named entities (<c>ner</c>): the mini BERT fine-tuned on CoNLL-2003.</summary>
    Ner,
    /// <summary>Grapheme-to-phoneme (<c>g2p</c>): the CMUdict encoder–decoder.</summary>
    G2P,
    /// <summary>Text generation (<c>generate</c>): the small GPT.</summary>
    Generate,
}

/// <summary>Where to look for the <c>models/</c> folder: an explicit folder, else <c>models/</c> in a start directory or any parent of it.</summary>
/// <param name="ModelsDirectory">The folder itself (<see cref="ShippedModels.EnvironmentVariable"/>); when set, nothing else is searched.</param>
/// <param name="StartDirectories">Directories whose ancestors (themselves included) are searched for <c>models/</c>, in order.</param>
public sealed record ShippedModelSearch(string? ModelsDirectory, IReadOnlyList<string> StartDirectories)
{
    /// <summary>
    /// SHARPFORMER_MODELS when set; otherwise the current directory and then the program's directory, each walked up — so the
    /// CLI finds the clone's <c>models/</c> from anywhere inside the clone and also when started through <c>./sharpformer</c>
    /// from elsewhere (the program lives in <c>src/Sharpformer.Cli/bin/…</c> under the clone).
    /// </summary>
    public static ShippedModelSearch FromEnvironment() => new(
        Environment.GetEnvironmentVariable(ShippedModels.EnvironmentVariable) is { Length: > 0 } dir ? dir : null,
        [Environment.CurrentDirectory, AppContext.BaseDirectory]);
}

/// <summary>
/// The models shipped in the repository's <c>models/</c> folder and the default one per task: the one place that turns
/// "no --model given" into a model directory, or into an error saying which model is expected where and how to make it.
/// </summary>
public static class ShippedModels
{
    /// <summary>The folder name searched for, at the repository root.</summary>
    public const string FolderName = "models";

    /// <summary>Overrides the folder (an absolute or relative path to a folder laid out like <c>models/</c>).</summary>
    public const string EnvironmentVariable = "SHARPFORMER_MODELS";

    /// <summary>The pretrained mini BERT (BertForMaskedLM, 4 layers, hidden 256, WordPiece vocabulary of 16k, uncased).</summary>
    public const string MiniUncased = "sharpformer-mini-uncased";
    /// <summary>The mini BERT fine-tuned for CoNLL-2003 NER (BertForTokenClassification).</summary>
    public const string MiniNer = "sharpformer-mini-ner";
    /// <summary>The CMUdict grapheme-to-phoneme model (the better of the Bahdanau and Transformer runs).</summary>
    public const string G2P = "sharpformer-g2p";
    /// <summary>The small GPT-2 pretrained on the same text and compute as the mini BERT (GPT2LMHeadModel).</summary>
    public const string MiniGpt = "sharpformer-mini-gpt";

    /// <summary>The model directory name a task uses by default.</summary>
    public static string DefaultName(ShippedTask task) => task switch
    {
        ShippedTask.FillMask or ShippedTask.Features => MiniUncased,
        ShippedTask.Ner => MiniNer,
        ShippedTask.G2P => G2P,
        ShippedTask.Generate => MiniGpt,
        _ => throw new ArgumentOutOfRangeException(nameof(task), task, "unknown task"),
    };

    /// <summary>How a missing default model is made (commands of models/README.md).</summary>
    public static string HowToMake(string name) => name switch
    {
        MiniUncased => "sharpformer pretrain --config mini --objective mlm --output RUN … then sharpformer export --model RUN --output models/" + MiniUncased,
        MiniNer => "sharpformer train token-classifier --model models/" + MiniUncased + " --output RUN … then sharpformer export --model RUN --output models/" + MiniNer,
        G2P => "sharpformer train seq2seq --data ../shared/data/cmudict --output RUN … then sharpformer export --model RUN --output models/" + G2P,
        MiniGpt => "sharpformer pretrain --config mini --objective clm --output RUN … then sharpformer export --model RUN --output models/" + MiniGpt,
        _ => "see models/README.md",
    };

    /// <summary>
    /// The directory of the task's default model. A candidate counts only when it holds a <c>config.json</c>, so a folder
    /// of another name-case (<c>src/…/Models</c> on a case-insensitive disk) or a half-copied model is never taken.
    /// </summary>
    /// <exception cref="ShippedModelNotFoundException">No such model where it was looked for.</exception>
    public static string Resolve(ShippedTask task, ShippedModelSearch search) => Resolve(DefaultName(task), search);

    /// <inheritdoc cref="Resolve(ShippedTask, ShippedModelSearch)"/>
    public static string Resolve(string name, ShippedModelSearch search)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(search);
        var looked = new List<string>();
        foreach (var folder in CandidateFolders(search))
        {
            var dir = Path.Combine(folder, name);
            if (File.Exists(Path.Combine(dir, "config.json"))) return dir;
            looked.Add(dir);
        }
        throw new ShippedModelNotFoundException(name, looked, search.ModelsDirectory != null);
    }

    /// <summary>The <c>models/</c> folders to try, nearest first, each once.</summary>
    public static IReadOnlyList<string> CandidateFolders(ShippedModelSearch search)
    {
        if (search.ModelsDirectory is { } explicitFolder) return [Path.GetFullPath(explicitFolder)];
        var folders = new List<string>();
        foreach (var start in search.StartDirectories)
            for (var dir = new DirectoryInfo(Path.GetFullPath(start)); dir != null; dir = dir.Parent)
            {
                var folder = Path.Combine(dir.FullName, FolderName);
                if (Directory.Exists(folder) && !folders.Contains(folder)) folders.Add(folder);
            }
        return folders;
    }
}

/// <summary>A task's default model is not in any <c>models/</c> folder searched; the message says where it was expected and how to get it.</summary>
public sealed class ShippedModelNotFoundException : SharpformerException
{
    public ShippedModelNotFoundException(string modelName, IReadOnlyList<string> lookedIn, bool fromEnvironment)
        : base(Describe(modelName, lookedIn, fromEnvironment))
    {
        ModelName = modelName;
        LookedIn = lookedIn;
    }

    /// <summary>The default model's directory name, e.g. <c>sharpformer-mini-ner</c>.</summary>
    public string ModelName { get; }

    /// <summary>The model directories tried (none when no <c>models/</c> folder was found at all).</summary>
    public IReadOnlyList<string> LookedIn { get; }

    static string Describe(string name, IReadOnlyList<string> lookedIn, bool fromEnvironment)
    {
        string where = lookedIn.Count > 0
            ? $"{string.Join(", ", lookedIn.Select(d => Path.Combine(d, "config.json")))} does not exist"
            : $"no '{ShippedModels.FolderName}/' folder was found in the current directory, the program's directory or their parents";
        string env = fromEnvironment ? $" ({ShippedModels.EnvironmentVariable} is set)" : $" (set {ShippedModels.EnvironmentVariable} to a folder holding it)";
        return $"no --model given and the default model '{name}' was not found: {where}{env}. " +
               $"Pass --model DIR, or put the shipped model at {ShippedModels.FolderName}/{name} (it comes with the repository's {ShippedModels.FolderName}/ folder; " +
               $"to make it: {ShippedModels.HowToMake(name)}).";
    }
}
