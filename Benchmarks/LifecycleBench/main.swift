// loupe-lifecycle-bench: costs of the model lifecycle on the seed network (693k parameters,
// 2.8 MB file, 10 golden samples like `loupe train` writes).
//   swift run -c release loupe-lifecycle-bench [--reps 15]   (--isa: print the engine's kernel table and exit)
// Measures: loading one version (read, verify SHA-256 + header, build, self-test, publish) end to
// end and by stage; a reload pass that finds nothing new; resolve() per request (1 and 2 threads);
// drift observe() per image (batches of 1 and 64); the feedback window's record + claim per
// prediction at three window sizes (O(1): the figure must not grow with the window; target < 1 µs);
// the canary routing decision per request (hash of the key header + route()). Output: one JSON line per measurement, medians;
// single-thread figures are this thread's CPU time (reload passes run on the calling thread),
// `load_duration` is the repository's own wall-clock figure, two-thread resolve is wall time.
import Glibc
import Logging
import LoupeData
import LoupeEngine
import LoupeService

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// This thread's CPU time: far less inflated by other load on a shared machine than wall time.
func cpuNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
}

final class Box: @unchecked Sendable { let repo: ModelRepository; init(_ r: ModelRepository) { repo = r } }

/// One thread of the two-thread resolve measurement (a plain C entry point, no actor).
nonisolated func resolveThread(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let repo = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().repo
    var s = 0
    for _ in 0..<1_000_000 { s &+= repo.resolve(model: nil, version: nil)!.version }
    return s == 42 ? raw : nil
}

func report(_ name: String, _ fields: [(String, Double)]) {
    let body = fields.map { "\"\($0.0)\": \((($0.1 * 1000).rounded() / 1000))" }.joined(separator: ", ")
    print("{\"bench\": \"\(name)\", \(body)}")
}

var reps = 15
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    if a == "--reps", let v = args.popFirst(), let n = Int(v) { reps = n }
    if a == "--isa" { print(ISA.kernels.name); exit(0) }   // the kernel table cpuid (or LOUPE_ISA) picked
}

// A seed-architecture model with 10 golden samples (pseudo-images) and input statistics.
func pixels(_ n: Int, seed: UInt64 = 42) -> [UInt8] {
    var rng = seed
    return (0..<n).map { _ in rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return UInt8(truncatingIfNeeded: rng >> 24) }
}
let network = try Sequential(architecture: .seed, seed: 42)
let goldenPixels = pixels(10 * 784)
var ws = network.makeWorkspace(maxBatch: 10)
let goldenProbabilities = network.predict(goldenPixels.map { Float($0) / 255 }, count: 10, workspace: &ws, threads: 1)
let samples = (0..<10).map { i -> GoldenSample in
    let row = Array(goldenProbabilities[(i * 10)..<((i + 1) * 10)])
    return GoldenSample(pixels: Array(goldenPixels[(i * 784)..<((i + 1) * 784)]), label: i,
                        expectedClass: row.indices.max { row[$0] < row[$1] }!, probabilities: row)
}
let statistics = InputStatistics.compute(images: pixels(1000 * 784, seed: 7), labels: (0..<1000).map { UInt8($0 % 10) }, count: 1000,
                                         pixelsPerImage: 784, classCount: 10)
let header = ModelHeader(architecture: network.architecture, labels: ClassNames.fashionMNIST, parameterCount: network.parameters.count,
                         tensors: try ModelFile.expectedTensors(for: network.architecture),
                         training: TrainingMetadata(dataset: "bench", epochs: 0, seed: 42), goldenSamples: samples,
                         inputStatistics: statistics)
let file = try ModelFile(header: header, parameters: network.parameters)
let bytes = try file.encode()

var template = Array("/tmp/loupe-lifecycle-bench-XXXXXX".utf8CString)
_ = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
let root = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
defer { _ = system("rm -rf '\(root)'") }
func writeVersion(_ v: Int) throws {
    mkdir(root + "/fashion", 0o755)
    mkdir(root + "/fashion/\(v)", 0o755)
    let path = root + "/fashion/\(v)/model.loupe"
    try FileIO.writeAtomically(bytes, to: path)
    var times = [timespec(tv_sec: time(nil) - 60, tv_nsec: 0), timespec(tv_sec: time(nil) - 60, tv_nsec: 0)]
    _ = utimensat(AT_FDCWD, path, &times, 0)   // settled: measure the load, not the settle wait
}

// Stages, by hand (what the repository's loader does); in a function, not top-level code.
func measureStages(path: String, reps: Int) throws {
    var read: [Double] = [], verify: [Double] = [], build: [Double] = [], selfTest: [Double] = []
    for _ in 0..<reps {
        let t0 = cpuNow()
        let data = try FileIO.readFile(path)
        let t1 = cpuNow()
        let decoded = try ModelFile.decode(bytes: data)
        let t2 = cpuNow()
        let model = try Sequential(architecture: decoded.header.architecture, parameters: decoded.parameters)
        let t3 = cpuNow()
        var w = model.makeWorkspace(maxBatch: 10)
        _ = model.predict(decoded.header.goldenSamples.flatMap { $0.pixels }.map { Float($0) / 255 }, count: 10, workspace: &w, threads: 1)
        let t4 = cpuNow()
        read.append(t1 - t0); verify.append(t2 - t1); build.append(t3 - t2); selfTest.append(t4 - t3)
    }
    report("load_stages_ms", [("read", median(read) * 1e3), ("verify_sha256_header", median(verify) * 1e3),
                              ("build", median(build) * 1e3), ("self_test_10", median(selfTest) * 1e3)])
}
try writeVersion(1)
report("model_file", [("megabytes", Double(bytes.count) / 1e6), ("parameters", Double(network.parameters.count))])

// End to end through the repository: each rep publishes a new version.
var config = RepositoryConfiguration()
config.root = root
config.pollIntervalSeconds = 0
config.stableAfterSeconds = 0   // measure the pass, not the settle wait (default 0.5 s after a rename)
let repository = ModelRepository(configuration: config, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
repository.start()
var loadSeconds: [Double] = [], passSeconds: [Double] = []
for v in 2...(reps + 1) {
    try writeVersion(v)
    let t0 = cpuNow()
    repository.reload()
    let t1 = cpuNow()
    guard let m = repository.resolve(model: nil, version: nil), m.version == v else { fatalError("version \(v) not served") }
    loadSeconds.append(m.loadDuration)
    passSeconds.append(t1 - t0)
}
report("reload_new_version_ms", [("load_duration", median(loadSeconds) * 1e3), ("whole_pass", median(passSeconds) * 1e3)])
try measureStages(path: root + "/fashion/1/model.loupe", reps: reps)
var idle: [Double] = []
for _ in 0..<(reps * 10) {
    let t0 = cpuNow(); repository.reload(); idle.append(cpuNow() - t0)
}
report("reload_pass_nothing_new_us", [("median", median(idle) * 1e6)])

// resolve(): one per request.
let calls = 1_000_000
var t0 = cpuNow()
var sink = 0
for _ in 0..<calls { sink &+= repository.resolve(model: nil, version: nil)!.version }
report("resolve_ns", [("one_thread", (cpuNow() - t0) / Double(calls) * 1e9)])
t0 = now()
let threads = 2
var handles: [pthread_t] = []
for _ in 0..<threads {
    var h = pthread_t()
    let box = Unmanaged.passRetained(Box(repository)).toOpaque()
    pthread_create(&h, nil, resolveThread, box)
    handles.append(h)
}
for h in handles { pthread_join(h, nil) }
report("resolve_ns", [("two_threads_per_call_wall", (now() - t0) / Double(calls * threads) * 1e9)])

// Drift observation per image.
let model = repository.resolve(model: nil, version: nil)!
let batch = pixels(64 * 784, seed: 9)
let classes = (0..<64).map { $0 % 10 }
var per64: [Double] = [], per1: [Double] = []
for _ in 0..<reps {
    let a = cpuNow()
    for _ in 0..<100 { model.observe(pixels: batch, predictedClasses: classes) }
    per64.append((cpuNow() - a) / 6400)
    let singles = (0..<64).map { Array(batch[($0 * 784)..<(($0 + 1) * 784)]) }
    let b = cpuNow()
    for _ in 0..<100 { for i in 0..<64 { model.observe(pixels: singles[i], predictedClasses: [i % 10]) } }
    per1.append((cpuNow() - b) / 6400)
}
report("observe_ns_per_image", [("batch_64", median(per64) * 1e9), ("batch_1", median(per1) * 1e9)])
// Feedback: what a prediction adds (record by X-Request-ID) and what its label costs (claim by id),
// at window sizes 1k, 100k and 1M images: O(1) means the same figure at every size.
for capacity in [1_000, 10_000, 100_000, 1_000_000] {   // 10,000: feedback.window's default
    let window = PredictionWindow(capacityImages: capacity, maxAgeSeconds: 3600)
    let step = min(capacity, 100_000)
    let ids = (0..<(capacity + reps * step)).map { "req-\($0)" }   // unique ids, as X-Request-IDs are
    let prediction = RecentPrediction(model: "fashion", version: 1, classCount: 10, classes: [3], confidences: [0.9], at: 0)
    for id in ids.prefix(capacity) { window.record(id: id, prediction) }   // full window: every record evicts
    var recordNs: [Double] = [], claimNs: [Double] = []
    for r in 0..<reps {
        let slice = ids[(capacity + r * step)..<(capacity + (r + 1) * step)]
        let a = cpuNow()
        for id in slice { window.record(id: id, prediction) }
        recordNs.append((cpuNow() - a) / Double(step) * 1e9)
        let b = cpuNow()
        for id in slice { if case .success(let p) = window.claim(id: id, now: 1) { sink &+= p.version } }
        claimNs.append((cpuNow() - b) / Double(step) * 1e9)
    }
    report("feedback_window_ns", [("window_images", Double(capacity)), ("record_per_prediction", median(recordNs)),
                                  ("claim_per_label", median(claimNs))])
}

// Routing per request: route() on the snapshot (what a request without a version pays; the key is
// hashed only for a model in canary mode with a candidate), and the canary key's FNV-1a hash alone.
do {
    let keys = (0..<1024).map { "client-\($0)" }
    let calls = 1_000_000
    let a = cpuNow()
    for i in 0..<calls { sink &+= repository.route(named: nil, key: CanaryRouting.hash(keys[i & 1023]))!.model.version }
    let routed = (cpuNow() - a) / Double(calls) * 1e9
    let b = cpuNow()
    for i in 0..<calls { sink &+= Int(truncatingIfNeeded: CanaryRouting.hash(keys[i & 1023]) & 1) }
    report("route_ns", [("route_per_request", routed), ("canary_key_hash", (cpuNow() - b) / Double(calls) * 1e9)])
}
if sink == 42 { print("") }
