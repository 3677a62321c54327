// Depthwise convolution (one kH×kW filter per channel, depth multiplier 1), vectorised over channels:
// NHWC keeps a pixel's channels contiguous, so each tap is one SIMD16 multiply-add per 16 channels
// (then a scalar tail). input (N, H, W, C), weight (kH, kW, C, 1), bias (C) → output (N, OH, OW, C).
// References: Reference.depthwiseForward / depthwiseBackward. The geometry is a ConvGeometry with
// filters == channels.

@_spi(Kernels) public enum DepthwiseKernels {
    /// The in-image taps of output (oh, ow): kernel rows r0..<r1 and columns c0..<c1, and the input
    /// pixel (ih0, iw0) that tap (0, 0) would read.
    @inlinable @inline(__always)
    static func taps(_ g: ConvGeometry, _ oh: Int, _ ow: Int) -> (r0: Int, r1: Int, c0: Int, c1: Int, ih0: Int, iw0: Int) {
        let ih0 = oh * g.strideHeight - g.padTop, iw0 = ow * g.strideWidth - g.padLeft
        return (max(0, -ih0), min(g.kernelHeight, g.height - ih0), max(0, -iw0), min(g.kernelWidth, g.width - iw0), ih0, iw0)
    }

    /// Output = bias + Σ in-image taps x · w per channel; ReLU if g.relu.
    @inlinable @inline(__always)
    public static func forward(_ g: ConvGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let C = g.channels, W = g.width, kw = g.kernelWidth
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth {
                let t = taps(g, oh, ow)
                let o = y + (oh * g.outWidth + ow) * C
                var c = 0
                while c + 16 <= C {
                    var acc = load16(bias + c)
                    for r in t.r0..<t.r1 {
                        let px = x + ((t.ih0 + r) * W + t.iw0) * C + c, wp = weight + r * kw * C + c
                        for q in t.c0..<t.c1 { acc.addProduct(load16(px + q * C), load16(wp + q * C)) }
                    }
                    if g.relu { acc = relu(acc) }
                    store16(acc, o + c)
                    c += 16
                }
                while c < C {
                    var acc = bias[c]
                    for r in t.r0..<t.r1 {
                        for q in t.c0..<t.c1 { acc += x[((t.ih0 + r) * W + t.iw0 + q) * C + c] * weight[(r * kw + q) * C + c] }
                    }
                    o[c] = g.relu ? max(acc, 0) : acc
                    c += 1
                }
            }}
        }
    }

    /// dOutput (N, OH, OW, C) w.r.t. the pre-activation (the ReLU mask already applied). dWeight += Σ x · dOut,
    /// dBias += Σ dOut, dInput (if given) = Σ w · dOut over the outputs each pixel feeds (written).
    @inlinable @inline(__always)
    public static func backward(_ g: ConvGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                dOutput: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>,
                                dInput: UnsafeMutablePointer<Float>?) {
        let C = g.channels, W = g.width, kw = g.kernelWidth
        if let dInput { dInput.update(repeating: 0, count: n * g.inputSize) }
        for b in 0..<n {
            let x = input + b * g.inputSize, dy = dOutput + b * g.outputSize
            let dx = dInput.map { $0 + b * g.inputSize }
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth {
                let t = taps(g, oh, ow)
                let d0 = dy + (oh * g.outWidth + ow) * C
                var c = 0
                while c + 16 <= C {
                    let d = load16(d0 + c)
                    store16(load16(dBias + c) + d, dBias + c)
                    for r in t.r0..<t.r1 {
                        let pixel = ((t.ih0 + r) * W + t.iw0) * C + c, tap = r * kw * C + c
                        for q in t.c0..<t.c1 {
                            let gw = dWeight + tap + q * C
                            store16(load16(gw).addingProduct(load16(x + pixel + q * C), d), gw)
                            if let dx {
                                let gx = dx + pixel + q * C
                                store16(load16(gx).addingProduct(load16(weight + tap + q * C), d), gx)
                            }
                        }
                    }
                    c += 16
                }
                while c < C {
                    let d = d0[c]
                    dBias[c] += d
                    for r in t.r0..<t.r1 {
                        for q in t.c0..<t.c1 {
                            let xi = ((t.ih0 + r) * W + t.iw0 + q) * C + c, wi = (r * kw + q) * C + c
                            dWeight[wi] += x[xi] * d
                            dx?[xi] += weight[wi] * d
                        }
                    }
                    c += 1
                }
            }}
        }
    }
}
