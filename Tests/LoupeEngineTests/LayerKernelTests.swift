import FoundationEssentials
import Testing
@testable import LoupeEngine
@_spi(Kernels) import LoupeKernels

// The general layers' SIMD kernels (strided/padded conv as im2col + GEMM, max/avg pooling with any
// window, stride and padding, the element-wise activations) against their plain-loop references in
// Reference.swift, on seeded random shapes with 1, 3 and other channel counts. Each ISA table has
// its own test; the AVX-512 ones skip visibly on CPUs without it.
// Tolerance: 1e-5 relative (FMA vs separate multiply-add rounding; 1e-4 for weight gradients summed
// over more than 1000 rows); max pooling and argmax indices must be equal.

/// Random conv geometries: kernel sides 1…5 (square and not), strides 1…3 per direction (equal and
/// not), valid/same/explicit (asymmetric) pads, channels 1, 3 or other, filters multiples of 16 and not.
func randomConvGeometries(seed: UInt64, count: Int) -> [ConvGeometry] {
    var rng = SeededGenerator(seed: seed)
    var out: [ConvGeometry] = []
    let channelChoices = [1, 3, 1, 3, 2, 5, 16]
    let filterChoices = [16, 32, 5, 10, 48, 3]
    while out.count < count {
        let kh = Int.random(in: 1...5, using: &rng), sh = Int.random(in: 1...3, using: &rng)
        // Every other geometry square with equal strides, the rest drawn independently.
        let square = out.count % 2 == 0
        let kw = square ? kh : Int.random(in: 1...5, using: &rng), sw = square ? sh : Int.random(in: 1...3, using: &rng)
        let h = Int.random(in: kh...13, using: &rng), w = Int.random(in: kw...13, using: &rng)
        let c = channelChoices[out.count % channelChoices.count], f = filterChoices[Int.random(in: 0..<filterChoices.count, using: &rng)]
        let padding: Padding
        switch out.count % 3 {
        case 0: padding = .valid
        case 1: padding = .same
        default: padding = .explicit(top: Int.random(in: 0..<kh, using: &rng), left: Int.random(in: 0..<kw, using: &rng),
                                     bottom: Int.random(in: 0..<kh, using: &rng), right: Int.random(in: 0..<kw, using: &rng))
        }
        guard let r = padding.resolve(height: h, width: w, kernel: Size2D(kh, kw), stride: Size2D(sh, sw)),
              max(r.top, r.bottom) < kh, max(r.left, r.right) < kw else { continue }
        out.append(ConvGeometry(height: h, width: w, channels: c, filters: f, kernelHeight: kh, kernelWidth: kw, padTop: r.top, padLeft: r.left,
                                outHeight: r.outHeight, outWidth: r.outWidth, relu: out.count % 4 < 2, strideHeight: sh, strideWidth: sw))
    }
    return out
}

/// Random pooling geometries: window sides 1…4 (square and not), strides 1…3 per direction (overlapping
/// when stride < window), pads below the window.
func randomPoolGeometries(seed: UInt64, count: Int) -> [Pool2DGeometry] {
    var rng = SeededGenerator(seed: seed)
    var out: [Pool2DGeometry] = [
        // The common ones: 3×3 stride 2 pad 1 (ResNet stem), 2×2 stride 2, and a global 7×6 window.
        Pool2DGeometry(height: 9, width: 8, channels: 3, kernelHeight: 3, kernelWidth: 3, stride: 2, padTop: 1, padLeft: 1, outHeight: 5, outWidth: 4),
        Pool2DGeometry(height: 8, width: 8, channels: 32, kernelHeight: 2, kernelWidth: 2, stride: 2, padTop: 0, padLeft: 0, outHeight: 4, outWidth: 4),
        Pool2DGeometry(height: 7, width: 6, channels: 35, kernelHeight: 7, kernelWidth: 6, stride: 1, padTop: 0, padLeft: 0, outHeight: 1, outWidth: 1),
    ]
    let channelChoices = [1, 3, 16, 19, 35]
    while out.count < count {
        let kh = Int.random(in: 1...4, using: &rng), kw = Int.random(in: 1...4, using: &rng)
        let sh = Int.random(in: 1...3, using: &rng), sw = Int.random(in: 1...3, using: &rng)
        let h = Int.random(in: kh...12, using: &rng), w = Int.random(in: kw...12, using: &rng)
        let padding: Padding = out.count % 2 == 0 ? .valid
            : .explicit(top: Int.random(in: 0..<kh, using: &rng), left: Int.random(in: 0..<kw, using: &rng),
                        bottom: Int.random(in: 0..<kh, using: &rng), right: Int.random(in: 0..<kw, using: &rng))
        guard let r = padding.resolve(height: h, width: w, kernel: Size2D(kh, kw), stride: Size2D(sh, sw)) else { continue }
        out.append(Pool2DGeometry(height: h, width: w, channels: channelChoices[out.count % channelChoices.count], kernelHeight: kh, kernelWidth: kw,
                                  strideHeight: sh, strideWidth: sw, padTop: r.top, padLeft: r.left, outHeight: r.outHeight, outWidth: r.outWidth))
    }
    return out
}

let layerActivations: [ActivationFunction] = [.relu, .leakyRelu(alpha: 0.1), .sigmoid, .tanh, .clip(min: 0, max: 6), .clip(min: -0.5, max: 0.25)]

func table(named name: String) throws -> KernelSet {
    try #require(ISA.available.first(where: { $0.name == name }), "kernel table \(name) is missing")
}

@Suite struct LayerKernelTests {
    @Test func generalConvMatchesReferenceAVX2() throws { try checkConv(try table(named: "avx2")) }
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func generalConvMatchesReferenceAVX512() throws {
        try checkConv(try table(named: "avx512"))
    }
    @Test func poolingMatchesReferenceAVX2() throws { try checkPooling(try table(named: "avx2")) }
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func poolingMatchesReferenceAVX512() throws {
        try checkPooling(try table(named: "avx512"))
    }
    @Test func activationsMatchReferenceAVX2() throws { try checkActivations(try table(named: "avx2")) }
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func activationsMatchReferenceAVX512() throws {
        try checkActivations(try table(named: "avx512"))
    }

    @Test func depthwiseConvMatchesReferenceAVX2() throws { try checkDepthwise(try table(named: "avx2")) }
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func depthwiseConvMatchesReferenceAVX512() throws {
        try checkDepthwise(try table(named: "avx512"))
    }

    @Test func groupedConvMatchesReferenceAVX2() throws { try checkGrouped(try table(named: "avx2")) }
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func groupedConvMatchesReferenceAVX512() throws {
        try checkGrouped(try table(named: "avx512"))
    }
    /// The per-group reuse through the plain-loop conv entries against the plain-loop grouped reference: checks the
    /// gather/scatter of channels and weight columns on its own.
    @Test func groupedConvThroughTheReferenceTableMatchesReference() { checkGrouped(.reference) }

    /// The weights packed once (GroupedConv.pack, as Sequential and the trainer now do) give the same bits as the
    /// former per-call path: each group's weight columns gathered at every call, the weight gradient summed into a
    /// zeroed scratch and added in. The former path is written out here with plain loops around the table's conv
    /// entries. Forward, dWeight (from zero, as in training), dBias and dInput, on every table this CPU runs.
    @Test(arguments: simdTables.map(\.name) + ["reference"])
    func groupedConvPackedOnceIsBitIdenticalToPackingPerCall(_ name: String) throws {
        let table = name == "reference" ? KernelSet.reference : try table(named: name)
        for (index, g) in randomConvGeometries(seed: 31, count: 9).enumerated() {
            let groups = [2, 3, 4][index % 3], n = 2, seed = UInt64(7000 + 10 * index)
            let cg = g.channels, kg = g.filters, c = cg * groups, k = kg * groups
            let inSize = g.inputSize * groups, pixelsOut = g.outHeight * g.outWidth, outSize = pixelsOut * k, wc = g.weightCount * groups
            let x = randomBuffer(n * inSize, seed: seed), w = randomBuffer(wc, seed: seed + 1, scale: 0.5)
            let b = randomBuffer(k, seed: seed + 2, scale: 0.2), dOut = randomBuffer(n * outSize, seed: seed + 3)
            // The former path.
            let gx = FloatBuffer(count: n * g.inputSize), gw = FloatBuffer(count: g.weightCount), gy = FloatBuffer(count: n * pixelsOut * kg)
            let gdy = FloatBuffer(count: n * pixelsOut * kg), gdw = FloatBuffer(count: g.weightCount), gdx = FloatBuffer(count: n * g.inputSize)
            let columns = FloatBuffer(count: max(1, min(n, g.imagesPerColumnBlock) * g.columnSize))
            let dColumns = FloatBuffer(count: columns.count)
            let oldY = FloatBuffer(count: n * outSize), oldDW = FloatBuffer(count: wc), oldDB = FloatBuffer(count: k)
            let oldDX = FloatBuffer(count: n * inSize)
            for group in 0..<groups {
                for p in 0..<(n * g.height * g.width) { for j in 0..<cg { gx[p * cg + j] = x[p * c + group * cg + j] } }
                for r in 0..<(g.taps * cg) { for j in 0..<kg { gw[r * kg + j] = w[r * k + group * kg + j] } }
                for p in 0..<(n * pixelsOut) { for j in 0..<kg { gdy[p * kg + j] = dOut[p * k + group * kg + j] } }
                table.convForward(g, n, gx.base, gw.base, b.base + group * kg, gy.base, columns.base)
                for p in 0..<(n * pixelsOut) { for j in 0..<kg { oldY[p * k + group * kg + j] = gy[p * kg + j] } }
                gdw.zero()
                table.convBackward(g, n, gx.base, gw.base, gdy.base, gdw.base, oldDB.base + group * kg, gdx.base, columns.base, dColumns.base)
                for r in 0..<(g.taps * cg) { for j in 0..<kg { oldDW[r * k + group * kg + j] += gdw[r * kg + j] } }
                for p in 0..<(n * g.height * g.width) { for j in 0..<cg { oldDX[p * c + group * cg + j] = gdx[p * cg + j] } }
            }
            // Packed once, then run; and packed by the call itself.
            let packed = FloatBuffer(count: wc)
            GroupedConv.pack(g, groups: groups, weight: w.base, packed: packed.base)
            let what = "\(name) grouped \(groups)× (\(g.height)×\(g.width)×\(cg) → \(kg)) k\(g.kernelHeight)×\(g.kernelWidth)"
            for packedWeight in [UnsafePointer(packed.base), nil] {
                let scratch = GroupedConvScratch(g, groups: groups, capacity: n, training: true)
                let y = FloatBuffer(count: n * outSize), dW = FloatBuffer(count: wc), dB = FloatBuffer(count: k)
                let dX = FloatBuffer(count: n * inSize)
                GroupedConv.forward(g, groups: groups, n: n, input: x.base, weight: w.base, packedWeight: packedWeight, bias: b.base,
                                    output: y.base, scratch: scratch, kernels: table)
                GroupedConv.backward(g, groups: groups, n: n, input: x.base, weight: w.base, packedWeight: packedWeight, dOutput: dOut.base,
                                     dWeight: dW.base, dBias: dB.base, dInput: dX.base, scratch: scratch, kernels: table)
                let how = packedWeight == nil ? "packed per call" : "packed once"
                #expect(y.array() == oldY.array(), "\(what) \(how): forward")
                #expect(dW.array() == oldDW.array(), "\(what) \(how): dWeight")
                #expect(dB.array() == oldDB.array(), "\(what) \(how): dBias")
                #expect(dX.array() == oldDX.array(), "\(what) \(how): dInput")
            }
        }
    }

    /// A model keeps its packed grouped weights in step with its parameters: assigning another model's parameters
    /// gives that model's outputs bit for bit (a stale packed copy would keep the first weights).
    @Test func groupedConvModelRepacksWhenItsParametersChange() throws {
        let arch = Architecture(inputShape: [6, 5, 4], layers: [
            .groupedConv2d(filters: 32, groups: 2, kernel: 3, padding: .same, activation: .relu),
            .groupedConv2d(filters: 6, groups: 2, kernel: 1, padding: .valid, activation: .linear),
            .flatten, .dense(units: 3, activation: .softmax)])
        var model = try Sequential(architecture: arch, seed: 1)
        let other = try Sequential(architecture: arch, seed: 2)
        let input = randomBuffer(2 * model.inputCount, seed: 77).array()
        var ws = model.makeWorkspace(maxBatch: 2)
        let before = model.logits(input, count: 2, workspace: &ws)
        model.parameters = other.parameters
        let after = model.logits(input, count: 2, workspace: &ws)
        var ws2 = other.makeWorkspace(maxBatch: 2)
        #expect(after == other.logits(input, count: 2, workspace: &ws2))
        #expect(after != before)
    }

    @Test func randomGeometriesCoverStridesPaddingAndChannels() {
        let convs = randomConvGeometries(seed: 7, count: 24)
        #expect(Set(convs.map(\.strideHeight)) == [1, 2, 3] && Set(convs.map(\.strideWidth)) == [1, 2, 3])
        #expect(convs.contains { $0.kernelHeight != $0.kernelWidth } && convs.contains { $0.strideHeight != $0.strideWidth })
        #expect(convs.contains { $0.padTop > 0 } && convs.contains { $0.padTop == 0 && $0.padLeft == 0 })
        #expect(Set(convs.map(\.channels)).isSuperset(of: [1, 3]))
        #expect(convs.contains { $0.filters % 16 != 0 } && convs.contains { $0.filters % 16 == 0 })
        #expect(convs.contains { $0.isPointwise } || convs.contains { $0.taps == 1 })
        let pools = randomPoolGeometries(seed: 8, count: 20)
        #expect(pools.contains { $0.strideHeight < $0.kernelHeight } && pools.contains { $0.padTop > 0 || $0.padLeft > 0 })
        #expect(pools.contains { $0.kernelHeight != $0.kernelWidth } && pools.contains { $0.strideHeight != $0.strideWidth })
    }

    func checkConv(_ table: KernelSet) {
        var geometries = randomConvGeometries(seed: 7, count: 24)
        // A pointwise conv (no im2col) and one larger than a column block (several blocks per batch).
        geometries.append(ConvGeometry(height: 6, width: 5, channels: 3, filters: 16, kernel: 1, padTop: 0, padLeft: 0, outHeight: 6, outWidth: 5, relu: false))
        geometries.append(ConvGeometry(height: 64, width: 64, channels: 3, filters: 16, kernel: 5, padTop: 2, padLeft: 2, outHeight: 64, outWidth: 64, relu: true))
        // The RGB row-tile kernel (ConvKernels.direct3x3C3) with a 3-pixel rest per row.
        geometries.append(ConvGeometry(height: 9, width: 19, channels: 3, filters: 48, kernelHeight: 3, kernelWidth: 3, padTop: 0, padLeft: 1,
                                       outHeight: 4, outWidth: 19, relu: false, strideHeight: 2, strideWidth: 1))
        for (index, g) in geometries.enumerated() {
            let n = 3
            let seed = UInt64(1000 + 10 * index)
            let x = randomBuffer(n * g.inputSize, seed: seed), w = randomBuffer(g.weightCount, seed: seed + 1, scale: 0.5)
            let b = randomBuffer(g.filters, seed: seed + 2, scale: 0.2), dOut = randomBuffer(n * g.outputSize, seed: seed + 3)
            let refY = FloatBuffer(count: n * g.outputSize)
            Reference.convForward(g, n: n, input: x.base, weight: w.base, bias: b.base, output: refY.base)
            let refDW = randomBuffer(g.weightCount, seed: seed + 4), refDB = randomBuffer(g.filters, seed: seed + 5)
            let refDX = FloatBuffer(count: n * g.inputSize)
            Reference.convBackward(g, n: n, input: x.base, weight: w.base, dOutput: dOut.base, dWeight: refDW.base, dBias: refDB.base, dInput: refDX.base)

            let columnCount = max(1, min(n, g.imagesPerColumnBlock) * g.columnSize)
            let columns = FloatBuffer(count: columnCount), dColumns = FloatBuffer(count: columnCount)
            let y = FloatBuffer(count: n * g.outputSize)
            table.convForward(g, n, x.base, w.base, b.base, y.base, columns.base)
            let what = "\(table.name) conv \(g.height)×\(g.width)×\(g.channels) k\(g.kernelHeight)×\(g.kernelWidth) s(\(g.strideHeight), \(g.strideWidth)) pad (\(g.padTop), \(g.padLeft)) → \(g.outHeight)×\(g.outWidth)×\(g.filters)"
            #expect(maxRelativeError(y, refY) < 1e-5, "\(what) forward")
            let dW = randomBuffer(g.weightCount, seed: seed + 4), dB = randomBuffer(g.filters, seed: seed + 5)
            let dX = randomBuffer(n * g.inputSize, seed: seed + 6)   // overwritten, not accumulated
            table.convBackward(g, n, x.base, w.base, dOut.base, dW.base, dB.base, dX.base, columns.base, dColumns.base)
            // dWeight sums n·OH·OW products per entry; over thousands of rows the GEMM's blocked order drifts more.
            let dWTolerance: Float = n * g.outHeight * g.outWidth > 1000 ? 1e-4 : 1e-5
            #expect(maxRelativeError(dW, refDW) < dWTolerance, "\(what) dWeight")
            #expect(maxRelativeError(dB, refDB) < 1e-5, "\(what) dBias")
            #expect(maxRelativeError(dX, refDX) < 1e-5, "\(what) dInput")
        }
    }

    /// The direct (implicit-GEMM) conv forward equals im2col + the table's dense GEMM bit for bit: same products in
    /// the same order per output, padded taps included as 0 · w. On the random geometries it takes (filters a
    /// multiple of 16, padded image no larger than its im2col matrix) and the 32×32×3 CNN's two 3×3 convs.
    @Test func directConvForwardEqualsIm2colGEMMBitForBit() throws {
        var geometries = randomConvGeometries(seed: 7, count: 24).filter { ConvKernels.usesDirectForward($0) }
        #expect(geometries.count >= 4, "the random geometries exercise the direct path")
        #expect(randomConvGeometries(seed: 7, count: 24).contains { !ConvKernels.usesDirectForward($0) }, "and the im2col path")
        geometries.append(ConvGeometry(height: 32, width: 32, channels: 3, filters: 16, kernel: 3, padTop: 1, padLeft: 1,
                                       outHeight: 32, outWidth: 32, relu: true))
        geometries.append(ConvGeometry(height: 16, width: 16, channels: 16, filters: 32, kernel: 3, padTop: 0, padLeft: 0,
                                       outHeight: 8, outWidth: 8, relu: false, stride: 2))
        // RGB 3×3 convs for the row-tile kernel (ConvKernels.direct3x3C3): a width that leaves 3 pixels past the 16-pixel
        // tiles, row stride 2, 48 filters (3 passes), asymmetric padding; and one 3×3 × 3-channel conv too narrow for it.
        geometries.append(ConvGeometry(height: 9, width: 19, channels: 3, filters: 48, kernelHeight: 3, kernelWidth: 3, padTop: 0, padLeft: 1,
                                       outHeight: 4, outWidth: 19, relu: false, strideHeight: 2, strideWidth: 1))
        geometries.append(ConvGeometry(height: 18, width: 34, channels: 3, filters: 16, kernel: 3, padTop: 0, padLeft: 0,
                                       outHeight: 16, outWidth: 32, relu: true))
        geometries.append(ConvGeometry(height: 7, width: 9, channels: 3, filters: 32, kernel: 3, padTop: 1, padLeft: 1,
                                       outHeight: 7, outWidth: 9, relu: true))
        #expect(geometries.filter { ConvKernels.usesDirect3x3C3($0) }.count == 3, "the RGB row-tile kernel runs on three of them")
        #expect(geometries.contains { $0.filters % 32 == 0 } && geometries.contains { $0.filters % 32 == 16 },
                "32-filter tiles and a 16-filter rest")
        for table in simdTables {
            for (index, g) in geometries.enumerated() {
                #expect(ConvKernels.usesDirectForward(g))
                let n = 2, seed = UInt64(5000 + 10 * index)
                let x = randomBuffer(n * g.inputSize, seed: seed), w = randomBuffer(g.weightCount, seed: seed + 1, scale: 0.5)
                let b = randomBuffer(g.filters, seed: seed + 2, scale: 0.2)
                let columns = FloatBuffer(count: g.columnSize)
                let direct = FloatBuffer(count: n * g.outputSize), gemm = FloatBuffer(count: n * g.outputSize)
                table.convForward(g, n, x.base, w.base, b.base, direct.base, columns.base)
                for i in 0..<n {
                    ConvKernels.im2col(g, input: x.base + i * g.inputSize, columns: columns.base)
                    table.denseForward(g.outHeight * g.outWidth, g.taps * g.channels, g.filters, g.relu, columns.base, w.base, b.base,
                                       gemm.base + i * g.outputSize)
                }
                #expect(direct.array() == gemm.array(),
                        "\(table.name) k\(g.kernelHeight)×\(g.kernelWidth) s(\(g.strideHeight), \(g.strideWidth)) pad (\(g.padTop), \(g.padLeft)) \(g.height)×\(g.width)×\(g.channels) → \(g.filters)")
            }
        }
    }

    /// Depthwise convolution on the random conv geometries with filters = channels (1, 3, 16 and others: the
    /// SIMD16 blocks and the scalar tail), plus 35 channels on a 3×5 kernel with strides (2, 1).
    func checkDepthwise(_ table: KernelSet) {
        var geometries = randomConvGeometries(seed: 17, count: 24).map { g -> ConvGeometry in
            var d = g
            d.channels = [1, 3, 16, 19, 35, 2][d.height % 6]
            d.filters = d.channels
            return d
        }
        geometries.append(ConvGeometry(height: 9, width: 11, channels: 35, filters: 35, kernelHeight: 3, kernelWidth: 5, padTop: 1, padLeft: 0,
                                       outHeight: 5, outWidth: 7, relu: true, strideHeight: 2, strideWidth: 1))
        for (index, g) in geometries.enumerated() {
            let n = 2
            let seed = UInt64(3000 + 10 * index)
            let x = randomBuffer(n * g.inputSize, seed: seed), w = randomBuffer(g.depthwiseWeightCount, seed: seed + 1, scale: 0.5)
            let b = randomBuffer(g.channels, seed: seed + 2, scale: 0.2), dOut = randomBuffer(n * g.outputSize, seed: seed + 3)
            let refY = FloatBuffer(count: n * g.outputSize)
            Reference.depthwiseForward(g, n: n, input: x.base, weight: w.base, bias: b.base, output: refY.base)
            let refDW = randomBuffer(g.depthwiseWeightCount, seed: seed + 4), refDB = randomBuffer(g.channels, seed: seed + 5)
            let refDX = FloatBuffer(count: n * g.inputSize)
            Reference.depthwiseBackward(g, n: n, input: x.base, weight: w.base, dOutput: dOut.base, dWeight: refDW.base, dBias: refDB.base,
                                        dInput: refDX.base)
            let y = FloatBuffer(count: n * g.outputSize)
            table.depthwiseForward(g, n, x.base, w.base, b.base, y.base)
            let what = "\(table.name) depthwise \(g.height)×\(g.width)×\(g.channels) k\(g.kernelHeight)×\(g.kernelWidth) s(\(g.strideHeight), \(g.strideWidth)) pad (\(g.padTop), \(g.padLeft)) → \(g.outHeight)×\(g.outWidth)"
            #expect(maxRelativeError(y, refY) < 1e-5, "\(what) forward")
            let dW = randomBuffer(g.depthwiseWeightCount, seed: seed + 4), dB = randomBuffer(g.channels, seed: seed + 5)
            let dX = randomBuffer(n * g.inputSize, seed: seed + 6)   // overwritten, not accumulated
            table.depthwiseBackward(g, n, x.base, w.base, dOut.base, dW.base, dB.base, dX.base)
            #expect(maxRelativeError(dW, refDW) < 1e-5, "\(what) dWeight")
            #expect(maxRelativeError(dB, refDB) < 1e-5, "\(what) dBias")
            #expect(maxRelativeError(dX, refDX) < 1e-5, "\(what) dInput")
        }
    }

    /// Grouped convolution (GroupedConv: G convolutions through the table's conv entries) on the random conv
    /// geometries as one group's, with 2, 3 and 4 groups — so filters per group of 16, 32 and 48 take the direct
    /// conv, the others im2col + GEMM, 1×1 stride-1 ones the pointwise GEMM — plus one input channel and two filters
    /// per group (a depthwise conv with depth multiplier 2). Forward, dWeight, dBias and dInput against
    /// Reference.groupedConvForward / groupedConvBackward (plain loops over the full tensors).
    func checkGrouped(_ table: KernelSet) {
        var geometries = randomConvGeometries(seed: 23, count: 18)
        geometries.append(ConvGeometry(height: 7, width: 9, channels: 1, filters: 2, kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1,
                                       outHeight: 7, outWidth: 9, relu: true))
        for (index, g) in geometries.enumerated() {
            let groups = [2, 3, 4][index % 3], n = 2
            let seed = UInt64(5000 + 10 * index)
            let k = g.filters * groups, inSize = g.inputSize * groups, outSize = g.outHeight * g.outWidth * k, wc = g.weightCount * groups
            let x = randomBuffer(n * inSize, seed: seed), w = randomBuffer(wc, seed: seed + 1, scale: 0.5)
            let b = randomBuffer(k, seed: seed + 2, scale: 0.2), dOut = randomBuffer(n * outSize, seed: seed + 3)
            let refY = FloatBuffer(count: n * outSize)
            Reference.groupedConvForward(g, groups: groups, n: n, input: x.base, weight: w.base, bias: b.base, output: refY.base)
            let refDW = randomBuffer(wc, seed: seed + 4), refDB = randomBuffer(k, seed: seed + 5), refDX = FloatBuffer(count: n * inSize)
            Reference.groupedConvBackward(g, groups: groups, n: n, input: x.base, weight: w.base, dOutput: dOut.base, dWeight: refDW.base,
                                          dBias: refDB.base, dInput: refDX.base)
            let scratch = GroupedConvScratch(g, groups: groups, capacity: n, training: true)
            let y = FloatBuffer(count: n * outSize)
            GroupedConv.forward(g, groups: groups, n: n, input: x.base, weight: w.base, bias: b.base, output: y.base, scratch: scratch, kernels: table)
            let what = "\(table.name) grouped \(groups)× (\(g.height)×\(g.width)×\(g.channels) → \(g.filters)) k\(g.kernelHeight)×\(g.kernelWidth) s(\(g.strideHeight), \(g.strideWidth)) pad (\(g.padTop), \(g.padLeft))"
            #expect(maxRelativeError(y, refY) < 1e-5, "\(what) forward")
            let dW = randomBuffer(wc, seed: seed + 4), dB = randomBuffer(k, seed: seed + 5)
            let dX = randomBuffer(n * inSize, seed: seed + 6)   // overwritten, not accumulated
            GroupedConv.backward(g, groups: groups, n: n, input: x.base, weight: w.base, dOutput: dOut.base, dWeight: dW.base, dBias: dB.base,
                                 dInput: dX.base, scratch: scratch, kernels: table)
            #expect(maxRelativeError(dW, refDW) < 1e-4, "\(what) dWeight")
            #expect(maxRelativeError(dB, refDB) < 1e-5, "\(what) dBias")
            #expect(maxRelativeError(dX, refDX) < 1e-5, "\(what) dInput")
        }
    }

    func checkPooling(_ table: KernelSet) {
        for (index, g) in randomPoolGeometries(seed: 8, count: 20).enumerated() {
            let n = 2
            let seed = UInt64(2000 + 10 * index)
            let x = randomBuffer(n * g.inputSize, seed: seed), dOut = randomBuffer(n * g.outputSize, seed: seed + 1)
            let what = "\(table.name) pool \(g.height)×\(g.width)×\(g.channels) k\(g.kernelHeight)×\(g.kernelWidth) s(\(g.strideHeight), \(g.strideWidth)) pad (\(g.padTop), \(g.padLeft))"
            let refY = FloatBuffer(count: n * g.outputSize), refArg = IndexBuffer(count: n * g.outputSize), refDX = FloatBuffer(count: n * g.inputSize)
            Reference.maxPool2dForward(g, n: n, input: x.base, output: refY.base, argmax: refArg.base)
            Reference.maxPool2dBackward(g, n: n, dOutput: dOut.base, argmax: refArg.base, dInput: refDX.base)
            let y = FloatBuffer(count: n * g.outputSize), arg = IndexBuffer(count: n * g.outputSize), dX = randomBuffer(n * g.inputSize, seed: 9)
            table.maxPoolForward(g, n, x.base, y.base, arg.base)
            table.maxPoolBackward(g, n, dOut.base, arg.base, dX.base)
            #expect(maxRelativeError(y, refY) == 0, "\(what) max forward")
            #expect((0..<(n * g.outputSize)).allSatisfy { arg.base[$0] == refArg.base[$0] }, "\(what) argmax")
            // Inference asks for the values only (no argmax): the same values, on the 2×2 path too.
            let values = FloatBuffer(count: n * g.outputSize)
            table.maxPoolForward(g, n, x.base, values.base, nil)
            #expect(values.array() == refY.array(), "\(what) max forward without argmax")
            #expect(maxRelativeError(dX, refDX) < 1e-6, "\(what) max backward")

            Reference.avgPool2dForward(g, n: n, input: x.base, output: refY.base)
            Reference.avgPool2dBackward(g, n: n, dOutput: dOut.base, dInput: refDX.base)
            table.avgPoolForward(g, n, x.base, y.base)
            table.avgPoolBackward(g, n, dOut.base, dX.base)
            #expect(maxRelativeError(y, refY) < 1e-6, "\(what) avg forward")
            #expect(maxRelativeError(dX, refDX) < 1e-6, "\(what) avg backward")
        }
    }

    func checkActivations(_ table: KernelSet) {
        // Scale 100 reaches the vector exp's clamped range (|x| > 87) for sigmoid and tanh.
        for (count, scale) in [(1, 8), (16, 8), (37, 8), (200, 8), (200, 1), (400, 100)] as [(Int, Float)] {
            let x = randomBuffer(count, seed: UInt64(count), scale: scale), dY = randomBuffer(count, seed: UInt64(count) + 1)
            for f in layerActivations {
                let refY = FloatBuffer(count: count), refDX = FloatBuffer(count: count)
                Reference.activationForward(f, count: count, x: x.base, y: refY.base)
                Reference.activationBackward(f, count: count, y: refY.base, dY: dY.base, dX: refDX.base)
                let y = FloatBuffer(count: count), dX = FloatBuffer(count: count)
                table.activationForward(f, count, x.base, y.base)
                table.activationBackward(f, count, y.base, dY.base, dX.base)
                #expect(maxRelativeError(y, refY) < 1e-6, "\(table.name) \(f) forward, \(count) values")
                #expect(maxRelativeError(dX, refDX) < 1e-6, "\(table.name) \(f) backward, \(count) values")
            }
        }
    }

    /// The references themselves, on hand-computed cases.
    @Test func referencesComputeTheDocumentedValues() {
        // 3×3 stride-2 pad-1 max and average pooling of 0…15 on a 4×4 image.
        let g = Pool2DGeometry(height: 4, width: 4, channels: 1, kernelHeight: 3, kernelWidth: 3, stride: 2, padTop: 1, padLeft: 1, outHeight: 2, outWidth: 2)
        let x = FloatBuffer((0..<16).map(Float.init)), y = FloatBuffer(count: 4), arg = IndexBuffer(count: 4)
        Reference.maxPool2dForward(g, n: 1, input: x.base, output: y.base, argmax: arg.base)
        #expect(y.array() == [5, 7, 13, 15])
        #expect(Array(UnsafeBufferPointer(start: arg.base, count: 4)) == [5, 7, 13, 15])
        Reference.avgPool2dForward(g, n: 1, input: x.base, output: y.base)
        // Padding is not counted: window (0,0) covers rows 0-1 × cols 0-1 → (0+1+4+5)/4 = 2.5; (0,1) rows 0-1 ×
        // cols 1-3 → 24/6 = 4; (1,0) rows 1-3 × cols 0-1 → 51/6 = 8.5; (1,1) rows 1-3 × cols 1-3 → 90/9 = 10.
        #expect(y.array() == [2.5, 4, 8.5, 10])
        // A 2×2 stride-2 conv with same padding on 3×3: output 2×2, pad bottom/right only.
        let s = Padding.same.resolve(height: 3, width: 3, kernelHeight: 2, kernelWidth: 2, stride: 2)!
        #expect(s.top == 0 && s.left == 0 && s.bottom == 1 && s.right == 1 && s.outHeight == 2 && s.outWidth == 2)
        let same3 = Padding.same.resolve(height: 28, width: 28, kernelHeight: 3, kernelWidth: 3, stride: 1)!
        #expect(same3.top == 1 && same3.bottom == 1 && same3.outHeight == 28)
        let a = FloatBuffer([-2, -0.5, 0.5, 7]), out = FloatBuffer(count: 4)
        Reference.activationForward(.clip(min: 0, max: 6), count: 4, x: a.base, y: out.base)
        #expect(out.array() == [0, 0, 0.5, 6])
        Reference.activationForward(.leakyRelu(alpha: 0.1), count: 4, x: a.base, y: out.base)
        #expect(out.array() == [-0.2, -0.05, 0.5, 7])
    }
}

/// A 32×32×3 network using every new layer kind (strided and padded convs, overlapping max pool,
/// average and global average pooling, standalone and fused activations), ending in logits.
let everyLayerArchitecture = Architecture(inputShape: [32, 32, 3], layers: [
    .conv2d(filters: 16, kernel: 3, stride: 1, padding: .same, activation: .relu),
    .maxPool2d(pool: 3, stride: 2, padding: .explicit(top: 1, left: 1, bottom: 1, right: 1)),
    .conv2d(filters: 24, kernel: 3, stride: 2, padding: .explicit(top: 1, left: 0, bottom: 1, right: 0), activation: .leakyRelu(alpha: 0.1)),
    .avgPool2d(pool: 2, stride: 1, padding: .valid),
    .conv2d(filters: 32, kernel: 1, padding: .valid, activation: .clip(min: 0, max: 6)),
    .activation(.tanh),
    .globalAvgPool2d,
    .flatten,
    .dense(units: 20, activation: .sigmoid),
    .dropout(rate: 0.1),
    .dense(units: 10, activation: .linear),
])

@Suite struct LayerArchitectureTests {
    @Test func everyISATableComputesTheReferenceOutputsOfANetworkWithEveryLayerKind() throws {
        let model = try Sequential(architecture: everyLayerArchitecture, seed: 3)
        #expect(!model.endsInSoftmax)
        let n = 5
        let input = randomBuffer(n * model.inputCount, seed: 31).array()
        let reference = Inference.run(model.plan, kernels: .reference, parameters: model.parameters, input: input, count: n,
                                      storage: InferenceStorage(plan: model.plan, maxBatch: n), threads: 1, softmax: false)
        for table in simdTables {
            for threads in [1, 2] {
                let out = Inference.run(model.plan, kernels: table, parameters: model.parameters, input: input, count: n,
                                        storage: InferenceStorage(plan: model.plan, maxBatch: n), threads: threads, softmax: false)
                let e = zip(out, reference).map { abs($0 - $1) / max(1, abs($1)) }.max()!
                #expect(e < 1e-5, "\(table.name), \(threads) threads: \(e)")
            }
        }
    }

    @Test func aLinearLastLayerStaysLogitsAndPredictGivesProbabilities() throws {
        let model = try Sequential(architecture: everyLayerArchitecture, seed: 3)
        var ws = model.makeWorkspace(maxBatch: 2)
        let input = randomBuffer(2 * model.inputCount, seed: 32).array()
        let logits = model.logits(input, count: 2, workspace: &ws)
        #expect(model.outputs(input, count: 2, workspace: &ws) == logits)
        let p = model.predict(input, count: 2, workspace: &ws)
        #expect(abs(p[0..<10].reduce(0, +) - 1) < 1e-5 && abs(p[10..<20].reduce(0, +) - 1) < 1e-5)
        #expect(logits[0..<10].reduce(0, +) != 1)
        let seed = try Sequential(architecture: .seed, seed: 1)
        var sw = seed.makeWorkspace(maxBatch: 1)
        let image = randomBuffer(784, seed: 33).array()
        #expect(seed.endsInSoftmax)
        #expect(seed.outputs(image, count: 1, workspace: &sw) == seed.predict(image, count: 1, workspace: &sw))
    }

    @Test func oldArchitectureFilesDecodeAndEncodeUnchanged() throws {
        let old = #"{"inputShape":[28,28,1],"layers":[{"type":"conv2d","filters":32,"kernel":3,"padding":"valid","activation":"relu"},{"type":"maxPool2d","pool":2},{"type":"flatten"},{"type":"dense","units":128,"activation":"relu"},{"type":"dense","units":10,"activation":"softmax"}]}"#
        let decoded = try JSONDecoder().decode(Architecture.self, from: Data(old.utf8))
        #expect(decoded == .seed)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let again = String(decoding: try encoder.encode(decoded), as: UTF8.self)
        #expect(!again.contains("stride") && !again.contains("pads") && !again.contains("alpha"))
        #expect(try JSONDecoder().decode(Architecture.self, from: Data(again.utf8)) == .seed)
    }

    @Test func newLayerKindsRoundTripThroughJSON() throws {
        let data = try JSONEncoder().encode(everyLayerArchitecture)
        #expect(try JSONDecoder().decode(Architecture.self, from: data) == everyLayerArchitecture)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""pads":[1,0,1,0]"#) && text.contains(#""activation":"leakyRelu""#) && text.contains(#""type":"globalAvgPool2d""#))
        // Defaults: stride 1 / pool, valid padding, alpha 0.01, clip 0…6.
        let short = #"{"inputShape":[8,8,1],"layers":[{"type":"conv2d","filters":4,"kernel":3,"activation":"leakyRelu"},{"type":"maxPool2d","pool":3,"stride":2},{"type":"activation","activation":"clip"},{"type":"flatten"},{"type":"dense","units":2}]}"#
        let a = try JSONDecoder().decode(Architecture.self, from: Data(short.utf8))
        #expect(a.layers == [.conv2d(filters: 4, kernel: 3, stride: 1, padding: .valid, activation: .leakyRelu(alpha: 0.01)),
                             .maxPool2d(pool: 3, stride: 2, padding: .valid), .activation(.clip(min: 0, max: 6)), .flatten,
                             .dense(units: 2, activation: .linear)])
        for bad in [#"{"type":"conv2d","filters":4,"kernel":3,"padding":"same","pads":[1,1,1,1]}"#,
                    #"{"type":"conv2d","filters":4,"kernel":3,"pads":[1,1]}"#,
                    #"{"type":"dense","units":4,"activation":"swish"}"#,
                    #"{"type":"activation"}"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try JSONDecoder().decode(LayerSpec.self, from: Data(bad.utf8)) }
        }
    }

    @Test func invalidNewLayersAreRejectedWithASentence() {
        func reason(_ layers: [LayerSpec], input: [Int] = [8, 8, 3]) -> String {
            do { _ = try Sequential(architecture: Architecture(inputShape: input, layers: layers), seed: 1); return "" } catch { return "\(error)" }
        }
        #expect(reason([.conv2d(filters: 4, kernel: 3, stride: 2, padding: .explicit(top: 3, left: 0, bottom: 0, right: 0), activation: .relu), .flatten, .dense(units: 2, activation: .linear)]).contains("smaller than"))
        #expect(reason([.maxPool2d(pool: 9, stride: 1, padding: .valid), .flatten, .dense(units: 2, activation: .linear)]).contains("does not fit"))
        #expect(reason([.flatten, .dense(units: 4, activation: .leakyRelu(alpha: -1)), .dense(units: 2, activation: .linear)]).contains("alpha"))
        #expect(reason([.flatten, .dense(units: 4, activation: .clip(min: 1, max: 0)), .dense(units: 2, activation: .linear)]).contains("clip"))
        #expect(reason([.flatten, .activation(.softmax), .dense(units: 2, activation: .linear)]).contains("softmax"))
        #expect(reason([.globalAvgPool2d, .flatten, .activation(.softmax)]) == "")
    }
}
