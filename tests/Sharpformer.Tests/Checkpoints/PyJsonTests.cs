using System.Text.Json.Nodes;
using Sharpformer.Checkpoints;

namespace Sharpformer.Tests.Checkpoints;

public class PyJsonTests
{
    // Expected strings are CPython 3.11 repr() of the same bit patterns (20,000 random doubles also matched during development).
    [Theory]
    [InlineData(0x4341C37937E08000UL, "1e+16")]
    [InlineData(0x430C6BF526340000UL, "1000000000000000.0")]
    [InlineData(0x3F1A36E2EB1C432DUL, "0.0001")]
    [InlineData(0x3EE4F8B588E368F1UL, "1e-05")]
    [InlineData(0x419D6F34547DF3B6UL, "123456789.123")]
    [InlineData(0x0000000000000001UL, "5e-324")]
    [InlineData(0x7FEFFFFFFFFFFFFFUL, "1.7976931348623157e+308")]
    [InlineData(0x3FD3333333333334UL, "0.30000000000000004")]
    [InlineData(0xC004000000000000UL, "-2.5")]
    [InlineData(0x4059000000000000UL, "100.0")]
    [InlineData(0x3E8421F5F40D8376UL, "1.5e-07")]
    [InlineData(0x4340000000000000UL, "9007199254740992.0")]
    [InlineData(0x43E0000000000000UL, "9.223372036854776e+18")]
    [InlineData(0x3D719799812DEA11UL, "1e-12")]
    [InlineData(0x3FC999999999999AUL, "0.2")]
    [InlineData(0x0010000000000000UL, "2.2250738585072014e-308")]
    [InlineData(0x8000000000000000UL, "-0.0")]
    [InlineData(0x4480F0CF064DD592UL, "1e+22")]
    [InlineData(0x3C36B082C2148B8EUL, "1.23e-18")]
    public void Float_repr_matches_python(ulong bits, string expected) =>
        Assert.Equal(expected, PyJson.FloatRepr(BitConverter.UInt64BitsToDouble(bits)));

    [Fact]
    public void Dumps_like_python_json_with_indent_and_sort_keys()
    {
        // Python: json.dumps({"b": [1, 2.0, {}], "a": "\u00e9\n\"", "c": None, "d": [], "e": True}, indent=2, sort_keys=True)
        var node = JsonNode.Parse("{\"b\":[1,2.0,{}],\"a\":\"\u00e9\\n\\\"\",\"c\":null,\"d\":[],\"e\":true}");
        const string Python = "{\n  \"a\": \"\\u00e9\\n\\\"\",\n  \"b\": [\n    1,\n    2.0,\n    {}\n  ],\n  \"c\": null,\n  \"d\": [],\n  \"e\": true\n}";
        Assert.Equal(Python, PyJson.Serialize(node, indent: 2, sortKeys: true));
        Assert.Equal("{\"b\":[1,2.0,{}],\"a\":\"\\u00e9\\n\\\"\",\"c\":null,\"d\":[],\"e\":true}", PyJson.Serialize(node, indent: null, sortKeys: false));
    }

    [Fact]
    public void Keys_sort_by_code_point_like_python()
    {
        // Python: json.dumps({"\U0001F600": 1, "\uFF21": 2, "a": 3}, sort_keys=True, separators=(",", ":"))
        //   == '{"a":3,"\\uff21":2,"\\ud83d\\ude00":1}'
        var node = new JsonObject { ["\U0001F600"] = 1, ["\uFF21"] = 2, ["a"] = 3 };
        Assert.Equal("{\"a\":3,\"\\uff21\":2,\"\\ud83d\\ude00\":1}", PyJson.Serialize(node, indent: null, sortKeys: true));
    }
}
