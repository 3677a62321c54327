import Glibc

// Plain-loop reference kernels. They define what each layer computes; the SIMD kernels are
// tested against them. Parameter gradients are accumulated (+=); activation gradients
// (dInput) are written (=), because each is consumed exactly once.

/// Geometry of a convolution in NHWC / HWIO: kH×kW kernel, stride (sH, sW), zero padding.
/// A depthwise convolution (StageOp.depthwiseConv) uses the same geometry with filters = channels.
@_spi(Kernels) public struct ConvGeometry: Sendable, Equatable {
    public var height, width, channels: Int      // input (H, W, C)
    public var filters: Int                      // K
    public var kernelHeight, kernelWidth: Int    // kH, kW
    public var padTop, padLeft: Int              // 0 for valid (bottom/right padding follows from the output size)
    public var outHeight, outWidth: Int          // (OH, OW)
    public var relu: Bool
    public var strideHeight, strideWidth: Int    // sH, sW
    public init(height: Int, width: Int, channels: Int, filters: Int, kernelHeight: Int, kernelWidth: Int, padTop: Int, padLeft: Int,
                outHeight: Int, outWidth: Int, relu: Bool, strideHeight: Int = 1, strideWidth: Int = 1) {
        self.height = height; self.width = width; self.channels = channels; self.filters = filters
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.padTop = padTop; self.padLeft = padLeft; self.outHeight = outHeight; self.outWidth = outWidth; self.relu = relu
        self.strideHeight = strideHeight; self.strideWidth = strideWidth
    }
    /// A square k×k kernel with one stride s.
    public init(height: Int, width: Int, channels: Int, filters: Int, kernel: Int, padTop: Int, padLeft: Int,
                outHeight: Int, outWidth: Int, relu: Bool, stride: Int = 1) {
        self.init(height: height, width: width, channels: channels, filters: filters, kernelHeight: kernel, kernelWidth: kernel,
                  padTop: padTop, padLeft: padLeft, outHeight: outHeight, outWidth: outWidth, relu: relu, strideHeight: stride, strideWidth: stride)
    }
    /// The side of a square kernel. Only the fused conv + pool kernels (ConvPoolGeometry) use it; compile
    /// builds those for square kernels with stride 1 only. General code uses kernelHeight and kernelWidth.
    @inlinable public var kernel: Int { kernelHeight }
    /// One stride for square geometries (see `kernel`); general code uses strideHeight and strideWidth.
    @inlinable public var stride: Int { strideHeight }
    @inlinable public var isSquare: Bool { kernelHeight == kernelWidth && strideHeight == strideWidth }
    @inlinable public var inputSize: Int { height * width * channels }
    @inlinable public var outputSize: Int { outHeight * outWidth * filters }
    /// Taps of one output value per input channel: kH·kW.
    @inlinable public var taps: Int { kernelHeight * kernelWidth }
    @inlinable public var weightCount: Int { taps * channels * filters }
    /// Weights of the depthwise convolution with this geometry: (kH, kW, C, 1).
    @inlinable public var depthwiseWeightCount: Int { taps * channels }
    /// Floats of one image's im2col matrix (OH·OW rows × kH·kW·C columns).
    @inlinable public var columnSize: Int { outHeight * outWidth * taps * channels }
    /// A 1×1, stride-1, unpadded convolution is a dense layer over the pixels: no im2col needed.
    @inlinable public var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideHeight == 1 && strideWidth == 1 && padTop == 0 && padLeft == 0
    }
    /// Images whose im2col matrices are built together (about 1 MB of columns, at least one image).
    @inlinable public var imagesPerColumnBlock: Int { max(1, (1 << 18) / max(1, columnSize)) }
}

/// Geometry of a max or average pooling window in NHWC: kh×kw window, stride (sH, sW), padding
/// (padded cells never win a max and are not counted in a mean). Global average pooling is the
/// H×W window.
@_spi(Kernels) public struct Pool2DGeometry: Sendable, Equatable {
    public var height, width, channels: Int
    public var kernelHeight, kernelWidth: Int
    public var strideHeight, strideWidth: Int
    public var padTop, padLeft: Int
    public var outHeight, outWidth: Int
    public init(height: Int, width: Int, channels: Int, kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int,
                padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int) {
        self.height = height; self.width = width; self.channels = channels
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth; self.strideHeight = strideHeight; self.strideWidth = strideWidth
        self.padTop = padTop; self.padLeft = padLeft; self.outHeight = outHeight; self.outWidth = outWidth
    }
    /// One stride s in both directions.
    public init(height: Int, width: Int, channels: Int, kernelHeight: Int, kernelWidth: Int, stride: Int,
                padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int) {
        self.init(height: height, width: width, channels: channels, kernelHeight: kernelHeight, kernelWidth: kernelWidth,
                  strideHeight: stride, strideWidth: stride, padTop: padTop, padLeft: padLeft, outHeight: outHeight, outWidth: outWidth)
    }
    @inlinable public var inputSize: Int { height * width * channels }
    @inlinable public var outputSize: Int { outHeight * outWidth * channels }
    /// The window of output (oh, ow) clipped to the image: rows h0..<h1, columns w0..<w1.
    @inlinable public func window(_ oh: Int, _ ow: Int) -> (h0: Int, h1: Int, w0: Int, w1: Int) {
        let top = oh * strideHeight - padTop, left = ow * strideWidth - padLeft
        return (max(top, 0), min(top + kernelHeight, height), max(left, 0), min(left + kernelWidth, width))
    }
}

/// An element-wise activation run as its own stage (ReLU after conv/dense is fused into them).
@_spi(Kernels) public enum ActivationFunction: Sendable, Equatable {
    case relu
    case leakyRelu(alpha: Float)
    case sigmoid
    case tanh
    case clip(min: Float, max: Float)
}

@_spi(Kernels) public struct PoolGeometry: Sendable, Equatable {
    public var height, width, channels, pool: Int
    public init(height: Int, width: Int, channels: Int, pool: Int) {
        self.height = height; self.width = width; self.channels = channels; self.pool = pool
    }
    @inlinable public var outHeight: Int { height / pool }
    @inlinable public var outWidth: Int { width / pool }
    @inlinable public var inputSize: Int { height * width * channels }
    @inlinable public var outputSize: Int { outHeight * outWidth * channels }
}

package enum Reference {
    /// input (N, H, W, C), weight (kH, kW, C, K), bias (K) → output (N, OH, OW, K); ReLU if g.relu.
    package static func convForward(_ g: ConvGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for f in 0..<g.filters {
                var acc = bias[f]
                for kh in 0..<g.kernelHeight { for kw in 0..<g.kernelWidth {
                    let ih = oh * g.strideHeight + kh - g.padTop, iw = ow * g.strideWidth + kw - g.padLeft
                    if ih < 0 || ih >= g.height || iw < 0 || iw >= g.width { continue }
                    for c in 0..<g.channels {
                        acc += x[(ih * g.width + iw) * g.channels + c] * weight[((kh * g.kernelWidth + kw) * g.channels + c) * g.filters + f]
                    }
                }}
                y[(oh * g.outWidth + ow) * g.filters + f] = g.relu ? max(acc, 0) : acc
            }}}
        }
    }

    /// dOutput (N, OH, OW, K) is the gradient w.r.t. the conv's pre-activation (ReLU mask already applied).
    /// dWeight += Σ x ⊗ dOut, dBias += Σ dOut, dInput (optional) = full correlation with the kernel.
    package static func convBackward(_ g: ConvGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                     dOutput: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                                     dBias: UnsafeMutablePointer<Float>, dInput: UnsafeMutablePointer<Float>?) {
        for b in 0..<n {
            let x = input + b * g.inputSize, dy = dOutput + b * g.outputSize
            let dx = dInput.map { $0 + b * g.inputSize }
            dx?.update(repeating: 0, count: g.inputSize)
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for f in 0..<g.filters {
                let d = dy[(oh * g.outWidth + ow) * g.filters + f]
                dBias[f] += d
                for kh in 0..<g.kernelHeight { for kw in 0..<g.kernelWidth {
                    let ih = oh * g.strideHeight + kh - g.padTop, iw = ow * g.strideWidth + kw - g.padLeft
                    if ih < 0 || ih >= g.height || iw < 0 || iw >= g.width { continue }
                    for c in 0..<g.channels {
                        let xi = (ih * g.width + iw) * g.channels + c
                        let wi = ((kh * g.kernelWidth + kw) * g.channels + c) * g.filters + f
                        dWeight[wi] += x[xi] * d
                        dx?[xi] += weight[wi] * d
                    }
                }}
            }}}
        }
    }

    /// Grouped convolution: `g` is one group's geometry (channels C/G, filters K/G); input (N, H, W, C),
    /// weight (kH, kW, C/G, K), bias (K) → output (N, OH, OW, K). Filter f sees input channels
    /// [(f / (K/G))·C/G, … + C/G) only; ReLU if g.relu.
    package static func groupedConvForward(_ g: ConvGeometry, groups: Int, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                           bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let cg = g.channels, c = cg * groups, k = g.filters * groups
        for b in 0..<n {
            let x = input + b * g.height * g.width * c, y = output + b * g.outHeight * g.outWidth * k
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for f in 0..<k {
                let first = f / g.filters * cg
                var acc = bias[f]
                for kh in 0..<g.kernelHeight { for kw in 0..<g.kernelWidth {
                    let ih = oh * g.strideHeight + kh - g.padTop, iw = ow * g.strideWidth + kw - g.padLeft
                    if ih < 0 || ih >= g.height || iw < 0 || iw >= g.width { continue }
                    for i in 0..<cg {
                        acc += x[(ih * g.width + iw) * c + first + i] * weight[((kh * g.kernelWidth + kw) * cg + i) * k + f]
                    }
                }}
                y[(oh * g.outWidth + ow) * k + f] = g.relu ? max(acc, 0) : acc
            }}}
        }
    }

    /// dOutput (N, OH, OW, K) w.r.t. the pre-activation. dWeight += Σ x ⊗ dOut, dBias += Σ dOut,
    /// dInput (optional) = Σ w · dOut over the outputs each input feeds (written).
    package static func groupedConvBackward(_ g: ConvGeometry, groups: Int, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                            dOutput: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                                            dBias: UnsafeMutablePointer<Float>, dInput: UnsafeMutablePointer<Float>?) {
        let cg = g.channels, c = cg * groups, k = g.filters * groups, inSize = g.height * g.width * c
        for b in 0..<n {
            let x = input + b * inSize, dy = dOutput + b * g.outHeight * g.outWidth * k
            let dx = dInput.map { $0 + b * inSize }
            dx?.update(repeating: 0, count: inSize)
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for f in 0..<k {
                let first = f / g.filters * cg
                let d = dy[(oh * g.outWidth + ow) * k + f]
                dBias[f] += d
                for kh in 0..<g.kernelHeight { for kw in 0..<g.kernelWidth {
                    let ih = oh * g.strideHeight + kh - g.padTop, iw = ow * g.strideWidth + kw - g.padLeft
                    if ih < 0 || ih >= g.height || iw < 0 || iw >= g.width { continue }
                    for i in 0..<cg {
                        let xi = (ih * g.width + iw) * c + first + i, wi = ((kh * g.kernelWidth + kw) * cg + i) * k + f
                        dWeight[wi] += x[xi] * d
                        dx?[xi] += weight[wi] * d
                    }
                }}
            }}}
        }
    }

    /// Depthwise: input (N, H, W, C), weight (kH, kW, C, 1), bias (C) → output (N, OH, OW, C) with
    /// output channel c = bias[c] + Σ taps x[ih, iw, c] · weight[kh, kw, c]; ReLU if g.relu. g.filters == g.channels.
    package static func depthwiseForward(_ g: ConvGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                         bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let C = g.channels
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for c in 0..<C {
                var acc = bias[c]
                for kh in 0..<g.kernelHeight { for kw in 0..<g.kernelWidth {
                    let ih = oh * g.strideHeight + kh - g.padTop, iw = ow * g.strideWidth + kw - g.padLeft
                    if ih < 0 || ih >= g.height || iw < 0 || iw >= g.width { continue }
                    acc += x[(ih * g.width + iw) * C + c] * weight[(kh * g.kernelWidth + kw) * C + c]
                }}
                y[(oh * g.outWidth + ow) * C + c] = g.relu ? max(acc, 0) : acc
            }}}
        }
    }

    /// Depthwise backward; dOutput (N, OH, OW, C) w.r.t. the pre-activation. dWeight += Σ x · dOut per tap and
    /// channel, dBias += Σ dOut, dInput (optional, written) = Σ weight · dOut over the outputs each pixel feeds.
    package static func depthwiseBackward(_ g: ConvGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                          dOutput: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                                          dBias: UnsafeMutablePointer<Float>, dInput: UnsafeMutablePointer<Float>?) {
        let C = g.channels
        for b in 0..<n {
            let x = input + b * g.inputSize, dy = dOutput + b * g.outputSize
            let dx = dInput.map { $0 + b * g.inputSize }
            dx?.update(repeating: 0, count: g.inputSize)
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for c in 0..<C {
                let d = dy[(oh * g.outWidth + ow) * C + c]
                dBias[c] += d
                for kh in 0..<g.kernelHeight { for kw in 0..<g.kernelWidth {
                    let ih = oh * g.strideHeight + kh - g.padTop, iw = ow * g.strideWidth + kw - g.padLeft
                    if ih < 0 || ih >= g.height || iw < 0 || iw >= g.width { continue }
                    let xi = (ih * g.width + iw) * C + c, wi = (kh * g.kernelWidth + kw) * C + c
                    dWeight[wi] += x[xi] * d
                    dx?[xi] += weight[wi] * d
                }}
            }}}
        }
    }

    /// input (N, H, W, C) → output (N, OH, OW, C), argmax = index (dh·pool + dw) of the first maximum.
    package static func maxPoolForward(_ g: PoolGeometry, n: Int, input: UnsafePointer<Float>,
                                       output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>) {
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize, a = argmax + b * g.outputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for c in 0..<g.channels {
                var best = -Float.infinity, bestIndex = 0
                for dh in 0..<g.pool { for dw in 0..<g.pool {
                    let v = x[((oh * g.pool + dh) * g.width + ow * g.pool + dw) * g.channels + c]
                    if v > best { best = v; bestIndex = dh * g.pool + dw }
                }}
                let o = (oh * g.outWidth + ow) * g.channels + c
                y[o] = best; a[o] = Int32(bestIndex)
            }}}
        }
    }

    /// dInput = 0 except dOutput routed to each window's argmax.
    package static func maxPoolBackward(_ g: PoolGeometry, n: Int, dOutput: UnsafePointer<Float>,
                                        argmax: UnsafePointer<Int32>, dInput: UnsafeMutablePointer<Float>) {
        dInput.update(repeating: 0, count: n * g.inputSize)
        for b in 0..<n {
            let dy = dOutput + b * g.outputSize, a = argmax + b * g.outputSize, dx = dInput + b * g.inputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for c in 0..<g.channels {
                let o = (oh * g.outWidth + ow) * g.channels + c
                let dh = Int(a[o]) / g.pool, dw = Int(a[o]) % g.pool
                dx[((oh * g.pool + dh) * g.width + ow * g.pool + dw) * g.channels + c] += dy[o]
            }}}
        }
    }

    /// Max pooling: input (N, H, W, C) → output (N, OH, OW, C); argmax = the input pixel ih·W + iw of
    /// the first maximum in row-major window order (padded cells are skipped); nil argmax: values only (inference).
    package static func maxPool2dForward(_ g: Pool2DGeometry, n: Int, input: UnsafePointer<Float>,
                                         output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?) {
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize, a = argmax.map { $0 + b * g.outputSize }
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for c in 0..<g.channels {
                let (h0, h1, w0, w1) = g.window(oh, ow)
                var best = -Float.infinity, bestIndex = h0 * g.width + w0
                for ih in h0..<h1 { for iw in w0..<w1 {
                    let v = x[(ih * g.width + iw) * g.channels + c]
                    if v > best { best = v; bestIndex = ih * g.width + iw }
                }}
                let o = (oh * g.outWidth + ow) * g.channels + c
                y[o] = best; a?[o] = Int32(bestIndex)
            }}}
        }
    }

    /// dInput = 0, plus each dOutput added at its window's argmax pixel (windows may overlap).
    package static func maxPool2dBackward(_ g: Pool2DGeometry, n: Int, dOutput: UnsafePointer<Float>,
                                          argmax: UnsafePointer<Int32>, dInput: UnsafeMutablePointer<Float>) {
        dInput.update(repeating: 0, count: n * g.inputSize)
        for b in 0..<n {
            let dy = dOutput + b * g.outputSize, a = argmax + b * g.outputSize, dx = dInput + b * g.inputSize
            for o in 0..<(g.outHeight * g.outWidth) { for c in 0..<g.channels {
                dx[Int(a[o * g.channels + c]) * g.channels + c] += dy[o * g.channels + c]
            }}
        }
    }

    /// Average pooling over the cells of each window inside the image (count_include_pad = 0).
    package static func avgPool2dForward(_ g: Pool2DGeometry, n: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for c in 0..<g.channels {
                let (h0, h1, w0, w1) = g.window(oh, ow)
                var s: Float = 0
                for ih in h0..<h1 { for iw in w0..<w1 { s += x[(ih * g.width + iw) * g.channels + c] } }
                y[(oh * g.outWidth + ow) * g.channels + c] = s * (1 / Float((h1 - h0) * (w1 - w0)))
            }}}
        }
    }

    /// dInput = Σ over the windows containing a cell of dOutput / (cells in that window).
    package static func avgPool2dBackward(_ g: Pool2DGeometry, n: Int, dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>) {
        dInput.update(repeating: 0, count: n * g.inputSize)
        for b in 0..<n {
            let dy = dOutput + b * g.outputSize, dx = dInput + b * g.inputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for c in 0..<g.channels {
                let (h0, h1, w0, w1) = g.window(oh, ow)
                let d = dy[(oh * g.outWidth + ow) * g.channels + c] * (1 / Float((h1 - h0) * (w1 - w0)))
                for ih in h0..<h1 { for iw in w0..<w1 { dx[(ih * g.width + iw) * g.channels + c] += d } }
            }}}
        }
    }

    /// y = f(x) element-wise.
    package static func activationForward(_ f: ActivationFunction, count: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            let v = x[i]
            switch f {
            case .relu: y[i] = v > 0 ? v : 0
            case let .leakyRelu(alpha): y[i] = v > 0 ? v : alpha * v
            case .sigmoid: y[i] = 1 / (1 + expf(-v))
            case .tanh: y[i] = tanhf(v)
            case let .clip(lo, hi): y[i] = min(max(v, lo), hi)
            }
        }
    }

    /// dX = dY · f′, with f′ computed from the outputs y: relu 1 where y > 0, leakyRelu 1 or alpha,
    /// sigmoid y(1 − y), tanh 1 − y², clip 1 strictly inside (min, max).
    package static func activationBackward(_ f: ActivationFunction, count: Int, y: UnsafePointer<Float>, dY: UnsafePointer<Float>,
                                           dX: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            let v = y[i]
            let d: Float
            switch f {
            case .relu: d = v > 0 ? 1 : 0
            case let .leakyRelu(alpha): d = v > 0 ? 1 : alpha
            case .sigmoid: d = v * (1 - v)
            case .tanh: d = 1 - v * v
            case let .clip(lo, hi): d = v > lo && v < hi ? 1 : 0
            }
            dX[i] = dY[i] * d
        }
    }

    /// x (N, in), weight (in, out), bias (out) → y (N, out); ReLU if relu.
    package static func denseForward(n: Int, inputs: Int, outputs: Int, relu: Bool, x: UnsafePointer<Float>,
                                     weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        for b in 0..<n { for j in 0..<outputs {
            var acc = bias[j]
            for i in 0..<inputs { acc += x[b * inputs + i] * weight[i * outputs + j] }
            y[b * outputs + j] = relu ? max(acc, 0) : acc
        }}
    }

    /// dY (N, out) w.r.t. pre-activation. dWeight += xᵀ·dY, dBias += Σ dY, dX (optional) = dY·weightᵀ.
    package static func denseBackward(n: Int, inputs: Int, outputs: Int, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                      dY: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                                      dBias: UnsafeMutablePointer<Float>, dX: UnsafeMutablePointer<Float>?) {
        for b in 0..<n {
            for j in 0..<outputs { dBias[j] += dY[b * outputs + j] }
            for i in 0..<inputs {
                let xi = x[b * inputs + i]
                var acc: Float = 0
                for j in 0..<outputs {
                    dWeight[i * outputs + j] += xi * dY[b * outputs + j]
                    acc += weight[i * outputs + j] * dY[b * outputs + j]
                }
                dX?[b * inputs + i] = acc
            }
        }
    }

    /// dX (N, in) = dY (N, out) · weightᵀ, written: the input gradient of a dense layer alone.
    package static func denseBackwardInput(n: Int, inputs: Int, outputs: Int, weight: UnsafePointer<Float>,
                                           dY: UnsafePointer<Float>, dX: UnsafeMutablePointer<Float>) {
        for b in 0..<n { for i in 0..<inputs {
            var acc: Float = 0
            for j in 0..<outputs { acc += weight[i * outputs + j] * dY[b * outputs + j] }
            dX[b * inputs + i] = acc
        }}
    }

    /// dPre = dOut where out > 0 else 0 (in place), for ReLU outputs.
    package static func reluBackward(count: Int, output: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>) {
        for i in 0..<count where !(output[i] > 0) { gradient[i] = 0 }
    }
}

/// Softmax of each row of logits (N, classes) into probabilities; numerically stable; exp is scalar.
package func softmaxRows(n: Int, classes: Int, logits: UnsafePointer<Float>, probabilities: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let z = logits + b * classes, p = probabilities + b * classes
        var m = -Float.infinity
        for j in 0..<classes { m = max(m, z[j]) }
        var s: Float = 0
        for j in 0..<classes { let e = expf(z[j] - m); p[j] = e; s += e }
        let inv = 1 / s
        for j in 0..<classes { p[j] *= inv }
    }
}

/// Softmax cross-entropy: writes dLogits = (p - onehot) · scale, returns (Σ loss, number correct).
/// Loss per row is logsumexp(z) - z[label], computed in Float with the max subtracted.
package func softmaxCrossEntropy(n: Int, classes: Int, logits: UnsafePointer<Float>, labels: UnsafePointer<UInt8>,
                                 scale: Float, dLogits: UnsafeMutablePointer<Float>) -> (loss: Double, correct: Int) {
    var loss: Double = 0, correct = 0
    for b in 0..<n {
        let z = logits + b * classes, d = dLogits + b * classes
        let label = Int(labels[b])
        var m = -Float.infinity, arg = 0
        for j in 0..<classes where z[j] > m { m = z[j]; arg = j }
        var s: Float = 0
        for j in 0..<classes { let e = expf(z[j] - m); d[j] = e; s += e }
        let inv = 1 / s
        for j in 0..<classes { d[j] = (d[j] * inv - (j == label ? 1 : 0)) * scale }
        loss += Double(logf(s) + m - z[label])
        if arg == label { correct += 1 }
    }
    return (loss, correct)
}

extension Reference {
    /// conv (+ ReLU) then max pooling, as Keras computes it; argmax is 255 where ReLU zeroed the output.
    package static func convPoolForward(_ g: ConvPoolGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                        bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>) {
        let conv = UnsafeMutablePointer<Float>.allocate(capacity: n * g.conv.outputSize)
        defer { conv.deallocate() }
        convForward(g.conv, n: n, input: input, weight: weight, bias: bias, output: conv)
        let pool = PoolGeometry(height: g.conv.outHeight, width: g.conv.outWidth, channels: g.conv.filters, pool: g.pool)
        maxPoolForward(pool, n: n, input: conv, output: output, argmax: argmax)
        if g.conv.relu { for i in 0..<(n * g.outputSize) where !(output[i] > 0) { argmax[i] = 255 } }
    }

    package static func convPoolBackward(_ g: ConvPoolGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                         dOutput: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, dWeight: UnsafeMutablePointer<Float>,
                                         dBias: UnsafeMutablePointer<Float>, dInput: UnsafeMutablePointer<Float>?) {
        let pool = PoolGeometry(height: g.conv.outHeight, width: g.conv.outWidth, channels: g.conv.filters, pool: g.pool)
        let routed = UnsafeMutablePointer<Float>.allocate(capacity: n * g.outputSize)
        let dConv = UnsafeMutablePointer<Float>.allocate(capacity: n * g.conv.outputSize)
        let index = UnsafeMutablePointer<Int32>.allocate(capacity: n * g.outputSize)
        defer { routed.deallocate(); dConv.deallocate(); index.deallocate() }
        for i in 0..<(n * g.outputSize) {
            routed[i] = argmax[i] == 255 ? 0 : dOutput[i]
            index[i] = argmax[i] == 255 ? 0 : argmax[i]
        }
        maxPoolBackward(pool, n: n, dOutput: routed, argmax: index, dInput: dConv)
        convBackward(g.conv, n: n, input: input, weight: weight, dOutput: dConv, dWeight: dWeight, dBias: dBias, dInput: dInput)
    }

    package static func optimizer(_ step: OptimizerStep, first: Int, count: Int, gradients: UnsafePointer<UnsafeMutablePointer<Float>>,
                                  shards: Int, weights w: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>,
                                  moment1 m: UnsafeMutablePointer<Float>, moment2 v: UnsafeMutablePointer<Float>) {
        for i in first..<(first + count) {
            var g: Float = 0
            for s in 0..<shards { g += gradients[s][i] }
            g += step.l2x2 * mask[i] * w[i]
            switch step.rule {
            case let .adam(b1, b2, eps):
                m[i] += (g - m[i]) * (1 - b1)
                v[i] += (g * g - v[i]) * (1 - b2)
                w[i] -= m[i] * step.alpha / (v[i].squareRoot() + eps)
            case let .sgd(momentum):
                m[i] = momentum * m[i] - step.learningRate * g
                w[i] += m[i]
            }
        }
    }
}
