// loupe-engine-bench: training and inference speed of LoupeEngine on Fashion-MNIST.
//   swift run -c release loupe-engine-bench train [--epochs 10] [--threads 2] [--batch 128] [--seed 42]
//   swift run -c release loupe-engine-bench infer [--reps 5] [--n1 5000] [--n256 300]
//   swift run -c release loupe-engine-bench kernels [--n 64] [--reps 50]   (--net cnn32: the 32×32×3 CNN stage by stage)
//   swift run -c release loupe-engine-bench peak                 (the peak-FMA probe alone: ymm and zmm)
//   swift run -c release loupe-engine-bench cnn32 [--reps 5] [--n1 5000] [--n256 100]
//     (a 32×32×3 CNN on seeded random images: the `cifar_bn` graph of the ONNX import tests after BN
//     folding — strided/same-padded convs on the im2col + GEMM path, global average pooling; its ONNX
//     Runtime counterpart is Benchmarks/EngineBench/cnn32_ort.py, both alternated by compare_cnn32.sh)
// Data: /usr/share/datasets/fashion-mnist (or --data DIR), read here with a few lines (gunzip via the
// gzip CLI) so the benchmark does not depend on LoupeData. LOUPE_ISA=avx2 measures the fallback kernels.
// Output: one JSON line per measurement. Every command first prints the peak-FMA probe's line ("fma_peak": one
// thread's best FMA GFLOP/s on the vector width of the kernel table in use) and states each speed figure also as
// GFLOP/s and as % of that peak (× threads for 2-thread figures).
import Glibc
import LoupeEngine
@_spi(Kernels) import LoupeKernels
import LoupeKernelsAVX512

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU seconds used by this process (all threads): with other load on the machine, epoch wall time
/// includes waiting for a core, CPU time does not.
func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
/// CPU seconds used by the calling thread.
func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
func loadAverage() -> Double {
    var l = [Double](repeating: 0, count: 3)
    return getloadavg(&l, 3) > 0 ? l[0] : -1
}

/// The CPU's model name (/proc/cpuinfo), for the report lines.
let cpuModel: String = {
    guard let f = fopen("/proc/cpuinfo", "r") else { return "unknown" }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, 512, f) != nil {
        let s = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if s.hasPrefix("model name"), let colon = s.firstIndex(of: ":") {
            return s[s.index(after: colon)...].trimmingCharacters(in: " \t\n")
        }
    }
    return "unknown"
}()

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var a = startIndex, b = endIndex
        while a < b, set.contains(self[a]) { a = index(after: a) }
        while b > a, set.contains(self[index(before: b)]) { b = index(before: b) }
        return String(self[a..<b])
    }
}

/// One thread's peak FMA throughput (GFLOP/s) on a vector width: the best of `reps` runs of the probe
/// (12 independent FMA chains, ~1-2 ms of this thread's CPU time each). Best, not median:
/// other load only ever lowers it.
func fmaPeak(_ vector: String, reps: Int = 40) -> Double {
    let iterations = 1_000_000
    var best = 0.0
    var sink: Float = 0
    for r in 0..<reps {
        let t0 = threadCPUSeconds()
        switch vector {
        case "zmm": sink += zmmFMAProbe(iterations: iterations, seed: Float(r + 1))
        default: sink += FMAProbe.ymm(iterations: iterations, seed: Float(r + 1))
        }
        let dt = threadCPUSeconds() - t0
        let lanes = vector == "zmm" ? 16.0 : 8.0
        best = max(best, Double(iterations) * 12 * lanes * 2 / dt / 1e9)
    }
    if sink == 12345 { print("") }   // keeps the probe's result alive
    return best
}

/// The vector register the kernel table `name` computes in.
func vectorOf(_ name: String) -> String { name == "avx512" ? "zmm" : name == "avx2" ? "ymm" : "scalar" }

/// The probe for the table in use, printed once per run; every figure's % of peak refers to it.
let peakGFLOPs: Double = {
    let vector = vectorOf(engineKernelName)
    let g = vector == "scalar" ? 0 : fmaPeak(vector)
    emit([("event", "\"fma_peak\""), ("cpu", "\"\(cpuModel)\""), ("kernels", "\"\(engineKernelName)\""), ("vector", "\"\(vector)\""),
          ("peak_gflops_1thread", fmt(g, 1)), ("loadavg1", fmt(loadAverage(), 2))])
    return g
}()

/// (GFLOP/s, % of the measured peak × threads) for `flops` done in `seconds`.
func flopFields(_ prefix: String, flops: Double, seconds: Double, threads: Int) -> [(String, String)] {
    let g = flops / seconds / 1e9
    return [("\(prefix)_gflops", fmt(g, 1)), ("\(prefix)_pct_of_peak", peakGFLOPs > 0 ? fmt(100 * g / (peakGFLOPs * Double(threads)), 1) : "null")]
}

func readIDX(_ path: String) -> [UInt8] {
    var source = path
    if path.hasSuffix(".gz") {
        source = "/tmp/loupe-engine-bench-\(getpid())-" + String(path.split(separator: "/").last!.dropLast(3))
        guard system("gzip -dc '\(path)' > '\(source)'") == 0 else { fatalError("gunzip \(path) failed") }
    }
    guard let f = fopen(source, "rb") else { fatalError("cannot open \(source)") }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    fclose(f)
    if source != path { unlink(source) }
    let dims = Int(bytes[3])
    return Array(bytes[(4 + 4 * dims)...])
}

struct Options {
    var command = "infer"
    var values: [String: String] = [:]
    init() {
        var args = Array(CommandLine.arguments.dropFirst())
        if let first = args.first, !first.hasPrefix("--") { command = first; args.removeFirst() }
        var i = 0
        while i < args.count {
            if args[i].hasPrefix("--"), i + 1 < args.count { values[String(args[i].dropFirst(2))] = args[i + 1]; i += 2 } else { i += 1 }
        }
    }
    func int(_ k: String, _ d: Int) -> Int { values[k].flatMap { Int($0) } ?? d }
    func string(_ k: String, _ d: String) -> String { values[k] ?? d }
}

let options = Options()
let dataDir = options.string("data", "/usr/share/datasets/fashion-mnist")
func loadSplit(_ prefix: String) -> (images: [Float], labels: [UInt8], count: Int) {
    let pixels = readIDX("\(dataDir)/\(prefix)-images-idx3-ubyte.gz")
    let labels = readIDX("\(dataDir)/\(prefix)-labels-idx1-ubyte.gz")
    return (pixels.map { Float($0) / 255 }, labels, labels.count)
}

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
func percentile(_ xs: [Double], _ p: Double) -> Double { let s = xs.sorted(); return s[min(s.count - 1, Int(Double(s.count) * p))] }
func fmt(_ x: Double, _ digits: Int = 2) -> String {
    var m = 1.0; for _ in 0..<digits { m *= 10 }
    return String((x * m).rounded() / m)
}
func emit(_ fields: [(String, String)]) {
    print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
    fflush(nil)
}

/// Batch-1 latency and batch-256 throughput at 1 and 2 threads, one JSON line per (threads, rep).
func measureInference(_ model: Sequential, singles: [[Float]], batch256: [Float], event: String, reps: Int, n1: Int, n256: Int) {
    for threads in [1, 2] {
        var ws1 = model.makeWorkspace(maxBatch: 1)
        var ws256 = model.makeWorkspace(maxBatch: 256)
        for rep in 0..<reps {
            for i in 0..<500 { _ = model.predict(singles[i % singles.count], count: 1, workspace: &ws1, threads: threads) }
            var lat: [Double] = []
            lat.reserveCapacity(n1)
            let c0 = cpuSeconds()
            for i in 0..<n1 {
                let t0 = now()
                _ = model.predict(singles[i % singles.count], count: 1, workspace: &ws1, threads: threads)
                lat.append(now() - t0)
            }
            let c1 = cpuSeconds()
            for _ in 0..<10 { _ = model.predict(batch256, count: 256, workspace: &ws256, threads: threads) }
            var bl: [Double] = []
            let c2 = cpuSeconds()
            for _ in 0..<n256 {
                let t0 = now()
                _ = model.predict(batch256, count: 256, workspace: &ws256, threads: threads)
                bl.append(now() - t0)
            }
            let flops = 2 * Double(model.plan.forwardMACsPerImage)
            emit([("event", "\"\(event)\""), ("kernels", "\"\(engineKernelName)\""), ("threads", "\(threads)"), ("rep", "\(rep + 1)"),
                  ("batch1_median_us", fmt(median(lat) * 1e6, 1)), ("batch1_p99_us", fmt(percentile(lat, 0.99) * 1e6, 1)),
                  ("batch1_cpu_us_per_call", fmt((c1 - c0) / Double(n1) * 1e6, 1)),
                  ("batch256_median_ms", fmt(median(bl) * 1e3, 3)), ("batch256_img_per_s", fmt(256 / median(bl), 0)),
                  ("batch256_min_ms", fmt(bl.min()! * 1e3, 3)), ("batch256_cpu_ms_per_call", fmt((cpuSeconds() - c2) / Double(n256) * 1e3, 3))]
                 + flopFields("batch1", flops: flops, seconds: median(lat), threads: 1)
                 + flopFields("batch256", flops: 256 * flops, seconds: median(bl), threads: threads)
                 + [("mflop_per_image", fmt(flops / 1e6, 3)), ("loadavg1", fmt(loadAverage(), 2))])
        }
    }
}

/// The `cifar_bn` import test graph (Tests/EndToEndTests/python/onnx_import_check.py) as the importer maps it.
let cnn32Architecture = Architecture(inputShape: [32, 32, 3], layers: [
    .conv2d(filters: 16, kernel: 3, padding: .same, activation: .relu),
    .maxPool2d(pool: 2),
    .conv2d(filters: 32, kernel: 3, stride: 2, padding: .same, activation: .clip(min: 0, max: 6)),
    .conv2d(filters: 32, kernel: 1, padding: .valid, activation: .tanh),
    .globalAvgPool2d,
    .flatten,
    .dense(units: 10, activation: .softmax),
])

switch options.command {
case "train":
    let epochs = options.int("epochs", 10), threads = options.int("threads", 2), batch = options.int("batch", 128)
    let seed = UInt64(options.int("seed", 42))
    let train = loadSplit("train"), test = loadSplit("t10k")
    // Keras's validation_split=0.2: the last 20% of the training file, unshuffled.
    let trainCount = train.count * 8 / 10, valCount = train.count - trainCount
    let trainImages = Array(train.images[0..<(trainCount * 784)]), trainLabels = Array(train.labels[0..<trainCount])
    let valImages = Array(train.images[(trainCount * 784)...]), valLabels = Array(train.labels[trainCount...])
    let model = try Sequential(architecture: .seed, seed: seed)
    let trainer = Trainer(model: model, configuration: TrainingConfiguration(epochs: epochs, batchSize: batch, learningRate: 1e-3,
                                                                             optimizer: .adam, seed: seed, threads: threads))
    var epochSeconds: [Double] = [], epochCPU: [Double] = []
    for epoch in 0..<epochs {
        let c0 = cpuSeconds()
        let t0 = now()
        let r = trainer.trainEpoch(images: trainImages, labels: trainLabels, count: trainCount, epoch: epoch)
        let t1 = now()
        let v = trainer.evaluate(images: valImages, labels: valLabels, count: valCount)
        let t2 = now()
        let c2 = cpuSeconds()
        epochSeconds.append(t2 - t0)
        epochCPU.append(c2 - c0)
        let flops = Double(trainCount) * 2 * Double(model.plan.trainingMACsPerImage) + Double(valCount) * 2 * Double(model.plan.forwardMACsPerImage)
        emit([("event", "\"epoch\""), ("kernels", "\"\(engineKernelName)\""), ("epoch", "\(epoch + 1)"), ("threads", "\(threads)"),
              ("loss", fmt(r.loss, 4)), ("accuracy", fmt(r.accuracy, 4)), ("val_loss", fmt(v.loss, 4)), ("val_accuracy", fmt(v.accuracy, 4)),
              ("train_s", fmt(t1 - t0, 3)), ("val_s", fmt(t2 - t1, 3)), ("epoch_s", fmt(t2 - t0, 3)),
              ("epoch_cpu_s", fmt(c2 - c0, 3))] + flopFields("epoch", flops: flops, seconds: t2 - t0, threads: threads)
             // Per CPU-second (both threads' CPU time together): the rate while on a core, whatever the machine's load.
             + flopFields("epoch_cpu", flops: flops, seconds: c2 - c0, threads: 1)
             + [("loadavg1", fmt(loadAverage(), 2))])
    }
    let t = trainer.evaluate(images: test.images, labels: test.labels, count: test.count)
    let epochFLOPs = Double(trainCount) * 2 * Double(model.plan.trainingMACsPerImage) + Double(valCount) * 2 * Double(model.plan.forwardMACsPerImage)
    emit([("event", "\"train_summary\""), ("kernels", "\"\(engineKernelName)\""), ("threads", "\(threads)"), ("epochs", "\(epochs)"),
          ("median_epoch_s", fmt(median(epochSeconds.count > 1 ? Array(epochSeconds.dropFirst()) : epochSeconds), 3)),
          ("median_epoch_cpu_s", fmt(median(epochCPU.count > 1 ? Array(epochCPU.dropFirst()) : epochCPU), 3)),
          ("first_epoch_s", fmt(epochSeconds[0], 3)), ("total_s", fmt(epochSeconds.reduce(0, +), 2)),
          ("test_loss", fmt(t.loss, 4)), ("test_accuracy", fmt(t.accuracy, 4))]
         + flopFields("median_epoch", flops: epochFLOPs, seconds: median(epochSeconds.count > 1 ? Array(epochSeconds.dropFirst()) : epochSeconds),
                      threads: threads))

case "infer":
    let test = loadSplit("t10k")
    let reps = options.int("reps", 5), n1 = options.int("n1", 5000), n256 = options.int("n256", 300)
    let model: Sequential
    if let path = options.values["weights"] {   // raw float32 in slot order, e.g. the Keras fixture
        let bytes = readIDXRaw(path)
        model = try Sequential(architecture: .seed, parameters: bytes)
    } else {
        model = try Sequential(architecture: .seed, seed: 42)
    }
    let singles = (0..<100).map { Array(test.images[($0 * 784)..<(($0 + 1) * 784)]) }
    let batch256 = Array(test.images[0..<(256 * 784)])
    measureInference(model, singles: singles, batch256: batch256, event: "infer", reps: reps, n1: n1, n256: n256)
    // Accuracy sanity check over the test set (meaningful with --weights), for several batch/thread shapes.
    for (maxBatch, threads) in [(256, 2), (256, 1), (1, 1), (17, 2)] {
        var ws = model.makeWorkspace(maxBatch: maxBatch)
        let p = model.predict(test.images, count: test.count, workspace: &ws, threads: threads)
        var correct = 0
        for b in 0..<test.count {
            var best = 0
            for j in 1..<10 where p[b * 10 + j] > p[b * 10 + best] { best = j }
            if best == Int(test.labels[b]) { correct += 1 }
        }
        emit([("event", "\"infer_accuracy\""), ("max_batch", "\(maxBatch)"), ("threads", "\(threads)"),
              ("test_accuracy", fmt(Double(correct) / Double(test.count), 4))])
    }

case "explain":
    // Explanations per image on the seed network, one thread (the inference worker's setting): integrated
    // gradients with --steps (32) midpoints as one batch, and saliency. Weights: --weights raw float32 (e.g.
    // the Keras fixture) or seeded. Compare with Tests/EndToEndTests/python/explain_reference.py bench (numpy).
    let test = loadSplit("t10k")
    let images = options.int("images", 200), reps = options.int("reps", 5), steps = options.int("steps", 32)
    let model: Sequential
    if let path = options.values["weights"] { model = try Sequential(architecture: .seed, parameters: readIDXRaw(path)) }
    else { model = try Sequential(architecture: .seed, seed: 42) }
    var explainer = try Explainer(model: model)
    for (name, opts) in [("integrated_gradients_\(steps)", AttributionOptions(method: .integratedGradients, steps: steps)),
                         ("saliency", AttributionOptions(method: .saliency))] {
        var perImage: [Double] = []
        for _ in 0..<reps {
            let t0 = now()
            for i in 0..<images { _ = try explainer.explain(Array(test.images[(i * 784)..<((i + 1) * 784)]), options: opts) }
            perImage.append((now() - t0) / Double(images) * 1e3)
        }
        emit([("event", "\"explain\""), ("kernels", "\"\(engineKernelName)\""), ("method", "\"\(name)\""), ("images", "\(images)"),
              ("median_ms_per_image", fmt(median(perImage), 4)), ("min_ms_per_image", fmt(perImage.min()!, 4)), ("loadavg1", fmt(loadAverage(), 2))])
    }

case "int8":
    // fp32 vs int8 on the seed network in one run: the fp32 model (--weights raw float32 in slot order, e.g.
    // the data section of models/fashion/1/model.loupe) is quantized here as `loupe quantize` does (minmax,
    // the first --calibration training images), then both are timed at batch 1 and 256, 1 and 2 threads.
    let test = loadSplit("t10k"), train = loadSplit("train")
    let reps = options.int("reps", 3), n1 = options.int("n1", 3000), n256 = options.int("n256", 100)
    let fp32: Sequential
    if let path = options.values["weights"] {
        fp32 = try Sequential(architecture: .seed, parameters: readIDXRaw(path))
    } else {
        fp32 = try Sequential(architecture: .seed, seed: 42)
    }
    let calibration = options.int("calibration", 1000)
    let int8 = try fp32.quantized(calibrationImages: Array(train.images.prefix(calibration * 784)), count: calibration, calibrator: .minmax)
    let singles = (0..<100).map { Array(test.images[($0 * 784)..<(($0 + 1) * 784)]) }
    let batch256 = Array(test.images[0..<(256 * 784)])
    for (name, model) in [("fp32", fp32), ("int8", int8)] {
        var ws = model.makeWorkspace(maxBatch: 256)
        let p = model.predict(test.images, count: test.count, workspace: &ws, threads: 2)
        var correct = 0
        for b in 0..<test.count {
            var best = 0
            for j in 1..<10 where p[b * 10 + j] > p[b * 10 + best] { best = j }
            if best == Int(test.labels[b]) { correct += 1 }
        }
        emit([("event", "\"int8_accuracy\""), ("precision", "\"\(name)\""), ("test_accuracy", fmt(Double(correct) / Double(test.count), 4)),
              ("weight_bytes", "\(model.weightBytes)")])
    }
    for threads in [1, 2] {
        for rep in 0..<reps {
            for (name, model) in [("fp32", fp32), ("int8", int8)] {
                var ws1 = model.makeWorkspace(maxBatch: 1), ws256 = model.makeWorkspace(maxBatch: 256)
                for i in 0..<300 { _ = model.predict(singles[i % 100], count: 1, workspace: &ws1, threads: threads) }
                // Wall clock per call, and (1 thread) this thread's CPU time per call: under other load a call's wall
                // time includes waiting for a core, its CPU time does not.
                var lat: [Double] = [], cpu1: [Double] = []
                for i in 0..<n1 {
                    let c0 = threadCPUSeconds(), t0 = now()
                    _ = model.predict(singles[i % 100], count: 1, workspace: &ws1, threads: threads)
                    lat.append(now() - t0)
                    cpu1.append(threadCPUSeconds() - c0)
                }
                for _ in 0..<5 { _ = model.predict(batch256, count: 256, workspace: &ws256, threads: threads) }
                var bl: [Double] = [], cpu256: [Double] = []
                for _ in 0..<n256 {
                    let c0 = threadCPUSeconds(), t0 = now()
                    _ = model.predict(batch256, count: 256, workspace: &ws256, threads: threads)
                    bl.append(now() - t0)
                    cpu256.append(threadCPUSeconds() - c0)
                }
                let cpuFields: [(String, String)] = threads == 1
                    ? [("batch1_cpu_median_us", fmt(median(cpu1) * 1e6, 1)), ("batch256_cpu_img_per_s", fmt(256 / median(cpu256), 0))] : []
                emit([("event", "\"int8_infer\""), ("precision", "\"\(name)\""),
                      ("kernels", "\"\(name == "int8" ? int8KernelName : engineKernelName)\""), ("threads", "\(threads)"), ("rep", "\(rep + 1)"),
                      ("batch1_median_us", fmt(median(lat) * 1e6, 1)), ("batch1_p99_us", fmt(percentile(lat, 0.99) * 1e6, 1)),
                      ("batch256_median_ms", fmt(median(bl) * 1e3, 3)), ("batch256_img_per_s", fmt(256 / median(bl), 0)),
                      ("batch256_best_img_per_s", fmt(256 / bl.min()!, 0))] + cpuFields + [("loadavg1", fmt(loadAverage(), 2))])
            }
        }
    }

case "cnn32":
    let model = try Sequential(architecture: cnn32Architecture, seed: 42)
    var state: UInt64 = 12345
    func next() -> Float { state = state &* 6364136223846793005 &+ 1442695040888963407; return Float(state >> 40) / Float(1 << 24) }
    let images = (0..<(256 * 3072)).map { _ in next() }
    let singles = (0..<100).map { Array(images[($0 * 3072)..<(($0 + 1) * 3072)]) }
    measureInference(model, singles: singles, batch256: images, event: "cnn32", reps: options.int("reps", 5), n1: options.int("n1", 5000),
                     n256: options.int("n256", 100))

case "peak":
    _ = peakGFLOPs
    for vector in ISAInfo.hasAVX512 ? ["ymm", "zmm"] : ["ymm"] {
        emit([("event", "\"fma_probe\""), ("cpu", "\"\(cpuModel)\""), ("vector", "\"\(vector)\""), ("peak_gflops_1thread", fmt(fmaPeak(vector), 1))])
    }

case "kernels":
    if options.string("net", "seed") == "cnn32" { cnn32StageBench(n: options.int("n", 16), reps: options.int("reps", 200)); break }
    kernelBench(n: options.int("n", 64), reps: options.int("reps", 50), includeReference: options.int("reference", 0) != 0)

default:
    print("usage: loupe-engine-bench train|infer|explain|int8|cnn32|kernels|peak [--threads N] [--epochs N] [--weights raw.f32] ...")
    exit(2)
}

func readIDXRaw(_ path: String) -> [Float] {
    guard let f = fopen(path, "rb") else { fatalError("cannot open \(path)") }
    defer { fclose(f) }
    fseek(f, 0, SEEK_END); let size = ftell(f); fseek(f, 0, SEEK_SET)
    var out = [Float](repeating: 0, count: size / 4)
    _ = out.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, f) }
    return out
}
