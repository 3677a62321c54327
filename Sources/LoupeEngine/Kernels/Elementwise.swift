// Element-wise kernels: ReLU backward and the optimizer step.

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
