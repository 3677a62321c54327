/// The grammar of model names and versions. Anything a request names is checked here before it
/// is compared with the repository's contents; nothing from a request is ever joined into a path.
public enum ModelNaming {
    /// Longest accepted model name, in bytes.
    public static let maxNameLength = 128

    /// `[A-Za-z0-9_.-]+`, at most 128 bytes, not starting with a dot (so never "." or "..").
    public static func isValidName(_ name: String) -> Bool {
        let bytes = name.utf8
        guard !bytes.isEmpty, bytes.count <= maxNameLength, bytes.first != UInt8(ascii: ".") else { return false }
        for b in bytes {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
                continue
            default:
                return false
            }
        }
        return true
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
}

/// Which versions of a model are served (TF Serving's and Triton's version policies).
public enum VersionPolicy: Sendable, Equatable, CustomStringConvertible {
    /// The `count` newest versions that pass verification (default: 1). A newer version that fails
    /// to load is skipped, so the previous one keeps serving.
    case latest(count: Int)
    /// Every version present.
    case all
    /// Exactly these versions (those present and valid); pinning one is how to roll back.
    case specific([Int])

    public static let `default` = VersionPolicy.latest(count: 1)

    public var description: String {
        switch self {
        case .latest(let n): n == 1 ? "latest" : "latest:\(n)"
        case .all: "all"
        case .specific(let versions): "specific:" + versions.map(String.init).joined(separator: ",")
        }
    }

    /// Parses `latest`, `latest:N`, `all`, `specific:1,3` (or a bare list `1,3`, or `3`).
    public init?(parsing text: String) {
        let trimmed = text.trimmedBlanks()
        let lower = trimmed.lowercased()
        if lower == "latest" { self = .latest(count: 1); return }
        if lower == "all" { self = .all; return }
        if lower.hasPrefix("latest:") {
            guard let n = ModelNaming.parseVersion(lower.dropFirst("latest:".count)) else { return nil }
            self = .latest(count: n); return
        }
        var list = Substring(lower)
        if lower.hasPrefix("specific:") { list = list.dropFirst("specific:".count) }
        let parts = list.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmedBlanks() }
        var versions: [Int] = []
        for part in parts {
            guard let v = ModelNaming.parseVersion(part) else { return nil }
            versions.append(v)
        }
        guard !versions.isEmpty else { return nil }
        self = .specific(Array(Set(versions)).sorted())
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    fileprivate func trimmedBlanks() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}
