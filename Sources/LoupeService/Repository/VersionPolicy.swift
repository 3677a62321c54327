import LoupeData

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
        let trimmed = text.trimmingSpaces()
        let lower = trimmed.lowercased()
        if lower == "latest" { self = .latest(count: 1); return }
        if lower == "all" { self = .all; return }
        if lower.hasPrefix("latest:") {
            guard let n = ModelRepositoryLayout.parseVersion(lower.dropFirst("latest:".count)) else { return nil }
            self = .latest(count: n); return
        }
        var list = Substring(lower)
        if lower.hasPrefix("specific:") { list = list.dropFirst("specific:".count) }
        let parts = list.split(separator: ",", omittingEmptySubsequences: false)
            .map { String($0).trimmingSpaces() }
        var versions: [Int] = []
        for part in parts {
            guard let v = ModelRepositoryLayout.parseVersion(part) else { return nil }
            versions.append(v)
        }
        guard !versions.isEmpty else { return nil }
        self = .specific(Array(Set(versions)).sorted())
    }
}
