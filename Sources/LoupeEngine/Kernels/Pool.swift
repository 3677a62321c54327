// Max and average pooling with any window, stride and padding, vectorised over channels
// (SIMD16 blocks of C, then a scalar tail). Layout: input (N, H, W, C) → output (N, OH, OW, C).
// References: Reference.maxPool2dForward/Backward, Reference.avgPool2dForward/Backward.

@_spi(Kernels) public enum PoolKernels {
    /// argmax (N, OH, OW, C) Int32 = the input pixel ih·W + iw of the first maximum (row-major window order);
    /// nil: the values only (inference), without the index bookkeeping on the 2×2 path.
    @inlinable @inline(__always)
    public static func maxForward(_ g: Pool2DGeometry, n: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                  argmax: UnsafeMutablePointer<Int32>?) {
        let C = g.channels, W = g.width
        if g.kernelHeight == 2 && g.kernelWidth == 2 && g.strideHeight == 2 && g.strideWidth == 2 && g.padTop == 0 && g.padLeft == 0
            && C % 16 == 0 && 2 * g.outHeight <= g.height && 2 * g.outWidth <= g.width {
            if let argmax { maxForward2x2(g, n: n, input: input, output: output, argmax: argmax) }
            else { maxForward2x2Values(g, n: n, input: input, output: output) }
            return
        }
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize, am = argmax.map { $0 + b * g.outputSize }
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth {
                let (h0, h1, w0, w1) = g.window(oh, ow)
                let o = (oh * g.outWidth + ow) * C
                var c = 0
                while c + 16 <= C {
                    var best = F16(repeating: -.infinity)
                    var index = I16(repeating: Int32(h0 * W + w0))
                    for ih in h0..<h1 { for iw in w0..<w1 {
                        let pixel = ih * W + iw
                        let v = load16(x + pixel * C + c)
                        let m = greaterMask(v, best)
                        index = select(m, I16(repeating: Int32(pixel)), index)
                        best = floats(select(m, bits(v), bits(best)))
                    }}
                    store16(best, y + o + c)
                    if let am { UnsafeMutableRawPointer(am + o + c).storeBytes(of: index, as: I16.self) }
                    c += 16
                }
                while c < C {
                    var best = -Float.infinity, bestIndex = h0 * W + w0
                    for ih in h0..<h1 { for iw in w0..<w1 {
                        let v = x[(ih * W + iw) * C + c]
                        if v > best { best = v; bestIndex = ih * W + iw }
                    }}
                    y[o + c] = best
                    if let am { am[o + c] = Int32(bestIndex) }
                    c += 1
                }
            }}
        }
    }

    /// maxForward for the common 2×2, stride-2, unpadded window over whole SIMD16 channel blocks: the same
    /// compare-and-select steps in the same window order, unrolled (perf: the generic loops were 16% of the
    /// 32×32×3 CNN's inference).
    @inlinable @inline(__always)
    static func maxForward2x2(_ g: Pool2DGeometry, n: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                              argmax: UnsafeMutablePointer<Int32>) {
        let C = g.channels, W = g.width, OW = g.outWidth
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize, am = argmax + b * g.outputSize
            for oh in 0..<g.outHeight { for ow in 0..<OW {
                let p0 = Int32(2 * oh * W + 2 * ow), p1 = p0 + 1, p2 = p0 + Int32(W), p3 = p2 + 1
                let src = x + Int(p0) * C, o = (oh * OW + ow) * C
                for c in stride(from: 0, to: C, by: 16) {
                    var best = F16(repeating: -.infinity)
                    var index = I16(repeating: p0)
                    @inline(__always) func step(_ v: F16, _ pixel: Int32) {
                        let m = greaterMask(v, best)
                        index = select(m, I16(repeating: pixel), index)
                        best = floats(select(m, bits(v), bits(best)))
                    }
                    step(load16(src + c), p0); step(load16(src + C + c), p1)
                    step(load16(src + W * C + c), p2); step(load16(src + W * C + C + c), p3)
                    store16(best, y + o + c)
                    UnsafeMutableRawPointer(am + o + c).storeBytes(of: index, as: I16.self)
                }
            }}
        }
    }

    /// maxForward2x2 without the argmax (inference): best = the first window pixel, then each greater one replaces
    /// it in window order — the same values as maxForward2x2 (which starts from −∞ and keeps the first maximum).
    @inlinable @inline(__always)
    static func maxForward2x2Values(_ g: Pool2DGeometry, n: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let C = g.channels, W = g.width, OW = g.outWidth
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize
            for oh in 0..<g.outHeight { for ow in 0..<OW {
                let src = x + (2 * oh * W + 2 * ow) * C, o = (oh * OW + ow) * C
                for c in stride(from: 0, to: C, by: 16) {
                    store16(maximum(maximum(maximum(load16(src + c), load16(src + C + c)), load16(src + W * C + c)),
                                    load16(src + W * C + C + c)), y + o + c)
                }
            }}
        }
    }

    /// dInput = 0, plus dOutput added at each window's argmax (a scatter: windows may overlap).
    @inlinable @inline(__always)
    public static func maxBackward(_ g: Pool2DGeometry, n: Int, dOutput: UnsafePointer<Float>, argmax: UnsafePointer<Int32>,
                                   dInput: UnsafeMutablePointer<Float>) {
        let C = g.channels, cells = g.outHeight * g.outWidth
        dInput.update(repeating: 0, count: n * g.inputSize)
        for b in 0..<n {
            let dy = dOutput + b * g.outputSize, am = argmax + b * g.outputSize, dx = dInput + b * g.inputSize
            for o in 0..<cells {
                let row = o * C
                for c in 0..<C { dx[Int(am[row + c]) * C + c] += dy[row + c] }
            }
        }
    }

    /// Mean over the in-image cells of each window (count_include_pad = 0).
    @inlinable @inline(__always)
    public static func avgForward(_ g: Pool2DGeometry, n: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let C = g.channels, W = g.width
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth {
                let (h0, h1, w0, w1) = g.window(oh, ow)
                let scale = 1 / Float((h1 - h0) * (w1 - w0))
                let o = (oh * g.outWidth + ow) * C
                var c = 0
                while c + 16 <= C {
                    var s = F16(repeating: 0)
                    for ih in h0..<h1 { for iw in w0..<w1 { s += load16(x + (ih * W + iw) * C + c) } }
                    store16(s * scale, y + o + c)
                    c += 16
                }
                while c < C {
                    var s: Float = 0
                    for ih in h0..<h1 { for iw in w0..<w1 { s += x[(ih * W + iw) * C + c] } }
                    y[o + c] = s * scale
                    c += 1
                }
            }}
        }
    }

    /// dInput = Σ over the windows containing a cell of dOutput / (in-image cells of that window).
    @inlinable @inline(__always)
    public static func avgBackward(_ g: Pool2DGeometry, n: Int, dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>) {
        let C = g.channels, W = g.width
        dInput.update(repeating: 0, count: n * g.inputSize)
        for b in 0..<n {
            let dy = dOutput + b * g.outputSize, dx = dInput + b * g.inputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth {
                let (h0, h1, w0, w1) = g.window(oh, ow)
                let scale = 1 / Float((h1 - h0) * (w1 - w0))
                let o = (oh * g.outWidth + ow) * C
                var c = 0
                while c + 16 <= C {
                    let d = load16(dy + o + c) * scale
                    for ih in h0..<h1 { for iw in w0..<w1 { let p = dx + (ih * W + iw) * C + c; store16(load16(p) + d, p) } }
                    c += 16
                }
                while c < C {
                    let d = dy[o + c] * scale
                    for ih in h0..<h1 { for iw in w0..<w1 { dx[(ih * W + iw) * C + c] += d } }
                    c += 1
                }
            }}
        }
    }
}
