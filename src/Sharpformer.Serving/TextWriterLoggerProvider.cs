using Microsoft.Extensions.Logging;

namespace Sharpformer.Serving;

/// <summary>
/// Writes log entries as single lines (<c>HH:mm:ss.fff level category: message</c>) to a <see cref="TextWriter"/>: the
/// console for <c>sharpformer serve</c>, a <see cref="StringWriter"/> in tests. Exceptions follow on the next lines.
/// </summary>
public sealed class TextWriterLoggerProvider(TextWriter writer) : ILoggerProvider
{
    readonly TextWriter _writer = writer ?? throw new ArgumentNullException(nameof(writer));

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() { }

    void Write(string line)
    {
        lock (_writer) { _writer.WriteLine(line); _writer.Flush(); }
    }

    sealed class Logger(TextWriterLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            string level = logLevel switch
            {
                LogLevel.Trace => "trce", LogLevel.Debug => "dbug", LogLevel.Information => "info",
                LogLevel.Warning => "warn", LogLevel.Error => "fail", _ => "crit",
            };
            var line = $"{DateTime.Now:HH:mm:ss.fff} {level} {category}: {formatter(state, exception)}";
            owner.Write(exception is null ? line : line + Environment.NewLine + exception);
        }
    }
}
