// Support for the `loupe serve` end-to-end tests: the real binary as a child process on
// loopback port 0, a plain-socket HTTP client, a PNG writer, and a model fixture built from the
// engine (a seeded network with golden samples taken from real Fashion-MNIST test images).
import Glibc
import LoupeData
import LoupeEngine
import Testing

enum E2E {
    static let datasetDirectory = "/usr/share/datasets/fashion-mnist"

    /// The package root (one definition for the target: CLIProcess's).
    static var root: String { CLIProcess.repositoryRoot }

    /// The `loupe` binary: CLIProcess's (`$LOUPE_BINARY`, else the one next to the test bundle);
    /// scripts/test.sh builds it before `swift test`.
    static func binary() throws -> String {
        let path = CLIProcess.loupePath
        guard access(path, X_OK) == 0 else {
            throw E2EError("the loupe binary was not found at \(path); run `swift build --product loupe` first (or set LOUPE_BINARY)")
        }
        return path
    }

    static func testImages(_ n: Int) throws -> (pixels: [UInt8], labels: [UInt8]) {
        let set = try IDXDataset.load(directory: datasetDirectory, split: .test)
        return (Array(set.images.prefix(n * 784)), Array(set.labels.prefix(n)))
    }

    /// A model repository in a temp dir holding fashion/1/model.loupe: the seed network with
    /// seeded weights (deterministic, not trained: the tests compare the server with `loupe
    /// predict`, not with labels) and golden samples from real test images.
    static func makeRepository(versions: [UInt64] = [7]) throws -> TempDir {
        let dir = try TempDir()
        let (pixels, labels) = try testImages(4)
        for (i, seed) in versions.enumerated() {
            let model = try Sequential(architecture: .seed, seed: seed)
            let golden = ModelFile.goldenSamples(model: model, images: pixels, labels: labels, count: 4)
            let file = try ModelFile(model: model, labels: ClassNames.fashionMNIST,
                                     training: TrainingMetadata(dataset: "fashion-mnist", epochs: 0, seed: seed),
                                     goldenSamples: golden)
            try dir.mkdir("fashion/\(i + 1)")
            try file.write(to: dir.path + "/fashion/\(i + 1)/model.loupe")
        }
        return dir
    }
}

struct E2EError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A child process with stdout+stderr going to a file.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    let logPath: String
    private(set) var exitStatus: Int32?

    init(_ arguments: [String], environment: [String: String] = [:], logPath: String) throws {
        self.logPath = logPath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var env = [String: String]()
        var e = environ
        while let entry = e.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "="), !s.hasPrefix("LOUPE_") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            e += 1
        }
        for (k, v) in environment { env[k] = v }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        // The child starts with an empty signal mask and default dispositions, as under a shell or a
        // container runtime (the test runner's own mask must not leak into the server under test).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), defaults = sigset_t()
        sigemptyset(&empty)
        sigemptyset(&defaults)
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var child = pid_t()
        let rc = posix_spawn(&child, arguments[0], &actions, &attributes, argv, envp)
        guard rc == 0 else { throw E2EError("posix_spawn \(arguments[0]) failed: \(rc)") }
        pid = child
    }

    func signal(_ sig: Int32) { kill(pid, sig) }

    /// Waits up to `seconds` for exit; returns the exit code (128+signal when killed), nil on timeout.
    @discardableResult
    func wait(seconds: Double) -> Int32? {
        if let s = exitStatus { return s }
        let deadline = now() + seconds
        while now() < deadline {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
                exitStatus = code
                return code
            }
            usleep(5_000)
        }
        return nil
    }

    var log: String { (try? FileIO.readFile(logPath)).map { String(decoding: $0, as: UTF8.self) } ?? "" }

    /// The first log line containing `text`, waiting up to `seconds` (nil if the process exits or
    /// time runs out first).
    func waitForLine(containing text: String, seconds: Double = 20) -> Substring? {
        let deadline = now() + seconds
        while now() < deadline {
            if let line = log.split(separator: "\n").first(where: { $0.contains(text) }) { return line }
            if wait(seconds: 0.01) != nil { return log.split(separator: "\n").first { $0.contains(text) } }
        }
        return nil
    }

    deinit {
        if exitStatus == nil { kill(pid, SIGKILL); var s: Int32 = 0; waitpid(pid, &s, 0) }
    }
}

func now() -> Double { monotonicSeconds() }

/// `loupe serve` on 127.0.0.1 port 0 with a temp model repository.
final class ServeProcess: @unchecked Sendable {
    let process: ChildProcess
    let port: Int
    let logDir: TempDir

    /// `settings` are `key=value` configuration overrides (each passed as `--set`).
    init(models: String, arguments: [String] = [], settings: [String] = [], environment: [String: String] = [:]) throws {
        logDir = try TempDir()
        process = try ChildProcess([try E2E.binary(), "serve", "--models", models, "--host", "127.0.0.1", "--port", "0",
                                    "--log-format", "json"] + arguments + settings.flatMap { ["--set", $0] },
                                   environment: environment, logPath: logDir.path + "/serve.log")
        // The bound port is in the "listening" log line.
        let line = process.waitForLine(containing: "\"msg\":\"listening\"")
        let found = line.flatMap { l in l.firstRange(of: "\"address\":\"127.0.0.1:").flatMap { Int(l[$0.upperBound...].prefix { $0.isNumber }) } }
        guard let port = found else { throw E2EError("loupe serve did not start; log:\n\(process.log)") }
        self.port = port
    }

    /// Waits until /health/ready answers 200.
    func waitReady(seconds: Double = 20) throws {
        let deadline = now() + seconds
        while now() < deadline {
            if let r = try? HTTP.request(port: port, "GET", "/health/ready"), r.status == 200 { return }
            usleep(10_000)
        }
        throw E2EError("not ready after \(seconds) s; log:\n\(process.log)")
    }

    var log: String { process.log }
}

typealias HTTPReply = TestResponse

extension String {
    func components(separatedBy s: String) -> [String] {
        var out: [String] = []; var rest = Substring(self)
        while let r = rest.firstRange(of: s) { out.append(String(rest[..<r.lowerBound])); rest = rest[r.upperBound...] }
        out.append(String(rest))
        return out
    }
    func trimmingCharacters(in c: Character) -> String {
        var s = Substring(self)
        while s.first == c { s = s.dropFirst() }
        while s.last == c { s = s.dropLast() }
        return String(s)
    }
}

/// Grayscale 8-bit PNG, zlib "stored" blocks (no compression needed for tests).
enum PNGWriter {
    static func gray(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] {
        var raw: [UInt8] = []
        for y in 0..<height { raw.append(0); raw += pixels[(y * width)..<((y + 1) * width)] }
        var z: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65535, raw.count - offset)
            let final: UInt8 = offset + n == raw.count ? 1 : 0
            z += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            z += raw[offset..<(offset + n)]
            offset += n
        } while offset < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        let adler = (b << 16) | a
        z += [UInt8(adler >> 24), UInt8((adler >> 16) & 0xFF), UInt8((adler >> 8) & 0xFF), UInt8(adler & 0xFF)]
        var ihdr = be32(UInt32(width)) + be32(UInt32(height))
        ihdr += [8, 0, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr) + chunk("IDAT", z) + chunk("IEND", [])
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let t = Array(type.utf8)
        return be32(UInt32(data.count)) + t + data + be32(crc32(t + data))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            c ^= UInt32(byte)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }
}

/// Runs `body(i)` for i in 0..<n on n dedicated threads (blocking clients: the Swift
/// concurrency pool has only as many threads as cores) and returns the results in order.
/// A multipart/form-data body (boundary "B") with one `image` file part per file, as `curl -F image=@imgN.EXT …` sends.
func multipartImages(_ files: [[UInt8]], ext: String, contentType: String) -> [UInt8] {
    var body: [UInt8] = []
    for (i, file) in files.enumerated() {
        body += Array("--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"img\(i).\(ext)\"\r\nContent-Type: \(contentType)\r\n\r\n".utf8)
        body += file + Array("\r\n".utf8)
    }
    return body + Array("--B--\r\n".utf8)
}

func onThreads<T>(_ n: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
    let box = ThreadResults<T>(n: n, body: body)
    var threads: [pthread_t] = []
    for i in 0..<n {
        var t = pthread_t()
        let arg = Unmanaged.passRetained(ThreadArg(box, i)).toOpaque()
        pthread_create(&t, nil, { raw in
            let a = Unmanaged<ThreadArg>.fromOpaque(raw!).takeRetainedValue()
            a.run()
            return nil
        }, arg)
        threads.append(t)
    }
    for t in threads { pthread_join(t, nil) }
    return box.results.map { $0! }
}

final class ThreadResults<T>: @unchecked Sendable {
    var results: [T?]
    let body: (Int) -> T
    init(n: Int, body: @escaping (Int) -> T) { results = Array(repeating: nil, count: n); self.body = body }
}

final class ThreadArg {
    let run: () -> Void
    init<T>(_ box: ThreadResults<T>, _ index: Int) { run = { box.results[index] = box.body(index) } }
}
