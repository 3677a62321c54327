// Grouped convolution (ONNX Conv with 1 < group, other than depthwise; Keras Conv2D(groups:)): input channels
// [i·C/G, (i+1)·C/G) of every pixel feed filters [i·K/G, (i+1)·K/G) only. It runs as G ordinary convolutions
// through the kernel table's conv entries (direct or im2col + GEMM, AVX2 or AVX-512): NHWC interleaves the
// groups' channels in every pixel, so each group's channels are gathered into a contiguous image (and its
// weight columns into a contiguous (kH, kW, C/G, K/G) block), convolved, and scattered into the output's
// channel slice. input (N, H, W, C), weight (kH, kW, C/G, K) — Keras's grouped layout, HWIO with I = C/G —
// bias (K) → output (N, OH, OW, K). `g` is one group's geometry (channels C/G, filters K/G).
// The weight is packed into the groups' blocks once per set of weights (`pack`, NetworkPlan.packWeights: Sequential at
// init and when its parameters change, the trainer once per step), not per call and group.
// Reference: Reference.groupedConvForward / groupedConvBackward (plain loops over the full tensors).

/// Per-stage scratch of a grouped convolution, sized for `capacity` images (ShardWorkspace owns it): exactly the
/// buffers of its `Layout`.
package final class GroupedConvScratch: @unchecked Sendable {
    /// Float counts of the scratch's buffers, computed from the shapes alone (WorkspaceLayout holds one per grouped stage).
    package struct Layout: Sendable, Equatable {
        package var input, output, weight, columns: Int
        /// Training only (nil otherwise).
        package var dInput, dWeight, dColumns: Int?

        package init(_ g: ConvGeometry, groups: Int, capacity: Int, training: Bool) {
            let columnCount = max(1, saturatingProduct(min(capacity, g.imagesPerColumnBlock), g.columnSize))
            input = saturatingProduct(capacity, g.inputSize)
            output = saturatingProduct(capacity, g.outputSize)
            weight = saturatingProduct(g.weightCount, groups)
            columns = columnCount
            dInput = training ? input : nil
            dWeight = training ? g.weightCount : nil
            dColumns = training ? columnCount : nil
        }

        package var floats: [Int] { [input, output, weight, columns] + [dInput, dWeight, dColumns].compactMap { $0 } }
    }

    /// One group's input (capacity, H, W, C/G), output or output gradient (capacity, OH, OW, K/G); the weight packed
    /// for a call that brings no packed copy (G blocks, `GroupedConv.pack`).
    let input, output, weight: FloatBuffer
    /// The conv kernel's im2col matrix or padded-image scratch for one group (ConvKernels.generalForward).
    let columns: FloatBuffer
    /// Training only: one group's input gradient, weight gradient and column gradients.
    let dInput, dWeight, dColumns: FloatBuffer?

    package convenience init(_ g: ConvGeometry, groups: Int, capacity: Int, training: Bool) {
        self.init(layout: Layout(g, groups: groups, capacity: capacity, training: training))
    }

    package init(layout: Layout) {
        input = FloatBuffer(count: layout.input)
        output = FloatBuffer(count: layout.output)
        weight = FloatBuffer(count: layout.weight)
        columns = FloatBuffer(count: layout.columns)
        dInput = layout.dInput.map { FloatBuffer(count: $0) }
        dWeight = layout.dWeight.map { FloatBuffer(count: $0) }
        dColumns = layout.dColumns.map { FloatBuffer(count: $0) }
    }

    /// Bytes of the buffers this scratch holds (counted from the buffers, not from the layout; tests compare them).
    var allocatedBytes: Int {
        4 * (input.count + output.count + weight.count + columns.count + (dInput?.count ?? 0) + (dWeight?.count ?? 0) + (dColumns?.count ?? 0))
    }
}

package enum GroupedConv {
    /// Copies `width` channels starting at `from` of each of `pixels` pixels with `stride` channels into a
    /// contiguous (pixels, width) block, or back (scatter) when `gather` is false.
    @inline(__always)
    static func move(pixels: Int, stride: Int, offset: Int, width: Int, full: UnsafeMutablePointer<Float>, packed: UnsafeMutablePointer<Float>,
                     gather: Bool) {
        for p in 0..<pixels {
            let f = full + p * stride + offset, q = packed + p * width
            if gather { for c in 0..<width { q[c] = f[c] } } else { for c in 0..<width { f[c] = q[c] } }
        }
    }

    /// weight (kH, kW, C/G, K) → packed: G blocks (kH, kW, C/G, K/G), group after group — each group's conv weight.
    package static func pack(_ g: ConvGeometry, groups: Int, weight: UnsafePointer<Float>, packed: UnsafeMutablePointer<Float>) {
        let kg = g.filters, w = UnsafeMutablePointer(mutating: weight)
        for group in 0..<groups {
            move(pixels: g.taps * g.channels, stride: kg * groups, offset: group * kg, width: kg, full: w,
                 packed: packed + group * g.weightCount, gather: true)
        }
    }

    /// `packedWeight` (`pack` of `weight`, or nil: packed into the scratch now).
    static func packed(_ g: ConvGeometry, groups: Int, weight: UnsafePointer<Float>, packedWeight: UnsafePointer<Float>?,
                       scratch s: GroupedConvScratch) -> UnsafePointer<Float> {
        if let packedWeight { return packedWeight }
        pack(g, groups: groups, weight: weight, packed: s.weight.base)
        return UnsafePointer(s.weight.base)
    }

    /// Output = bias + the group's taps; ReLU if g.relu (fused in the per-group conv).
    package static func forward(_ g: ConvGeometry, groups: Int, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                packedWeight: UnsafePointer<Float>? = nil, bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                scratch s: GroupedConvScratch, kernels: KernelSet) {
        let cg = g.channels, kg = g.filters, c = cg * groups, k = kg * groups
        let x = UnsafeMutablePointer(mutating: input)
        let w = packed(g, groups: groups, weight: weight, packedWeight: packedWeight, scratch: s)
        for group in 0..<groups {
            move(pixels: n * g.height * g.width, stride: c, offset: group * cg, width: cg, full: x, packed: s.input.base, gather: true)
            kernels.convForward(g, n, s.input.base, w + group * g.weightCount, bias + group * kg, s.output.base, s.columns.base)
            move(pixels: n * g.outHeight * g.outWidth, stride: k, offset: group * kg, width: kg, full: output, packed: s.output.base, gather: false)
        }
    }

    /// dOutput (N, OH, OW, K) w.r.t. the pre-activation (the ReLU mask already applied). dWeight += Σ x · dOut,
    /// dBias += Σ dOut, dInput (if given) = Σ w · dOut (written). Needs a training workspace's scratch. A group's
    /// weight-gradient columns are copied into the scratch, accumulated there by the conv kernel and copied back
    /// (two plain copies; the same sums as zeroing the scratch and adding it in when the gradient starts at zero).
    package static func backward(_ g: ConvGeometry, groups: Int, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                 packedWeight: UnsafePointer<Float>? = nil, dOutput: UnsafePointer<Float>,
                                 dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>,
                                 dInput: UnsafeMutablePointer<Float>?, scratch s: GroupedConvScratch, kernels: KernelSet) {
        let cg = g.channels, kg = g.filters, c = cg * groups, k = kg * groups
        let x = UnsafeMutablePointer(mutating: input)
        let dy = UnsafeMutablePointer(mutating: dOutput)
        guard let dW = s.dWeight, let dCols = s.dColumns, let groupDX = s.dInput else {
            preconditionFailure("grouped conv backward needs a training workspace")
        }
        let w = packed(g, groups: groups, weight: weight, packedWeight: packedWeight, scratch: s)
        let dX: FloatBuffer? = dInput == nil ? nil : groupDX
        for group in 0..<groups {
            move(pixels: n * g.height * g.width, stride: c, offset: group * cg, width: cg, full: x, packed: s.input.base, gather: true)
            move(pixels: n * g.outHeight * g.outWidth, stride: k, offset: group * kg, width: kg, full: dy, packed: s.output.base, gather: true)
            move(pixels: g.taps * cg, stride: k, offset: group * kg, width: kg, full: dWeight, packed: dW.base, gather: true)
            kernels.convBackward(g, n, s.input.base, w + group * g.weightCount, s.output.base, dW.base, dBias + group * kg, dX?.base,
                                 s.columns.base, dCols.base)
            move(pixels: g.taps * cg, stride: k, offset: group * kg, width: kg, full: dWeight, packed: dW.base, gather: false)
            if let dX, let dInput {
                move(pixels: n * g.height * g.width, stride: c, offset: group * cg, width: cg, full: dInput, packed: dX.base, gather: false)
            }
        }
    }
}
