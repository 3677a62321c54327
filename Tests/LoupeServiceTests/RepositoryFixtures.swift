// Test fixtures for the model repository: small seeded models written with the real engine and
// LoupeData writer, temp repositories, and a capturing HTTP sink.
import Logging
import Synchronization
import Testing
import LoupeData
import LoupeEngine
import LoupeHTTP
@testable import LoupeService
#if canImport(Glibc)
import Glibc
#endif

enum RepoFixture {
    static let labels = (0..<10).map { "class\($0)" }

    /// A tiny 28×28×1 → 10 network (flatten → dense softmax); each seed gives other weights.
    static func architecture(inputShape: [Int] = [28, 28, 1]) -> Architecture {
        Architecture(inputShape: inputShape, layers: [.flatten, .dense(units: 10, activation: .softmax)])
    }

    /// Deterministic pseudo-images (pixel values 0…255).
    static func images(count: Int, seed: UInt64, pixels: Int = 784) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<(count * pixels)).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state >> 24)
        }
    }

    /// The probe input every concurrency test feeds (normalized, 2 images).
    static let probe: [Float] = images(count: 2, seed: 99).map { Float($0) / 255 }

    static func model(seed: UInt64, inputShape: [Int] = [28, 28, 1]) -> Sequential {
        try! Sequential(architecture: architecture(inputShape: inputShape), seed: seed)
    }

    /// A valid model file whose golden samples are computed from the model itself.
    static func file(seed: UInt64, inputShape: [Int] = [28, 28, 1], golden: Int = 4,
                     tamperGolden: Bool = false, statistics: Bool = true) -> ModelFile {
        let network = model(seed: seed, inputShape: inputShape)
        let pixelsPerImage = inputShape.reduce(1, *)
        let goldenPixels = images(count: golden, seed: seed &+ 7, pixels: pixelsPerImage)
        var workspace = network.makeWorkspace(maxBatch: max(1, golden))
        let probabilities = golden > 0
            ? network.predict(goldenPixels.map { Float($0) / 255 }, count: golden, workspace: &workspace, threads: 1) : []
        var samples: [GoldenSample] = []
        for i in 0..<golden {
            var p = Array(probabilities[(i * 10)..<((i + 1) * 10)])
            let best = p.indices.max { p[$0] < p[$1] }!
            if tamperGolden { p[best] -= 0.01; p[(best + 1) % 10] += 0.01 }
            samples.append(GoldenSample(pixels: Array(goldenPixels[(i * pixelsPerImage)..<((i + 1) * pixelsPerImage)]),
                                        label: nil, expectedClass: best, probabilities: p))
        }
        let stats = statistics
            ? InputStatistics.compute(images: images(count: 50, seed: seed &+ 3, pixels: pixelsPerImage),
                                      labels: (0..<50).map { UInt8($0 % 10) }, count: 50,
                                      pixelsPerImage: pixelsPerImage, classCount: 10)
            : nil
        let header = ModelHeader(
            architecture: network.architecture, labels: labels, parameterCount: network.parameters.count,
            tensors: try! ModelFile.expectedTensors(for: network.architecture),
            training: TrainingMetadata(dataset: "synthetic", epochs: 0, seed: seed),
            goldenSamples: samples, inputStatistics: stats)
        return try! ModelFile(header: header, parameters: network.parameters)
    }

    /// What a version made with `seed` answers for `probe`.
    static func expectedProbe(seed: UInt64) -> [Float] {
        let network = model(seed: seed)
        var workspace = network.makeWorkspace(maxBatch: 2)
        return network.predict(probe, count: 2, workspace: &workspace, threads: 1)
    }
}

/// A temporary directory, removed (recursively) by `remove()`.
struct TempRepository {
    let root: String

    init() {
        var template = Array("/tmp/loupe-repo-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        root = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    func path(_ parts: String...) -> String { ([root] + parts).joined(separator: "/") }

    @discardableResult
    func mkdir(_ parts: String...) -> String {
        var current = root
        for part in parts {
            current += "/" + part
            _ = Glibc.mkdir(current, 0o755)
        }
        return current
    }

    /// Writes `file` to `<root>/<name>/<version>/model.loupe` atomically (as `loupe train` does).
    @discardableResult
    func write(_ file: ModelFile, name: String, version: Int) -> String {
        mkdir(name, String(version))
        let target = path(name, String(version), "model.loupe")
        try! file.write(to: target)
        return target
    }

    /// Writes raw bytes at `path` directly (not atomically).
    static func writeBytes(_ bytes: [UInt8], to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "open \(path)")
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// Sets a file's mtime well into the past, so it counts as settled at once.
    static func age(_ path: String, seconds: Int = 60) {
        var times = [timespec(tv_sec: time(nil) - seconds, tv_nsec: 0), timespec(tv_sec: time(nil) - seconds, tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, 0)
    }

    func remove() { Self.removeTree(root) }

    static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR {
            if let dir = opendir(path) {
                var names: [String] = []
                while let e = readdir(dir) {
                    let name = withUnsafePointer(to: e.pointee.d_name) {
                        $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(dir)
                for n in names { removeTree(path + "/" + n) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

extension RepositoryConfiguration {
    /// Test defaults: no polling, files settle at once.
    static func testing(root: String, poll: Double = 0, stable: Double = 0) -> RepositoryConfiguration {
        var c = RepositoryConfiguration()
        c.root = root
        c.pollIntervalSeconds = poll
        c.stableAfterSeconds = stable
        return c
    }
}

/// Keeps the lines a repository logs ("level: message"), to check what the log says happened.
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    var logger: Logger { Logger(label: "test") { _ in Handler(log: self) } }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                 file: String, function: String, line: UInt) {
            log.lines.withLock { $0.append("\(level): \(message)") }
        }
    }
}

/// Captures the one response a handler gives.
final class RepoCapturingSink: HTTPResponseSink, Sendable {
    private let response = Mutex<HTTPResponse?>(nil)

    func respond(_ r: consuming HTTPResponse) { let kept = r; response.withLock { $0 = kept } }

    /// Waits (polling, bounded) for the response.
    func wait(seconds: Double = 30) -> HTTPResponse? {
        var waited = 0.0
        while waited < seconds {
            if let r = response.withLock({ $0 }) { return r }
            usleep(2000)
            waited += 0.002
        }
        return nil
    }
}


/// A real thread (not a Dispatch worker, which other parallel tests may be holding).
final class TestThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: @Sendable () -> Void

    init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let me = Unmanaged<TestThread>.fromOpaque(raw!).takeRetainedValue()
            me.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed")
    }

    func join() { pthread_join(thread, nil) }
}
