using System.Numerics.Tensors;
using Sharpformer.Kernels;
using TP = System.Numerics.Tensors.TensorPrimitives;

namespace Sharpformer.Tensors;

internal interface IBinaryOp
{
    static abstract float Apply(float a, float b);
    static abstract void Rows(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> d);
    static abstract void RowScalarB(ReadOnlySpan<float> a, float b, Span<float> d);
    static abstract void RowScalarA(float a, ReadOnlySpan<float> b, Span<float> d);
}

internal struct AddOp : IBinaryOp
{
    public static float Apply(float a, float b) => a + b;
    public static void Rows(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> d) => TP.Add(a, b, d);
    public static void RowScalarB(ReadOnlySpan<float> a, float b, Span<float> d) => TP.Add(a, b, d);
    public static void RowScalarA(float a, ReadOnlySpan<float> b, Span<float> d) => TP.Add(b, a, d);
}

internal struct SubOp : IBinaryOp
{
    public static float Apply(float a, float b) => a - b;
    public static void Rows(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> d) => TP.Subtract(a, b, d);
    public static void RowScalarB(ReadOnlySpan<float> a, float b, Span<float> d) => TP.Subtract(a, b, d);
    public static void RowScalarA(float a, ReadOnlySpan<float> b, Span<float> d) => TP.Subtract(a, b, d);
}

internal struct MulOp : IBinaryOp
{
    public static float Apply(float a, float b) => a * b;
    public static void Rows(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> d) => TP.Multiply(a, b, d);
    public static void RowScalarB(ReadOnlySpan<float> a, float b, Span<float> d) => TP.Multiply(a, b, d);
    public static void RowScalarA(float a, ReadOnlySpan<float> b, Span<float> d) => TP.Multiply(b, a, d);
}

internal struct DivOp : IBinaryOp
{
    public static float Apply(float a, float b) => a / b;
    public static void Rows(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> d) => TP.Divide(a, b, d);
    public static void RowScalarB(ReadOnlySpan<float> a, float b, Span<float> d) => TP.Divide(a, b, d);
    public static void RowScalarA(float a, ReadOnlySpan<float> b, Span<float> d) => TP.Divide(a, b, d);
}

public sealed partial class Tensor
{
    /// <summary>out = a ∘ b elementwise with numpy broadcasting; no autograd recording.</summary>
    internal static Tensor BinaryRaw<TOp>(Tensor a, Tensor b, string op) where TOp : struct, IBinaryOp
    {
        if (a._shape.AsSpan().SequenceEqual(b._shape) && a.IsContiguous && b.IsContiguous)
        {
            var r = Empty(a.ShapeArray);
            float[] x = a.Data, y = b.Data, z = r.Data; int xo = a.Offset, yo = b.Offset;
            Par.ForFlat(r.Size, (s0, n) => TOp.Rows(x.AsSpan(xo + s0, n), y.AsSpan(yo + s0, n), z.AsSpan(s0, n)));
            return r;
        }
        var shape = BroadcastShapes(a._shape, b._shape, op);
        var res = Empty(shape);
        var sa = BroadcastStrides(a, shape, op); var sb = BroadcastStrides(b, shape, op);
        float[] ad = a.Data, bd = b.Data, od = res.Data;
        StridedLoop.Run(shape, [sa, sb, ContiguousStrides(shape)], [a.Offset, b.Offset, 0], (n, o, s) =>
        {
            var dst = od.AsSpan(o[2], n);
            if (s[0] == 1 && s[1] == 1) TOp.Rows(ad.AsSpan(o[0], n), bd.AsSpan(o[1], n), dst);
            else if (s[0] == 1 && s[1] == 0) TOp.RowScalarB(ad.AsSpan(o[0], n), bd[o[1]], dst);
            else if (s[0] == 0 && s[1] == 1) TOp.RowScalarA(ad[o[0]], bd.AsSpan(o[1], n), dst);
            else for (int i = 0, pa = o[0], pb = o[1]; i < n; i++, pa += s[0], pb += s[1]) dst[i] = TOp.Apply(ad[pa], bd[pb]);
        });
        return res;
    }

    /// <summary>Sums a contiguous gradient over the broadcast dimensions so it has <paramref name="shape"/> (the adjoint of broadcasting).</summary>
    internal static Tensor SumToShape(Tensor g, int[] shape)
    {
        if (g._shape.AsSpan().SequenceEqual(shape)) return g.IsContiguous ? g : g.Detach().Contiguous();
        var res = Zeros(shape);
        var gs = g.ShapeArray;
        // destination strides viewed over g's shape: 0 where the target broadcast
        var fake = new Tensor(res.Data, 0, shape, ContiguousStrides(shape));
        var ds = BroadcastStrides(fake, gs, "SumToShape");
        float[] src = g.Data, dst = res.Data;
        StridedLoop.Run(gs, [g._strides, ds], [g.Offset, 0], (n, o, s) =>
        {
            if (s[0] == 1 && s[1] == 1) { var d = dst.AsSpan(o[1], n); TP.Add(d, src.AsSpan(o[0], n), d); }
            else if (s[0] == 1 && s[1] == 0) dst[o[1]] += TP.Sum(src.AsSpan(o[0], n));
            else for (int i = 0, ps = o[0], pd = o[1]; i < n; i++, ps += s[0], pd += s[1]) dst[pd] += src[ps];
        });
        return res;
    }

    public Tensor Add(Tensor other)
    {
        var r = BinaryRaw<AddOp>(this, other, "Add");
        if (!NeedsGrad(this, other)) return r;
        int[] sa = ShapeArray, sb = other.ShapeArray;
        return Record(r, "Add", (g, s) =>
        {
            if (s.Needs(0)) s.Add(0, SumToShape(g, sa), owned: !g.ShapeRef.AsSpan().SequenceEqual(sa));
            if (s.Needs(1)) s.Add(1, SumToShape(g, sb), owned: !g.ShapeRef.AsSpan().SequenceEqual(sb));
        }, this, other);
    }

    public Tensor Sub(Tensor other)
    {
        var r = BinaryRaw<SubOp>(this, other, "Sub");
        if (!NeedsGrad(this, other)) return r;
        int[] sa = ShapeArray, sb = other.ShapeArray;
        return Record(r, "Sub", (g, s) =>
        {
            if (s.Needs(0)) s.Add(0, SumToShape(g, sa), owned: !g.ShapeRef.AsSpan().SequenceEqual(sa));
            if (s.Needs(1)) { var n = SumToShape(g, sb).NegRaw(); s.Add(1, n, owned: true); }
        }, this, other);
    }

    public Tensor Mul(Tensor other)
    {
        var r = BinaryRaw<MulOp>(this, other, "Mul");
        if (!NeedsGrad(this, other)) return r;
        Tensor a = Detach(), b = other.Detach();
        int[] sa = ShapeArray, sb = other.ShapeArray;
        return Record(r, "Mul", (g, s) =>
        {
            if (s.Needs(0)) s.Add(0, SumToShape(BinaryRaw<MulOp>(g, b, "Mul.backward"), sa), owned: true);
            if (s.Needs(1)) s.Add(1, SumToShape(BinaryRaw<MulOp>(g, a, "Mul.backward"), sb), owned: true);
        }, this, other);
    }

    public Tensor Div(Tensor other)
    {
        var r = BinaryRaw<DivOp>(this, other, "Div");
        if (!NeedsGrad(this, other)) return r;
        Tensor b = other.Detach(), outD = r.Detach();
        int[] sa = ShapeArray, sb = other.ShapeArray;
        return Record(r, "Div", (g, s) =>
        {
            var gOverB = BinaryRaw<DivOp>(g, b, "Div.backward");
            if (s.Needs(1)) s.Add(1, SumToShape(BinaryRaw<MulOp>(gOverB, outD, "Div.backward"), sb).NegRaw(), owned: true);
            if (s.Needs(0)) s.Add(0, SumToShape(gOverB, sa), owned: true);
        }, this, other);
    }

    // ---------------------------------------------------------------- scalar forms

    public Tensor Add(float c)
    {
        var x = Contiguous();
        var r = Empty(ShapeArray);
        TP.Add(x.ContiguousSpan(), c, r.Data);
        return Record(r, "AddScalar", static (g, s) => s.Add(0, g, owned: false), x);
    }

    public Tensor Sub(float c) => Add(-c);

    public Tensor Mul(float c)
    {
        var x = Contiguous();
        var r = Empty(ShapeArray);
        TP.Multiply(x.ContiguousSpan(), c, r.Data);
        return Record(r, "MulScalar", (g, s) => s.Add(0, g.MulRaw(c), owned: true), x);
    }

    public Tensor Div(float c) => Mul(1f / c);

    /// <summary>c − x.</summary>
    public Tensor RSub(float c) => Neg().Add(c);

    /// <summary>c / x.</summary>
    public Tensor RDiv(float c)
    {
        var x = Contiguous();
        var r = Empty(ShapeArray);
        TP.Divide(c, x.ContiguousSpan(), r.Data);
        var xd = x.Detach(); var rd = r.Detach();
        // d(c/x)/dx = −c/x² = −out/x
        return Record(r, "RDiv", (g, s) =>
        {
            var t = Empty(g.ShapeArray);
            TP.Multiply(g.ContiguousSpan(), rd.ContiguousSpan(), t.Data);
            TP.Divide(t.Data, xd.ContiguousSpan(), t.Data);
            TP.Negate(t.Data, t.Data);
            s.Add(0, t, owned: true);
        }, x);
    }

    internal Tensor NegRaw() { var r = Empty(ShapeArray); TP.Negate(Contiguous().ContiguousSpan(), r.Data); return r; }
    internal Tensor MulRaw(float c) { var r = Empty(ShapeArray); TP.Multiply(Contiguous().ContiguousSpan(), c, r.Data); return r; }

    public static Tensor operator +(Tensor a, Tensor b) => a.Add(b);
    public static Tensor operator -(Tensor a, Tensor b) => a.Sub(b);
    public static Tensor operator *(Tensor a, Tensor b) => a.Mul(b);
    public static Tensor operator /(Tensor a, Tensor b) => a.Div(b);
    public static Tensor operator +(Tensor a, float c) => a.Add(c);
    public static Tensor operator +(float c, Tensor a) => a.Add(c);
    public static Tensor operator -(Tensor a, float c) => a.Add(-c);
    public static Tensor operator -(float c, Tensor a) => a.RSub(c);
    public static Tensor operator *(Tensor a, float c) => a.Mul(c);
    public static Tensor operator *(float c, Tensor a) => a.Mul(c);
    public static Tensor operator /(Tensor a, float c) => a.Div(c);
    public static Tensor operator /(float c, Tensor a) => a.RDiv(c);
    public static Tensor operator -(Tensor a) => a.Neg();

    // ---------------------------------------------------------------- unary

    delegate void SpanMap(ReadOnlySpan<float> x, Span<float> y);
    // backward from input x, output y and incoming gradient g, writing dx
    delegate void SpanGrad(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> g, Span<float> dx);

    Tensor Unary(string op, SpanMap forward, SpanGrad backward)
    {
        var x = Contiguous();
        var r = Empty(ShapeArray);
        float[] xa = x.Data, ra = r.Data; int xo = x.Offset;
        Par.ForFlat(r.Size, (s0, n) => forward(xa.AsSpan(xo + s0, n), ra.AsSpan(s0, n)));
        if (!NeedsGrad(x)) return r;
        return Record(r, op, (g, s) =>
        {
            s.Target(0, out float beta);
            // spans cannot be captured by the parallel body, so work on the arrays behind them
            var target = s.TargetTensor(0);
            float[] dx = beta == 0f ? target.Data : GC.AllocateUninitializedArray<float>(ra.Length);
            int dxo = beta == 0f ? target.Offset : 0;
            float[] ga = g.Data; int go = g.Offset;
            Par.ForFlat(ra.Length, (s0, n) => backward(xa.AsSpan(xo + s0, n), ra.AsSpan(s0, n), ga.AsSpan(go + s0, n), dx.AsSpan(dxo + s0, n)));
            if (beta != 0f) { var acc = target.AsSpan(); TP.Add(acc, dx.AsSpan(0, ra.Length), acc); }
        }, x);
    }

    public Tensor Neg() => Unary("Neg", static (x, y) => TP.Negate(x, y), static (x, y, g, dx) => TP.Negate(g, dx));
    public Tensor Exp() => Unary("Exp", static (x, y) => TP.Exp(x, y), static (x, y, g, dx) => TP.Multiply(g, y, dx));
    public Tensor Log() => Unary("Log", static (x, y) => TP.Log(x, y), static (x, y, g, dx) => TP.Divide(g, x, dx));
    public Tensor Sqrt() => Unary("Sqrt", static (x, y) => TP.Sqrt(x, y), static (x, y, g, dx) =>
    {
        // d√x = 1 / (2√x)
        TP.Divide(g, y, dx); TP.Multiply(dx, 0.5f, dx);
    });
    public Tensor Abs() => Unary("Abs", static (x, y) => TP.Abs(x, y), static (x, y, g, dx) =>
    {
        for (int i = 0; i < x.Length; i++) dx[i] = x[i] > 0 ? g[i] : x[i] < 0 ? -g[i] : 0f;
    });
    public Tensor Square() => Unary("Square", static (x, y) => TP.Multiply(x, x, y), static (x, y, g, dx) =>
    {
        TP.Multiply(g, x, dx); TP.Multiply(dx, 2f, dx);
    });

    public Tensor Pow(float p) => Unary("Pow", (x, y) => TP.Pow(x, p, y), (x, y, g, dx) =>
    {
        for (int i = 0; i < x.Length; i++) dx[i] = g[i] * p * MathF.Pow(x[i], p - 1f);
    });

    public Tensor Sigmoid() => Unary("Sigmoid", static (x, y) => TP.Sigmoid(x, y), static (x, y, g, dx) =>
    {
        for (int i = 0; i < x.Length; i++) dx[i] = g[i] * y[i] * (1f - y[i]);
    });

    public Tensor Tanh() => Unary("Tanh", static (x, y) => Activations.Tanh(x, y), static (x, y, g, dx) => Activations.TanhBackward(y, g, dx));
    public Tensor Relu() => Unary("Relu", static (x, y) => Activations.Relu(x, y), static (x, y, g, dx) => Activations.ReluBackward(x, g, dx));

    /// <summary>Exact (erf) GELU as BERT: x·Φ(x).</summary>
    public Tensor Gelu() => Unary("Gelu", static (x, y) => Activations.GeluErf(x, y), static (x, y, g, dx) => Activations.GeluErfBackward(x, g, dx));

    /// <summary>tanh-approximate GELU ("gelu_new" / "gelu_pytorch_tanh").</summary>
    public Tensor GeluTanh() => Unary("GeluTanh", static (x, y) => Activations.GeluTanh(x, y), static (x, y, g, dx) => Activations.GeluTanhBackward(x, g, dx));

    /// <summary>min(max(x, min), max); the gradient passes where min ≤ x ≤ max.</summary>
    public Tensor Clamp(float min, float max)
    {
        if (min > max) throw new ArgumentException($"Clamp: min {min} exceeds max {max}.");
        return Unary("Clamp", (x, y) => { TP.Max(x, min, y); TP.Min(y, max, y); }, (x, y, g, dx) =>
        {
            for (int i = 0; i < x.Length; i++) dx[i] = x[i] >= min && x[i] <= max ? g[i] : 0f;
        });
    }
}
