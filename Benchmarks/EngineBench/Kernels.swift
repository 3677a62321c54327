// `loupe-engine-bench kernels`: per-kernel timings for the seed network's shapes, for every kernel
// table this CPU can run (reference is skipped unless --reference 1), one shard of --n images.
import Glibc
import LoupeEngine
@_spi(Kernels) import LoupeKernels
import LoupeKernelsAVX512

func kernelBench(n: Int, reps: Int, includeReference: Bool) {
    var tables = [KernelSet.avx2]
    if ISAInfo.hasAVX512 { tables.append(avx512KernelSet) }
    if includeReference { tables.insert(KernelSet.reference, at: 0) }
    let conv = ConvPoolGeometry(conv: ConvGeometry(height: 28, width: 28, channels: 1, filters: 32, kernel: 3, padTop: 0, padLeft: 0,
                                                   outHeight: 26, outWidth: 26, relu: true), pool: 2)
    var rng = SeededGenerator(seed: 9)
    func buffer(_ count: Int, scale: Float = 1) -> FloatBuffer {
        let b = FloatBuffer(count: count)
        for i in 0..<count { b[i] = (rng.nextUnitFloat() * 2 - 1) * scale }
        return b
    }
    let x = buffer(n * 784), cw = buffer(288, scale: 0.5), cb = buffer(32, scale: 0.1)
    let pooled = buffer(n * 5408), arg = IndexBuffer(count: n * 5408)
    let w1 = buffer(5408 * 128, scale: 0.03), b1 = buffer(128), h = buffer(n * 128)
    let dH = buffer(n * 128), dW1 = buffer(5408 * 128), dB1 = buffer(128), dP = buffer(n * 5408)
    let dCW = buffer(288), dCB = buffer(32)
    for table in tables {
        let vector = vectorOf(table.name)
        let peak = vector == "scalar" ? 0 : fmaPeak(vector)
        func time(_ name: String, flops: Double, _ body: () -> Void) {
            body()
            // Wall time and this thread's CPU time per call: on a loaded machine the wall time includes waiting
            // for a core, the CPU time does not (the GFLOP/s and % of peak come from the CPU-time median).
            var samples: [Double] = [], cpu: [Double] = []
            for _ in 0..<reps {
                let t0 = now(), c0 = threadCPUSeconds()
                body()
                cpu.append(threadCPUSeconds() - c0); samples.append(now() - t0)
            }
            let med = median(samples), cpuMed = median(cpu)
            let g = flops * Double(n) / cpuMed / 1e9
            emit([("event", "\"kernel\""), ("kernels", "\"\(table.name)\""), ("kernel", "\"\(name)\""), ("n", "\(n)"),
                  ("median_us", fmt(med * 1e6, 1)), ("cpu_median_us", fmt(cpuMed * 1e6, 1)), ("us_per_image", fmt(cpuMed * 1e6 / Double(n), 2)),
                  ("gflops", fmt(g, 1)), ("pct_of_peak", peak > 0 ? fmt(100 * g / peak, 1) : "null"),
                  ("peak_gflops", fmt(peak, 1)), ("vector", "\"\(vector)\"")])
        }
        time("convPool forward", flops: 2 * 194_688) { table.convPoolForward(conv, n, x.base, cw.base, cb.base, pooled.base, arg.base) }
        time("convPool backward", flops: 2 * 194_688) { table.convPoolBackward(conv, n, x.base, cw.base, dP.base, arg.base, dCW.base, dCB.base, nil) }
        time("dense1 forward", flops: 2 * 692_224) { table.denseForward(n, 5408, 128, true, pooled.base, w1.base, b1.base, h.base) }
        time("dense1 backward (dW, dB)", flops: 2 * 692_224) { table.denseBackward(n, 5408, 128, pooled.base, w1.base, nil, dH.base, dW1.base, dB1.base, nil) }
        time("dense1 backward (dW, dB, dX)", flops: 4 * 692_224) { table.denseBackward(n, 5408, 128, pooled.base, w1.base, nil, dH.base, dW1.base, dB1.base, dP.base) }
        let w1T = FloatBuffer(count: 5408 * 128)
        time("dense1 transpose (1 thread)", flops: 0) { table.transpose(5408, 128, w1.base, w1T.base, 0, 5408) }
        time("dense1 backward (dW, dB, dX via Wt)", flops: 4 * 692_224) { table.denseBackward(n, 5408, 128, pooled.base, w1.base, w1T.base, dH.base, dW1.base, dB1.base, dP.base) }
    }
}

/// `loupe-engine-bench kernels --net cnn32`: each stage of the 32×32×3 CNN (cnn32Architecture) on one chunk of
/// --n images, per kernel table, as Executor.forward runs it (thread-CPU-time median; GFLOP/s for the convs).
func cnn32StageBench(n: Int, reps: Int) {
    var tables = [KernelSet.avx2]
    if ISAInfo.hasAVX512 { tables.append(avx512KernelSet) }
    let model = try! Sequential(architecture: cnn32Architecture, seed: 42)
    let plan = model.plan
    let params = FloatBuffer(model.parameters)
    var rng = SeededGenerator(seed: 9)
    let input = FloatBuffer(count: n * plan.inputSize)
    for i in 0..<input.count { input[i] = rng.nextUnitFloat() }
    for table in tables {
        let vector = vectorOf(table.name)
        let peak = fmaPeak(vector)
        let ws = ShardWorkspace(plan: plan, capacity: n, training: false)
        var x = UnsafePointer(input.base)
        var total = 0.0
        for (i, stage) in plan.stages.enumerated() {
            let y = ws.act[i], src = x
            var macs = 0
            let body: () -> Void
            switch stage.op {
            case let .conv(g, w, b):
                macs = g.outHeight * g.outWidth * g.weightCount
                body = { table.convForward(g, n, src, params.base + w, params.base + b, y, ws.columns[i] ?? y) }
            case let .maxPool(g): body = { table.maxPoolForward(g, n, src, y, ws.argmax[i]) }
            case let .avgPool(g): body = { table.avgPoolForward(g, n, src, y) }
            case let .activation(f): body = { table.activationForward(f, n * stage.outputSize, src, y) }
            case let .dense(inputs, outputs, relu, w, b):
                macs = inputs * outputs
                body = { table.denseForward(n, inputs, outputs, relu, src, params.base + w, params.base + b, y) }
            default: body = {}
            }
            body()
            var cpu: [Double] = []
            for _ in 0..<reps { let c0 = threadCPUSeconds(); body(); cpu.append(threadCPUSeconds() - c0) }
            let med = median(cpu)
            total += med
            let g = 2 * Double(macs) * Double(n) / med / 1e9
            emit([("event", "\"cnn32_stage\""), ("kernels", "\"\(table.name)\""), ("stage", "\(i)"), ("op", "\"\(String(describing: stage.op).prefix(40))\""),
                  ("n", "\(n)"), ("us_per_image", fmt(med * 1e6 / Double(n), 3)), ("gflops", fmt(g, 1)),
                  ("pct_of_peak", macs > 0 ? fmt(100 * g / peak, 1) : "null")])
            if case .flatten = stage.op {} else { x = UnsafePointer(y) }
        }
        emit([("event", "\"cnn32_stages_total\""), ("kernels", "\"\(table.name)\""), ("n", "\(n)"), ("us_per_image", fmt(total * 1e6 / Double(n), 3)),
              ("gflops", fmt(2 * Double(plan.forwardMACsPerImage) * Double(n) / total / 1e9, 1))])
    }
}
