#if canImport(Glibc)
import Glibc
#endif

/// The on-disk repository layout `<root>/<name>/<version>/model.loupe` (+ history.json), as the
/// server's model repository scans it and the trainer and importer publish into it — the one
/// grammar of model names and versions. Anything a request names is checked here before it is
/// compared with the repository's contents; nothing from a request is ever joined into a path.
public enum ModelRepositoryLayout {
    public static let modelFileName = "model.loupe"
    public static let historyFileName = "history.json"
    /// Longest accepted model name, in bytes.
    public static let maxNameLength = 128

    /// The rule `isValidName` checks, as every message that refuses a name states it.
    public static let nameRule = "1–\(maxNameLength) bytes of [A-Za-z0-9_.-], not starting with a dot"

    /// "'NAME' is not a valid model name (the rule)": the sentence a refused name gets.
    public static func invalidNameMessage(_ name: String) -> String {
        "'\(name)' is not a valid model name (\(nameRule))"
    }

    /// `[A-Za-z0-9_.-]+`, 1–128 bytes, not starting with a dot (so never "." or "..").
    public static func isValidName(_ name: String) -> Bool {
        let bytes = name.utf8
        guard !bytes.isEmpty, bytes.count <= maxNameLength, bytes.first != UInt8(ascii: ".") else { return false }
        return bytes.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d || $0 == 0x5f || $0 == 0x2e }
    }

    /// A version directory name or a version in a request: a positive decimal integer without sign
    /// or leading zeros, at most 18 digits. Returns nil for anything else ("01", "+1", "1.0", "-1").
    public static func parseVersion(_ text: some StringProtocol) -> Int? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 18, bytes[0] != UInt8(ascii: "0") else { return nil }
        var value = 0
        for b in bytes {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(b - UInt8(ascii: "0"))
        }
        return value
    }

    /// `<versionDirectory>/model.loupe`.
    public static func modelFile(in versionDirectory: String) -> String { versionDirectory + "/" + modelFileName }

    /// Existing versions of `name` under `root`, ascending.
    public static func versions(root: String, name: String) -> [Int] {
        guard let dir = opendir(root + "/" + name) else { return [] }
        defer { closedir(dir) }
        var out: [Int] = []
        while let entry = readdir(dir) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if let v = parseVersion(entryName) { out.append(v) }
        }
        return out.sorted()
    }

    /// Removes what killed loupe processes left under a repository root (temp version directories
    /// in `<root>/<name>/`, temp files in `<root>/<name>/<version>/`); see
    /// `FileIO.removeStaleTemporaries`. Returns the paths removed.
    @discardableResult
    public static func removeStaleTemporaries(root: String) -> [String] {
        guard let dir = opendir(root) else { return [] }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if isValidName(name) { names.append(name) }
        }
        closedir(dir)
        var removed: [String] = []
        for name in names {
            removed += FileIO.removeStaleTemporaries(in: root + "/" + name)
            for v in versions(root: root, name: name) { removed += FileIO.removeStaleTemporaries(in: "\(root)/\(name)/\(v)") }
        }
        return removed
    }

    /// The next free version: one more than the highest existing (1 when none).
    public static func nextVersion(root: String, name: String) -> Int {
        (versions(root: root, name: name).last ?? 0) + 1
    }

    /// Publishes a new version: both files are written into a hidden temp directory
    /// (`<root>/<name>/.tmp-…`), fsynced, and the directory is renamed to the next free version,
    /// so a watcher never sees a half-written version. Returns the model file's path.
    @discardableResult
    public static func publish(model: [UInt8], history: [UInt8], root: String, name: String) throws -> (path: String, version: Int) {
        guard isValidName(name) else {
            throw LoupeDataError.io(path: name, operation: "publish (model names are \(nameRule))", errno: EINVAL)
        }
        let parent = root + "/" + name
        try FileIO.createDirectories(parent)
        var template = Array("\(parent)/.tmp-\(getpid())-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw LoupeDataError.io(path: parent, operation: "mkdtemp", errno: errno)
        }
        let temp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        chmod(temp, 0o755)   // mkdtemp makes it 0700
        var published = false
        defer {
            if !published {
                unlink(temp + "/" + modelFileName)
                unlink(temp + "/" + historyFileName)
                rmdir(temp)
            }
        }
        try FileIO.writeAtomically([(history, temp + "/" + historyFileName), (model, temp + "/" + modelFileName)])
        for _ in 0..<100 {
            let version = nextVersion(root: root, name: name)
            let final = "\(parent)/\(version)"
            if FileIO.isDirectory(final) || FileIO.isRegularFile(final) { continue }
            if rename(temp, final) == 0 {
                published = true
                FileIO.fsyncDirectory(parent)
                return (final + "/" + modelFileName, version)
            }
            if errno != EEXIST && errno != ENOTEMPTY { throw LoupeDataError.io(path: final, operation: "rename", errno: errno) }
        }
        throw LoupeDataError.io(path: parent, operation: "publish (no free version)", errno: EEXIST)
    }
}

extension FileIO {
    /// fsyncs a directory so a rename inside it is durable (errors ignored: best effort).
    static func fsyncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }
}
