import ArgumentParser
import LoupeData
import LoupeSystem
#if canImport(Glibc)
import Glibc
#endif

/// `--threads N`: shared by train, evaluate and predict.
struct ThreadOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: "Worker threads (default: the CPUs this process may use: its affinity mask, capped by a cgroup CPU quota).")
    var threads: Int?

    var resolved: Int { threads ?? availableProcessorCount() }

    func validate() throws {
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be between 1 and 256, got \(threads).") }
    }
}

/// `--model PATH`: a model file, a version directory holding model.loupe, or a model directory
/// (`models/<name>`), whose highest version is used.
struct ModelOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The model: a .loupe file, a version directory, or a model directory (its latest version).", valueName: "path"))
    var model: String

    func resolvedPath() throws -> String { try ModelPath.resolve(model) }
}

enum ModelPath {
    /// A missing model, said as a sentence with the absolute path.
    struct NotFound: Error, CustomStringConvertible {
        var path: String
        var inside: Bool
        var description: String {
            inside ? "there is no model.loupe in \(path) or in any numbered version directory under it"
                   : "there is no model at \(path) (give a .loupe file, a version directory, or a model directory such as models/fashion)"
        }
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cwd + "/" + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
    }

    static func resolve(_ given: String) throws -> String {
        // "models/fashion/" (as shell completion writes it) is the directory "models/fashion".
        var path = given
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        if FileIO.isRegularFile(path) { return path }
        guard FileIO.isDirectory(path) else { throw NotFound(path: absolute(path), inside: false) }
        let direct = path + "/" + ModelRepositoryLayout.modelFileName
        if FileIO.isRegularFile(direct) { return direct }
        let root = FileIO.directoryName(path)
        let name = String(path.split(separator: "/").last ?? "")
        for version in ModelRepositoryLayout.versions(root: root, name: name).reversed() {
            let candidate = "\(path)/\(version)/\(ModelRepositoryLayout.modelFileName)"
            if FileIO.isRegularFile(candidate) { return candidate }
        }
        throw NotFound(path: absolute(path), inside: true)
    }
}

/// `--output PATH`: what a command made (a model, an ONNX file) written to exactly that file.
enum ModelOutput {
    /// Writes `bytes` to `output` atomically, its directory created first, with `history` beside it
    /// (`Train.historyPath`) when given: both are staged before either is renamed, so a full disk
    /// leaves the old model and history.
    static func write(_ bytes: [UInt8], history: [UInt8]? = nil, to output: String) throws {
        try FileIO.createDirectories(FileIO.directoryName(output))
        var files = [(bytes: bytes, path: output)]
        if let history { files.append((history, Train.historyPath(forModelAt: output))) }
        try FileIO.writeAtomically(files)
    }
}

/// Writes to standard output without Foundation, flushing as it goes.
enum Terminal {
    static var isInteractive: Bool { isatty(STDOUT_FILENO) != 0 }

    static func write(_ s: String, to fd: Int32 = STDOUT_FILENO) {
        var s = s
        s.withUTF8 { _ = writeAll(fd, UnsafeRawBufferPointer($0)) }
    }

    static func line(_ s: String = "") { write(s + "\n") }

    /// One line on standard error.
    static func error(_ s: String) { write(s + "\n", to: STDERR_FILENO) }
}

/// Fixed-point formatting without Foundation's String(format:).
enum Format {
    static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "\(v)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        // Past 2^53 the digits are not exact anyway, and Int(_:) would trap: Swift's own rendering (1e+300).
        guard abs(v) * scale < 0x1p53 else { return "\(v)" }
        let r = (abs(v) * scale).rounded()
        let whole = Int(r / scale)
        var fraction = String(Int(r.truncatingRemainder(dividingBy: scale)))
        while fraction.count < digits { fraction = "0" + fraction }
        let sign = v < 0 && r != 0 ? "-" : ""
        return digits == 0 ? "\(sign)\(whole)" : "\(sign)\(whole).\(fraction)"
    }

    static func percent(_ v: Double, _ digits: Int = 2) -> String { fixed(v * 100, digits) + "%" }

    /// Groups thousands: 12345 → "12,345".
    static func grouped(_ v: Int) -> String {
        let s = String(v.magnitude)   // not abs: Int.min (a header may hold it) has no positive Int
        var out = ""
        for (i, c) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return v < 0 ? "-" + out : out
    }

    static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let n = s.count
        if n >= width { return s }
        let fill = String(repeating: " ", count: width - n)
        return right ? fill + s : s + fill
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 60 || !(seconds < 0x1p53) { return fixed(seconds, 1) + " s" }
        let s = Int(seconds.rounded())
        return "\(s / 60)m\(s % 60 < 10 ? "0" : "")\(s % 60)s"
    }
}
