namespace Sharpformer;

/// <summary>Base of every error Sharpformer raises on purpose; the message says what was wrong and what to do.</summary>
public class SharpformerException : Exception
{
    public SharpformerException(string message) : base(message) { }
    public SharpformerException(string message, Exception? inner) : base(message, inner) { }
}
