// A model read from a `.loupe` file, and the simplest provider: every model found under
// `<dir>/<name>/<version>/model.loupe` at start, latest version of each, never reloaded. The
// service uses the lifecycle's `ModelRepository` when it is available; this provider is the
// fallback and the fixture for tests.
import LoupeData
import LoupeEngine
import Synchronization

public final class FileModel: InferenceModel {
    public let name: String
    public let version: Int
    public let sha256: String
    public let labels: [String]
    public let inputShape: [Int]
    public let inputCount: Int
    public let outputCount: Int
    public let pixelScale: Float
    public let pixelOffset: Float
    public let header: ModelHeader
    public let network: Sequential

    public init(name: String, version: Int, file: ModelFile) throws {
        self.name = name
        self.version = version
        self.sha256 = file.sha256Hex
        self.header = file.header
        self.network = try Sequential(architecture: file.header.architecture, parameters: file.parameters)
        self.labels = file.header.labels
        self.inputShape = file.header.inputShape
        self.inputCount = network.inputCount
        self.outputCount = network.outputCount
        self.pixelScale = file.header.normalization.scale
        self.pixelOffset = file.header.normalization.offset
    }

    public convenience init(name: String, version: Int, path: String) throws {
        try self.init(name: name, version: version, file: try ModelFile.read(path: path))
    }

    public func makeRunner(maxBatch: Int) -> any ModelRunner { SequentialRunner(network: network, maxBatch: maxBatch) }
}

/// Serves a fixed set of models (latest version of each name found at start).
public final class StaticModelProvider: ModelProvider {
    private let models: [FileModel]
    private let defaultName: String?

    public init(models: [FileModel], defaultModel: String? = nil) {
        self.models = models.sorted { ($0.name, $0.version) < ($1.name, $1.version) }
        self.defaultName = defaultModel
    }

    /// Loads the newest version of every model under `directory`; unreadable files are reported in `problems`.
    public static func scan(directory: String, defaultModel: String?, problems: inout [String]) -> StaticModelProvider {
        var found: [FileModel] = []
        for name in listDirectory(directory).sorted() where !name.hasPrefix(".") {
            let versions = listDirectory(directory + "/" + name).compactMap { Int($0) }.filter { $0 >= 1 }.sorted(by: >)
            for v in versions {
                let path = "\(directory)/\(name)/\(v)/model.loupe"
                do {
                    found.append(try FileModel(name: name, version: v, path: path))
                    break
                } catch {
                    problems.append("\(path): \(error)")
                }
            }
        }
        return StaticModelProvider(models: found, defaultModel: defaultModel)
    }

    public func model(named name: String?, version: Int?) -> (any InferenceModel)? {
        let wanted = name ?? defaultName ?? models.first?.name
        return models.last { $0.name == wanted && (version == nil || $0.version == version) }
    }
    public func servedModels() -> [any InferenceModel] { models }
    public var modelNames: [String] { Array(Set(models.map(\.name))).sorted() }
    public var isReady: Bool { !models.isEmpty }
    public func requestReload(reason: String) {}
}

#if canImport(Glibc)
import Glibc
#endif

/// Names in a directory (without . and ..), empty when it cannot be read.
func listDirectory(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}
