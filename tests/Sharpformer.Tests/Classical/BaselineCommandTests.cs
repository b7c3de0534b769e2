using System.Text.Json;
using Sharpformer.Cli.Commands;

namespace Sharpformer.Tests.Classical;

public class BaselineCommandTests
{
    [Fact]
    public void EmotionBaselineReportsScikitLearnLevelAccuracy()
    {
        var output = new StringWriter();
        Assert.Equal(0, BaselineCommand.Execute(new BaselineCommand.Settings("emotion", SharedData.Data, 1.0, 1000, true, 1, Json: true), output));
        var json = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.Equal(("emotion", "test", "tfidf+lr", "none"), (json.GetProperty("task").GetString(), json.GetProperty("split").GetString(),
            json.GetProperty("method").GetString(), json.GetProperty("init").GetString()));
        var budget = json.GetProperty("budget");
        Assert.Equal(16000, budget.GetProperty("train_examples").GetInt32());
        Assert.Equal(15186, budget.GetProperty("terms").GetInt32());
        // scikit-learn 1.2.1, make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)): 0.861.
        Assert.InRange(json.GetProperty("metrics").GetProperty("accuracy").GetDouble(), 0.859, 0.863);
    }

    [Fact]
    public void MissingDataFolderIsAClearError()
    {
        var e = Assert.Throws<SharpformerException>(() =>
            BaselineCommand.Execute(new BaselineCommand.Settings("agnews", "/nonexistent/data", 1.0, 100, true, 1, false), new StringWriter()));
        Assert.Contains("/nonexistent/data", e.Message);
    }
}
