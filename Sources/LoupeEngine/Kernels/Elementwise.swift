// Element-wise kernels: activations (forward and backward), ReLU backward and the optimizer step.
import Glibc

@_spi(Kernels) public enum ElementwiseKernels {
    /// gradient[i] = 0 where output[i] <= 0 (ReLU outputs), in place.
    @inlinable @inline(__always)
    public static func reluBackward(count: Int, output: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>) {
        let zero = F16(repeating: 0)
        var i = 0
        while i + 16 <= count {
            let g = load16(gradient + i)
            store16(keep(greaterMask(load16(output + i), zero), g), gradient + i)
            i += 16
        }
        while i < count { if !(output[i] > 0) { gradient[i] = 0 }; i += 1 }
    }

    /// y = f(x) in SIMD16 blocks (the tail with libm). Sigmoid and tanh use exp16 (a vector expf,
    /// relative error ≤ 2e-7): tanh x = 1 − 2 / (e^{2x} + 1), absolute error ≤ ~2e-7.
    @inlinable @inline(__always)
    public static func activationForward(_ f: ActivationFunction, count: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        var i = 0
        switch f {
        case .relu:
            while i + 16 <= count { store16(relu(load16(x + i)), y + i); i += 16 }
            while i < count { y[i] = x[i] > 0 ? x[i] : 0; i += 1 }
        case let .leakyRelu(alpha):
            let zero = F16(repeating: 0)
            while i + 16 <= count {
                let v = load16(x + i)
                store16(floats(select(greaterMask(v, zero), bits(v), bits(v * alpha))), y + i)
                i += 16
            }
            while i < count { y[i] = x[i] > 0 ? x[i] : alpha * x[i]; i += 1 }
        case let .clip(lo, hi):
            let l = F16(repeating: lo), h = F16(repeating: hi)
            while i + 16 <= count {
                let v = load16(x + i)
                let below = floats(select(greaterMask(v, l), bits(v), bits(l)))       // max(v, lo)
                store16(floats(select(greaterMask(below, h), bits(h), bits(below))), y + i)   // min(·, hi)
                i += 16
            }
            while i < count { y[i] = min(max(x[i], lo), hi); i += 1 }
        case .sigmoid:
            let one = F16(repeating: 1)
            while i + 16 <= count { store16(one / (one + exp16(-load16(x + i))), y + i); i += 16 }
            while i < count { y[i] = 1 / (1 + expf(-x[i])); i += 1 }
        case .tanh:
            let one = F16(repeating: 1), two = F16(repeating: 2)
            while i + 16 <= count { store16(one - two / (exp16(load16(x + i) * 2) + one), y + i); i += 16 }
            while i < count { y[i] = tanhf(x[i]); i += 1 }
        }
    }

    /// dX = dY · f′(x), f′ from the outputs y (see Reference.activationBackward).
    @inlinable @inline(__always)
    public static func activationBackward(_ f: ActivationFunction, count: Int, y: UnsafePointer<Float>, dY: UnsafePointer<Float>,
                                          dX: UnsafeMutablePointer<Float>) {
        var i = 0
        let zero = F16(repeating: 0), one = F16(repeating: 1)
        switch f {
        case .relu:
            while i + 16 <= count { store16(keep(greaterMask(load16(y + i), zero), load16(dY + i)), dX + i); i += 16 }
            while i < count { dX[i] = y[i] > 0 ? dY[i] : 0; i += 1 }
        case let .leakyRelu(alpha):
            while i + 16 <= count {
                let d = load16(dY + i)
                store16(floats(select(greaterMask(load16(y + i), zero), bits(d), bits(d * alpha))), dX + i)
                i += 16
            }
            while i < count { dX[i] = y[i] > 0 ? dY[i] : alpha * dY[i]; i += 1 }
        case let .clip(lo, hi):
            let l = F16(repeating: lo), h = F16(repeating: hi)
            while i + 16 <= count {
                let v = load16(y + i)
                store16(keep(greaterMask(v, l) & greaterMask(h, v), load16(dY + i)), dX + i)
                i += 16
            }
            while i < count { dX[i] = y[i] > lo && y[i] < hi ? dY[i] : 0; i += 1 }
        case .sigmoid:
            while i + 16 <= count { let v = load16(y + i); store16(load16(dY + i) * (v * (one - v)), dX + i); i += 16 }
            while i < count { dX[i] = dY[i] * (y[i] * (1 - y[i])); i += 1 }
        case .tanh:
            while i + 16 <= count { let v = load16(y + i); store16(load16(dY + i) * (one - v * v), dX + i); i += 16 }
            while i < count { dX[i] = dY[i] * (1 - y[i] * y[i]); i += 1 }
        }
    }
}

/// Flat optimizer step over parameters [first, first + count): g = Σ shard gradients (in shard order)
/// + l2x2 · mask · w, then Adam (Keras form) or SGD with momentum.
@_spi(Kernels) public struct OptimizerStep: Sendable {
    public var rule: OptimizerRule
    public var learningRate: Float
    public var l2x2: Float
    /// Adam's bias-corrected step size lr·√(1-β2ᵗ)/(1-β1ᵗ) (unused for SGD).
    public var alpha: Float
    public init(rule: OptimizerRule, learningRate: Float, l2x2: Float, alpha: Float) {
        self.rule = rule; self.learningRate = learningRate; self.l2x2 = l2x2; self.alpha = alpha
    }

    @inlinable @inline(__always)
    public func apply(first: Int, count: Int, gradients: UnsafePointer<UnsafeMutablePointer<Float>>, shards: Int,
                       weights w: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>,
                       moment1 m: UnsafeMutablePointer<Float>, moment2 v: UnsafeMutablePointer<Float>) {
        var i = first
        let end = first + count
        let l2v = F16(repeating: l2x2)
        let useL2 = l2x2 != 0   // the mask stream is skipped when there is no L2 term
        switch rule {
        case let .adam(b1, b2, eps):
            let c1 = F16(repeating: 1 - b1), c2 = F16(repeating: 1 - b2), av = F16(repeating: alpha), ev = F16(repeating: eps)
            while i + 16 <= end {
                var g = load16(gradients[0] + i)
                for s in 1..<max(shards, 1) { g += load16(gradients[s] + i) }
                let wv = load16(w + i)
                if useL2 { g.addProduct(l2v * load16(mask + i), wv) }
                var mv = load16(m + i), vv = load16(v + i)
                mv.addProduct(g - mv, c1)
                vv.addProduct(g * g - vv, c2)
                store16(mv, m + i); store16(vv, v + i)
                store16(wv - mv * av / (squareRootApprox(vv) + ev), w + i)
                i += 16
            }
            while i < end {
                var g = gradients[0][i]
                for s in 1..<max(shards, 1) { g += gradients[s][i] }
                if useL2 { g = g.addingProduct(l2x2 * mask[i], w[i]) }
                m[i] = m[i].addingProduct(g - m[i], 1 - b1)
                v[i] = v[i].addingProduct(g * g - v[i], 1 - b2)
                w[i] = w[i] - m[i] * alpha / (v[i].squareRoot() + eps)
                i += 1
            }
        case let .sgd(momentum):
            let mu = F16(repeating: momentum), lr = F16(repeating: learningRate)
            while i + 16 <= end {
                var g = load16(gradients[0] + i)
                for s in 1..<max(shards, 1) { g += load16(gradients[s] + i) }
                let wv = load16(w + i)
                if useL2 { g.addProduct(l2v * load16(mask + i), wv) }
                let mv = mu * load16(m + i) - lr * g
                store16(mv, m + i)
                store16(wv + mv, w + i)
                i += 16
            }
            while i < end {
                var g = gradients[0][i]
                for s in 1..<max(shards, 1) { g += gradients[s][i] }
                if useL2 { g = g.addingProduct(l2x2 * mask[i], w[i]) }
                m[i] = momentum * m[i] - learningRate * g
                w[i] += m[i]
                i += 1
            }
        }
    }
}
