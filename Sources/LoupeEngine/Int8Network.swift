// The int8 executor: a quantized network's stages with packed int8 weights, run over uint8 activations.
// Arithmetic per docs/model-format.md §12; the GEMM path is picked once at start-up (ISA.int8).
import CLoupeInt8
import Dispatch
import Synchronization
@_spi(Kernels) import LoupeKernels

/// The int8 GEMM implementations; all compute the same int32 sums (KernelsInt8/include/loupe_int8.h).
package enum Int8Path: String, Sendable, CaseIterable {
    case avx512vnni, avxvnni, avx2, scalar

    package var isSupported: Bool {
        switch self {
        case .avx512vnni: return ISA.hasAVX512VNNI
        case .avxvnni: return ISA.hasAVXVNNI
        case .avx2: return ISA.hasAVX2
        case .scalar: return true
        }
    }

    /// acc (n, ocp) = a (n, kp) · packed w (see Int8Network.pack).
    @inline(__always)
    package func gemm(n: Int, kp: Int, ocp: Int, a: UnsafePointer<UInt8>, lda: Int, w: UnsafePointer<Int8>,
                      acc: UnsafeMutablePointer<Int32>, ldc: Int) {
        let (n, kp, ocp, lda, ldc) = (Int32(n), Int32(kp), Int32(ocp), Int32(lda), Int32(ldc))
        switch self {
        case .avx512vnni: loupe_i8_gemm_avx512vnni(n, kp, ocp, a, lda, w, acc, ldc)
        case .avxvnni: loupe_i8_gemm_avxvnni(n, kp, ocp, a, lda, w, acc, ldc)
        case .avx2: loupe_i8_gemm_avx2(n, kp, ocp, a, lda, w, acc, ldc)
        case .scalar: loupe_i8_gemm_scalar(n, kp, ocp, a, lda, w, acc, ldc)
        }
    }

    /// The fused conv + max pool + requantize kernel (KernelsInt8/conv.c) over one padded image.
    @inline(__always)
    /// `prepared`: the AVX2 kernel's int16 weights for this geometry (Int8Layer.avx2Weights), or nil (made per call).
    package func conv(_ g: UnsafePointer<loupe_i8_conv_geometry>, _ e: UnsafePointer<loupe_i8_epilogue>, w: UnsafePointer<Int8>,
                      prepared: UnsafePointer<Int16>? = nil, x: UnsafePointer<UInt8>, out: UnsafeMutablePointer<UInt8>) {
        switch self {
        case .avx512vnni: loupe_i8_conv_avx512vnni(g, e, w, x, out)
        case .avxvnni: loupe_i8_conv_avxvnni(g, e, w, x, out)
        case .avx2: loupe_i8_conv_avx2(g, e, w, prepared, x, out)
        case .scalar: loupe_i8_conv_scalar(g, e, w, x, out)
        }
    }
}

/// One conv2d or dense layer, packed for the GEMM.
package struct Int8Layer: Sendable {
    /// Real and padded reduction length (kp % 4 == 0) and output channels (ocp % 16 == 0).
    package var k: Int, kp: Int, oc: Int, ocp: Int
    /// [kp / 4][ocp][4] int8; padding zero. For a conv run by the fused kernel (kernelRow > 0) the
    /// reduction index is kh · kernelRow + j, j < kernel · channels (each kernel row padded to
    /// kernelRow bytes, a multiple of 4); otherwise the plain (kh, kw, c) order padded at the end.
    package var packed: [Int8]
    /// Bytes of one padded kernel row in `packed` (fused conv), or 0.
    package var kernelRow: Int
    /// The AVX2 fused kernel's int16 copy of `packed` for this layer's geometry (loupe_i8_conv_avx2_weights),
    /// made once at load instead of on every call; empty when it reads `packed` directly or for other layers.
    package var avx2Weights: [Int16] = []
    /// inputZeroPoint · Σ_k q[k][o], subtracted from each sum.
    package var zeroCorrection: [Int32]
    /// inputScale · weightScales[o] (float32 product).
    package var multiplier: [Float]
    package var bias: [Float]
    package var relu: Bool
    /// The output's quantization (the next layer's input), or nil: float32 output (the last layer).
    package var outputInverseScale: Float?
    package var outputZeroPoint: Int
}

package enum Int8Op: Sendable {
    /// Per image: im2col → GEMM → max pool over the int32 sums (pool 1 = none) → requantize.
    case conv(ConvGeometry, pool: Int, layer: Int)
    case maxPool(Pool2DGeometry)
    case dense(layer: Int)
}

/// One layer as `forward` reads it: a class, so that taking a layer for a pass retains one reference instead of
/// copying the struct with its five arrays (retains, releases and a struct copy into each closure context: ≈ 3 % of a
/// seed-network call at batch 1).
final class Int8LayerRef: Sendable {
    let layer: Int8Layer
    init(_ layer: Int8Layer) { self.layer = layer }
}

/// A quantized network ready to run. Immutable; scratch memory lives in Int8Storage.
package final class Int8Network: Sendable {
    let ops: [Int8Op]
    let layers: [Int8Layer]
    /// `layers` as forward reads them.
    let refs: [Int8LayerRef]
    let inputSize: Int
    let outputSize: Int
    let inputInverseScale: Float
    let inputZeroPoint: Int
    /// Row stride (bytes) of each op's uint8 output, and of the quantized input: size rounded up to 4.
    let strides: [Int]
    let inputStride: Int

    /// Builds the int8 plan from the fp32 plan, the parameters and the quantization; throws a sentence
    /// for what the int8 executor does not cover.
    init(plan: NetworkPlan, architecture: Architecture, slots: [ParameterSlot], parameters: [Float],
         quantization q: QuantizationParameters) throws {
        func fail(_ s: String) -> EngineError { .invalidArchitecture("int8: " + s) }
        guard q.precision == "int8" else { throw fail("unknown precision '\(q.precision)' (expected int8)") }
        var ops: [Int8Op] = []
        var layers: [Int8Layer] = []
        var strides: [Int] = []
        var parametric = 0
        let lastParametric = plan.stages.lastIndex(where: \.hasParameters) ?? -1
        for (i, stage) in plan.stages.enumerated() {
            func layer(k: Int, oc: Int, relu: Bool, weight: Int, bias: Int, rows: (count: Int, bytes: Int)? = nil) throws -> Int {
                guard parametric < q.layers.count else { throw fail("the quantization lists \(q.layers.count) layers, the network has more") }
                let lq = q.layers[parametric]
                guard let slot = slots.first(where: { $0.offset == weight }), slot.name == "\(lq.name).weight" else {
                    throw fail("quantized layer \(parametric + 1) is '\(lq.name)', which is not the network's layer there")
                }
                guard lq.weightScales.count == oc, lq.weightScales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                    throw fail("\(lq.name) needs \(oc) positive finite weight scales, the file has \(lq.weightScales.count)")
                }
                guard lq.inputScale > 0, lq.inputScale.isFinite, (0...255).contains(lq.inputZeroPoint) else {
                    throw fail("\(lq.name): input scale must be positive and finite and the zero point 0…255")
                }
                var next: QuantizedLayerParameters?
                if i != lastParametric {
                    guard parametric + 1 < q.layers.count else { throw fail("the quantization lists too few layers") }
                    next = q.layers[parametric + 1]
                }
                layers.append(Int8Network.pack(k: k, oc: oc, weight: parameters[weight..<(weight + k * oc)],
                                               bias: parameters[bias..<(bias + oc)], input: lq, relu: relu, output: next,
                                               rows: next == nil ? nil : rows))
                parametric += 1
                return layers.count - 1
            }
            switch stage.op {
            case let .convPool(g, w, b):
                let l = try layer(k: g.conv.kernel * g.conv.kernel * g.conv.channels, oc: g.conv.filters, relu: g.conv.relu, weight: w, bias: b,
                                  rows: (g.conv.kernel, g.conv.kernel * g.conv.channels))
                ops.append(.conv(g.conv, pool: g.pool, layer: l))
            case let .conv(g, w, b):
                // The fused kernel takes any kh×kw kernel and (sh, sw) strides; the logits path (im2col) square ones.
                guard g.isSquare || i != lastParametric else {
                    throw fail("layer \(i + 1): a \(g.kernelHeight)×\(g.kernelWidth) kernel with strides (\(g.strideHeight), \(g.strideWidth)) as the last layer has no int8 implementation; square kernels with equal strides do")
                }
                let l = try layer(k: g.taps * g.channels, oc: g.filters, relu: g.relu, weight: w, bias: b,
                                  rows: (g.kernelHeight, g.kernelWidth * g.channels))
                ops.append(.conv(g, pool: 1, layer: l))
            case let .maxPool(g):
                guard g.strideHeight == g.strideWidth else {
                    throw fail("layer \(i + 1): max pooling with strides (\(g.strideHeight), \(g.strideWidth)) has no int8 implementation; equal strides do")
                }
                guard i < lastParametric else { throw fail("a pool after the last conv/dense layer is not supported") }
                ops.append(.maxPool(g))
            case let .dense(_, outputs, relu, w, b):
                let inputs = stage.inputSize
                let l = try layer(k: inputs, oc: outputs, relu: relu, weight: w, bias: b)
                ops.append(.dense(layer: l))
            case .flatten, .dropout:
                continue
            case .groupedConv:
                throw fail("layer \(i + 1): a grouped convolution has no int8 implementation; conv2d, dense (linear/ReLU), max pooling, flatten and dropout do")
            default:
                // Average pooling and stand-alone activations (sigmoid, tanh, …) have no int8 form yet.
                throw fail("layer \(i + 1) (\(stage.op)) has no int8 implementation; conv2d, dense (linear/ReLU), max pooling, flatten and dropout do")
            }
            strides.append((stage.outputSize + 3) / 4 * 4)
        }
        guard parametric == q.layers.count, parametric > 0 else {
            throw fail("the quantization lists \(q.layers.count) layers, the network has \(parametric) conv2d/dense layers")
        }
        for case let .conv(g, pool, l) in ops where layers[l].kernelRow > 0 {
            var geometry = Int8Network.fusedGeometry(g, pool: pool, layers[l])
            let packed = layers[l].packed
            let count = loupe_i8_conv_avx2_weights(&geometry, packed, nil)
            guard count > 0 else { continue }
            layers[l].avx2Weights = [Int16](unsafeUninitializedCapacity: count) { b, n in
                n = loupe_i8_conv_avx2_weights(&geometry, packed, b.baseAddress!)
            }
        }
        self.ops = ops
        self.layers = layers
        self.refs = layers.map(Int8LayerRef.init)
        self.strides = strides
        self.inputSize = plan.inputSize
        self.outputSize = plan.outputSize
        self.inputInverseScale = 1 / q.layers[0].inputScale
        self.inputZeroPoint = q.layers[0].inputZeroPoint
        self.inputStride = (plan.inputSize + 3) / 4 * 4
    }

    /// Quantizes a (k, oc) row-major weight per output channel and packs it [kp / 4][ocp][4].
    /// With `rows` = (kernel rows, bytes per row), the fused conv layout: row r's bytes padded to a multiple of 4.
    static func pack(k: Int, oc: Int, weight: ArraySlice<Float>, bias: ArraySlice<Float>, input: QuantizedLayerParameters,
                     relu: Bool, output: QuantizedLayerParameters?, rows: (count: Int, bytes: Int)? = nil) -> Int8Layer {
        let kernelRow = rows.map { ($0.bytes + 3) / 4 * 4 } ?? 0
        let kp = rows.map { $0.count * kernelRow } ?? (k + 3) / 4 * 4, ocp = (oc + 15) / 16 * 16
        var packed = [Int8](repeating: 0, count: kp * ocp)
        var sums = [Int32](repeating: 0, count: ocp)
        let w0 = weight.startIndex
        for kk in 0..<k {
            let at = rows.map { kk / $0.bytes * kernelRow + kk % $0.bytes } ?? kk
            for o in 0..<oc {
                let q = QuantizationMath.quantizeWeight(weight[w0 + kk * oc + o], scale: input.weightScales[o])
                packed[(at / 4) * ocp * 4 + o * 4 + at % 4] = q
                sums[o] += Int32(q)
            }
        }
        var multiplier = [Float](repeating: 0, count: ocp), b = [Float](repeating: 0, count: ocp)
        for o in 0..<oc { multiplier[o] = input.inputScale * input.weightScales[o]; b[o] = bias[bias.startIndex + o] }
        return Int8Layer(k: k, kp: kp, oc: oc, ocp: ocp, packed: packed, kernelRow: kernelRow,
                         zeroCorrection: sums.map { $0 * Int32(input.inputZeroPoint) }, multiplier: multiplier, bias: b, relu: relu,
                         outputInverseScale: output.map { 1 / $0.inputScale }, outputZeroPoint: output?.inputZeroPoint ?? 0)
    }

    /// Bytes of packed weights (for reports).
    package var weightBytes: Int { layers.reduce(0) { $0 + $1.packed.count } }

    /// input (count, inputSize) float → (count, outputSize) logits, or softmax probabilities.
    func run(_ input: [Float], count: Int, storage: Int8Storage, path: Int8Path, threads: Int, softmax: Bool) -> [Float] {
        // Uninitialised: the last layer writes every logit of every image (dequantize: rows × oc = outputSize each).
        var result = [Float](unsafeUninitializedCapacity: count * outputSize) { _, n in n = count * outputSize }
        let t = max(1, threads)
        let single = storage.scratches(threads: t)
        let chunk = storage.chunk
        input.withUnsafeBufferPointer { x in
            result.withUnsafeMutableBufferPointer { r in
                let images = x.baseAddress!, out = r.baseAddress!
                let box = Int8SendableBox((images, out))
                let chunks = (count + chunk - 1) / chunk
                let body: (_ chunk: Int, _ scratch: Int8Scratch) -> Void = { c, s in
                    let (images, out) = box.value
                    let b0 = c * chunk, n = min(chunk, count - b0)
                    self.forward(images + b0 * self.inputSize, n: n, scratch: s, path: path,
                                 output: out + b0 * self.outputSize)
                    if softmax {
                        let o = out + b0 * self.outputSize
                        softmaxRows(n: n, classes: self.outputSize, logits: o, probabilities: o)
                    }
                }
                if t == 1 {
                    for c in 0..<chunks { body(c, single[0]) }
                } else {
                    // As the fp32 path (InferenceStorage): every chunk is an iteration that borrows a
                    // scratch from the free list and gives it back — one join for the whole batch, and
                    // about one scratch per running thread is ever made.
                    let run = Int8SendableBox(body)
                    DispatchQueue.concurrentPerform(iterations: chunks) { c in
                        let s = storage.borrow()
                        run.value(c, s)
                        storage.giveBack(s)
                    }
                }
            }
        }
        return result
    }

    /// n images → logits (n, outputSize).
    func forward(_ input: UnsafePointer<Float>, n: Int, scratch s: Int8Scratch, path: Int8Path, output: UnsafeMutablePointer<Float>) {
        var x = s.actA, y = s.actB
        for b in 0..<n {
            loupe_i8_quantize(Int32(inputSize), input + b * inputSize, inputInverseScale, Int32(inputZeroPoint), x + b * inputStride)
        }
        var xStride = inputStride
        for (i, op) in ops.enumerated() {
            let yStride = strides[i]
            switch op {
            case let .conv(g, pool, l) where layers[l].kernelRow > 0:
                // Fused: the windows straight from the (padded) uint8 image, sums pooled and requantized in registers.
                let L = refs[l]
                let pad = Int8Network.border(g)
                var geometry = Int8Network.fusedGeometry(g, pool: pool, L.layer)
                let padded = g.padTop > 0 || g.padLeft > 0 || pad.bottom > 0 || pad.right > 0
                withEpilogue(L) { e in
                    L.layer.packed.withUnsafeBufferPointer { w in L.layer.avx2Weights.withUnsafeBufferPointer { w16 in
                        for b in 0..<n {
                            var image = UnsafePointer(x + b * xStride)
                            if padded {
                                loupe_i8_pad(image, Int32(g.height), Int32(g.width), Int32(g.channels), Int32(g.padTop), Int32(g.padLeft),
                                             Int32(pad.bottom), Int32(pad.right), UInt8(zeroPoint(of: l)), s.padded)
                                image = UnsafePointer(s.padded)
                            }
                            path.conv(&geometry, e, w: w.baseAddress!, prepared: w16.isEmpty ? nil : w16.baseAddress, x: image, out: y + b * yStride)
                        }
                    } }
                }
            case let .conv(g, pool, l):
                // A conv whose output is the logits (float32): im2col + GEMM + pool over the sums + dequantize.
                let L = refs[l]
                let rows = g.outHeight * g.outWidth
                let ph = g.outHeight / pool, pw = g.outWidth / pool
                L.layer.packed.withUnsafeBufferPointer { w in
                    for b in 0..<n {
                        loupe_i8_im2col(x + b * xStride, Int32(g.height), Int32(g.width), Int32(g.channels), Int32(g.kernel),
                                        Int32(g.stride), Int32(g.padTop), Int32(g.padLeft), Int32(g.outHeight), Int32(g.outWidth),
                                        UInt8(zeroPoint(of: l)), s.columns, Int32(L.layer.kp))
                        path.gemm(n: rows, kp: L.layer.kp, ocp: L.layer.ocp, a: s.columns, lda: L.layer.kp, w: w.baseAddress!, acc: s.acc, ldc: L.layer.ocp)
                        var sums = UnsafePointer(s.acc)
                        if pool > 1 {
                            loupe_i8_maxpool_i32(s.acc, Int32(g.outHeight), Int32(g.outWidth), Int32(L.layer.ocp), Int32(pool), s.pooled)
                            sums = UnsafePointer(s.pooled)
                        }
                        finish(L, rows: ph * pw, sums: sums, ldc: L.layer.ocp, u8: y + b * yStride, ldo: L.layer.oc,
                               f32: output + b * outputSize, f32Stride: L.layer.oc)
                    }
                }
            case let .maxPool(g):
                for b in 0..<n {
                    loupe_i8_maxpool_u8(x + b * xStride, Int32(g.height), Int32(g.width), Int32(g.channels), Int32(g.kernelHeight),
                                        Int32(g.kernelWidth), Int32(g.strideHeight), Int32(g.padTop), Int32(g.padLeft),
                                        Int32(g.outHeight), Int32(g.outWidth), y + b * yStride)
                }
            case let .dense(l):
                let L = refs[l]
                L.layer.packed.withUnsafeBufferPointer { w in
                    path.gemm(n: n, kp: L.layer.kp, ocp: L.layer.ocp, a: x, lda: xStride, w: w.baseAddress!, acc: s.acc, ldc: L.layer.ocp)
                }
                finish(L, rows: n, sums: s.acc, ldc: L.layer.ocp, u8: y, ldo: yStride, f32: output, f32Stride: outputSize)
            }
            swap(&x, &y)
            xStride = yStride
        }
    }

    /// Requantizes to uint8 for the next layer, or writes float32 logits (the last layer).
    @inline(__always)
    private func finish(_ R: Int8LayerRef, rows: Int, sums: UnsafePointer<Int32>, ldc: Int, u8: UnsafeMutablePointer<UInt8>, ldo: Int,
                        f32: UnsafeMutablePointer<Float>, f32Stride: Int) {
        R.layer.zeroCorrection.withUnsafeBufferPointer { zc in
            R.layer.multiplier.withUnsafeBufferPointer { m in
                R.layer.bias.withUnsafeBufferPointer { bias in
                    if let inv = R.layer.outputInverseScale {
                        loupe_i8_requantize(Int32(rows), Int32(R.layer.oc), sums, Int32(ldc), zc.baseAddress!, m.baseAddress!, bias.baseAddress!,
                                            R.layer.relu ? 1 : 0, inv, Int32(R.layer.outputZeroPoint), u8, Int32(ldo))
                    } else {
                        loupe_i8_dequantize(Int32(rows), Int32(R.layer.oc), sums, Int32(ldc), zc.baseAddress!, m.baseAddress!, bias.baseAddress!,
                                            R.layer.relu ? 1 : 0, f32, Int32(f32Stride))
                    }
                }
            }
        }
    }

    /// The requantization constants of L for the fused kernels.
    @inline(__always)
    private func withEpilogue(_ R: Int8LayerRef, _ body: (UnsafePointer<loupe_i8_epilogue>) -> Void) {
        R.layer.zeroCorrection.withUnsafeBufferPointer { zc in
            R.layer.multiplier.withUnsafeBufferPointer { m in
                R.layer.bias.withUnsafeBufferPointer { bias in
                    var e = loupe_i8_epilogue(zc: zc.baseAddress!, m: m.baseAddress!, bias: bias.baseAddress!, relu: R.layer.relu ? 1 : 0,
                                              invScale: R.layer.outputInverseScale ?? 1, zero: Int32(R.layer.outputZeroPoint))
                    body(&e)
                }
            }
        }
    }

    /// The fused kernel's geometry of conv g (its input padded by `border`) with layer L's packing.
    static func fusedGeometry(_ g: ConvGeometry, pool: Int, _ L: Int8Layer) -> loupe_i8_conv_geometry {
        let pad = border(g)
        return loupe_i8_conv_geometry(
            h: Int32(g.height + g.padTop + pad.bottom), w: Int32(g.width + g.padLeft + pad.right), c: Int32(g.channels),
            kh: Int32(g.kernelHeight), kw: Int32(g.kernelWidth), sh: Int32(g.strideHeight), sw: Int32(g.strideWidth),
            oh: Int32(g.outHeight), ow: Int32(g.outWidth), pool: Int32(pool),
            kwc4: Int32(L.kernelRow), oc: Int32(L.oc), ocp: Int32(L.ocp))
    }

    /// Cells the fused conv needs below and right of the image so that every window lies inside.
    static func border(_ g: ConvGeometry) -> (bottom: Int, right: Int) {
        (max(0, (g.outHeight - 1) * g.strideHeight + g.kernelHeight - g.padTop - g.height),
         max(0, (g.outWidth - 1) * g.strideWidth + g.kernelWidth - g.padLeft - g.width))
    }

    /// The input zero point of layer l (what padding cells of its input read).
    private func zeroPoint(of l: Int) -> Int {
        l == 0 ? inputZeroPoint : layers[l - 1].outputZeroPoint
    }

    /// Images per scratch (Int8Storage): one thread, the whole batch; more, up to 32 and a thread's share.
    static func chunk(maxBatch: Int, threads t: Int) -> Int {
        t == 1 ? max(1, maxBatch) : max(1, min(32, (maxBatch + t - 1) / t))
    }

    /// Bytes an Int8Storage for batches of up to `maxBatch` images on `threads` threads allocates at most: one
    /// scratch per chunk that runs at once (as NetworkPlan.inferenceWorkspaceBytes for fp32), from the shapes.
    func workspaceBytes(maxBatch: Int, threads: Int) -> Int {
        let m = max(1, maxBatch), t = max(1, threads)
        let chunk = Int8Network.chunk(maxBatch: m, threads: t)
        return saturatingProduct(Int8Scratch.bytes(scratchSizes(chunk: chunk)), min(t, (m + chunk - 1) / chunk))
    }

    /// Scratch sizes for a chunk of `chunk` images.
    func scratchSizes(chunk: Int) -> (act: Int, columns: Int, acc: Int, pooled: Int, padded: Int) {
        var act = chunk * inputStride, columns = 4, acc = chunk * 16, pooled = 16, padded = 4
        for (i, op) in ops.enumerated() {
            act = max(act, chunk * strides[i])
            switch op {
            case let .conv(g, _, l) where layers[l].kernelRow > 0:
                let pad = Int8Network.border(g)
                padded = max(padded, (g.height + g.padTop + pad.bottom) * (g.width + g.padLeft + pad.right) * g.channels)
            case let .conv(g, pool, l):
                let rows = g.outHeight * g.outWidth
                columns = max(columns, rows * layers[l].kp)
                acc = max(acc, rows * layers[l].ocp)
                pooled = max(pooled, (g.outHeight / pool) * (g.outWidth / pool) * layers[l].ocp)
            case .dense(let l):
                acc = max(acc, chunk * layers[l].ocp)
            case .maxPool:
                break
            }
        }
        // The fused conv reads each window row in 4-byte groups: up to 3 bytes past an image (zero weights there).
        return (act + 64, columns, acc, pooled, padded + 64)
    }
}

/// Scratch buffers for one chunk of images (two ping-pong uint8 activation buffers, a padded image,
/// im2col, int32 sums).
final class Int8Scratch: @unchecked Sendable {
    let actA: UnsafeMutablePointer<UInt8>, actB: UnsafeMutablePointer<UInt8>
    let columns: UnsafeMutablePointer<UInt8>, padded: UnsafeMutablePointer<UInt8>
    let acc: UnsafeMutablePointer<Int32>, pooled: UnsafeMutablePointer<Int32>
    /// Bytes allocated, counted as the buffers are made (tests compare it with `bytes(sizes)`).
    private(set) var allocatedBytes = 0
    init(_ sizes: (act: Int, columns: Int, acc: Int, pooled: Int, padded: Int)) {
        var total = 0
        func make<T: FixedWidthInteger>(_ count: Int) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: count); p.initialize(repeating: 0, count: count)
            total += count * MemoryLayout<T>.stride
            return p
        }
        padded = make(sizes.padded)
        actA = make(sizes.act)
        actB = make(sizes.act)
        columns = make(sizes.columns)
        acc = make(sizes.acc)
        pooled = make(sizes.pooled)
        allocatedBytes = total
    }

    /// Bytes a scratch of these sizes allocates (the workspace limit reads this).
    static func bytes(_ sizes: (act: Int, columns: Int, acc: Int, pooled: Int, padded: Int)) -> Int {
        var tally = ByteTally()
        tally.add(sizes.padded, bytesEach: 1)
        tally.add(sizes.act, bytesEach: 2)   // actA and actB
        tally.add(sizes.columns, bytesEach: 1)
        tally.add(sizes.acc, bytesEach: 4)
        tally.add(sizes.pooled, bytesEach: 4)
        return tally.bytes
    }
    deinit { actA.deallocate(); actB.deallocate(); columns.deallocate(); padded.deallocate(); acc.deallocate(); pooled.deallocate() }
}

/// Reusable int8 scratch for batches of up to `maxBatch` images, per thread count (like InferenceStorage).
final class Int8Storage: @unchecked Sendable {
    let network: Int8Network
    let maxBatch: Int
    private var threads = 0
    private(set) var chunk = 0
    private var list: [Int8Scratch] = []

    init(network: Int8Network, maxBatch: Int) {
        self.network = network
        self.maxBatch = max(1, maxBatch)
    }

    /// One thread: one scratch for chunks of maxBatch images. More: chunks of up to 32 images, each
    /// run with a scratch borrowed from the free list (`borrow`/`giveBack`); the list is empty then.
    func scratches(threads t: Int) -> [Int8Scratch] {
        if t != threads {
            chunk = Int8Network.chunk(maxBatch: maxBatch, threads: t)
            let sizes = network.scratchSizes(chunk: chunk)
            pool = ChunkWorkspaces(threads: t) { let s = Int8Scratch(sizes); return (s, s.allocatedBytes) }
            list = t == 1 ? [pool!.make()] : []
            threads = t
        }
        return list
    }

    private var pool: ChunkWorkspaces<Int8Scratch>?
    /// Bytes of the scratches made since the thread count was last set (tests compare it with Int8Network.workspaceBytes).
    var allocatedBytes: Int { pool?.allocatedBytes ?? 0 }
    /// A scratch for one chunk (t > 1); see ChunkWorkspaces.
    func borrow() -> Int8Scratch { pool!.borrow() }
    func giveBack(_ s: Int8Scratch) { pool!.giveBack(s) }
}

private struct Int8SendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

extension Sequential {
    /// A quantized model's logits (or probabilities) through one given GEMM path, for tests and
    /// benchmarks; nil for an fp32 model.
    package func int8Outputs(_ input: [Float], count: Int, path: Int8Path, threads: Int = 1, softmax: Bool = false) -> [Float]? {
        guard let int8 else { return nil }
        return int8.run(input, count: count, storage: Int8Storage(network: int8, maxBatch: max(1, count)), path: path,
                        threads: threads, softmax: softmax)
    }
}

extension Int8Network {
    /// Packs a (k, oc) int8 weight [kp / 4][ocp][4] (tests and benchmarks of the GEMM alone).
    package static func pack(_ q: [Int8], k: Int, oc: Int) -> (packed: [Int8], kp: Int, ocp: Int) {
        let kp = (k + 3) / 4 * 4, ocp = (oc + 15) / 16 * 16
        var packed = [Int8](repeating: 0, count: kp * ocp)
        for kk in 0..<k { for o in 0..<oc { packed[(kk / 4) * ocp * 4 + o * 4 + kk % 4] = q[kk * oc + o] } }
        return (packed, kp, ocp)
    }
}

extension Int8Network {
    /// One image through the fused conv kernel of `path` (tests and benchmarks): weight q (kh·kw·c, oc) int8 in
    /// (kh, kw, c) order, input (h, w, c) uint8 with `fill` outside, requantized per the epilogue values
    /// (zc, m, bias of oc entries) → (oh / pool, ow / pool, oc) uint8.
    package static func fusedConv(_ path: Int8Path, _ g: ConvGeometry, pool: Int, weight q: [Int8], zeroCorrection: [Int32],
                                  multiplier: [Float], bias: [Float], relu: Bool, inverseScale: Float, zeroPoint: Int, fill: UInt8,
                                  image: [UInt8]) -> [UInt8] {
        let kh = g.kernelHeight, kwc = g.kernelWidth * g.channels, c = g.channels, oc = g.filters
        let row = (kwc + 3) / 4 * 4, ocp = (oc + 15) / 16 * 16
        var packed = [Int8](repeating: 0, count: kh * row * ocp)
        for kk in 0..<(kh * kwc) {
            let at = kk / kwc * row + kk % kwc
            for o in 0..<oc { packed[(at / 4) * ocp * 4 + o * 4 + at % 4] = q[kk * oc + o] }
        }
        func padded<T: Numeric>(_ a: [T]) -> [T] { a + [T](repeating: 0, count: ocp - oc) }
        let (zc, m, b) = (padded(zeroCorrection), padded(multiplier), padded(bias))
        let pad = border(g)
        let H = g.height + g.padTop + pad.bottom, W = g.width + g.padLeft + pad.right
        // Garbage (not zero) past the image: the kernel may read 3 bytes there, against zero weights.
        var source = [UInt8](repeating: 0xA5, count: H * W * c + 64)
        source.withUnsafeMutableBufferPointer { s in
            loupe_i8_pad(image, Int32(g.height), Int32(g.width), Int32(c), Int32(g.padTop), Int32(g.padLeft), Int32(pad.bottom),
                         Int32(pad.right), fill, s.baseAddress!)
        }
        var geometry = loupe_i8_conv_geometry(h: Int32(H), w: Int32(W), c: Int32(c), kh: Int32(kh), kw: Int32(g.kernelWidth),
                                              sh: Int32(g.strideHeight), sw: Int32(g.strideWidth),
                                              oh: Int32(g.outHeight), ow: Int32(g.outWidth), pool: Int32(pool), kwc4: Int32(row),
                                              oc: Int32(oc), ocp: Int32(ocp))
        let count = (g.outHeight / pool) * (g.outWidth / pool) * oc
        var out = [UInt8](repeating: 0x5A, count: count + 64)
        zc.withUnsafeBufferPointer { zc in m.withUnsafeBufferPointer { m in b.withUnsafeBufferPointer { b in
            var e = loupe_i8_epilogue(zc: zc.baseAddress!, m: m.baseAddress!, bias: b.baseAddress!, relu: relu ? 1 : 0,
                                      invScale: inverseScale, zero: Int32(zeroPoint))
            // The AVX2 kernel as the network runs it: its int16 weights made beforehand (prepared).
            let count = path == .avx2 ? loupe_i8_conv_avx2_weights(&geometry, packed, nil) : 0
            let w16 = [Int16](unsafeUninitializedCapacity: max(count, 0)) { b, n in
                n = count > 0 ? loupe_i8_conv_avx2_weights(&geometry, packed, b.baseAddress!) : 0
            }
            packed.withUnsafeBufferPointer { w in source.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { o in
                w16.withUnsafeBufferPointer { p in
                    path.conv(&geometry, &e, w: w.baseAddress!, prepared: p.isEmpty ? nil : p.baseAddress, x: x.baseAddress!, out: o.baseAddress!)
                }
            } } }
        } } }
        // Nothing past the output may be written (the next image's bytes in a batch).
        precondition(out[count...].allSatisfy { $0 == 0x5A }, "the fused conv wrote past its output")
        return Array(out[..<count])
    }
}
