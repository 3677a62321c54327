import FoundationEssentials
import Glibc
import LoupeEngine

/// What the web console's model card shows (GET /api/models): the model file's header metadata —
/// architecture, parameter count, labels, normalization, training recipe and test figures — and the
/// per-epoch curves from the history.json beside it. Documented in docs/api.md ("Console endpoints").
public struct ModelCard: Encodable, Sendable {
    public var architecture: Architecture
    public var inputShape: [Int]
    public var parameterCount: Int
    public var labels: [String]
    public var normalization: Normalization
    public var training: TrainingMetadata
    /// Per-class shares of the training labels (the file's inputStatistics.classPriors), when recorded.
    public var classPriors: [Double]?
    /// Per-class precision/recall/F1/support on the test split (training.testClasses), when the file records them.
    public var classMetrics: [EvaluationReport.ClassMetrics]?
    /// history.json's epochs (loss, accuracy, val_loss, val_accuracy per epoch); nil when the file is absent
    /// or unreadable (`historyProblem` says why).
    public var history: [EpochRecord]?
    public var historyProblem: String?

    /// The card for a model file's header; `directory` is where its history.json would be.
    public init(header: ModelHeader, directory: String) {
        architecture = header.architecture
        inputShape = header.inputShape
        parameterCount = header.parameterCount
        labels = header.labels
        normalization = header.normalization
        training = header.training
        classPriors = header.inputStatistics?.classPriors
        classMetrics = header.training.testClasses
        let path = directory + "/history.json"
        if access(path, F_OK) != 0 {
            historyProblem = "no history.json beside the model file"
        } else {
            do {
                let bytes = try FileIO.readFile(path, maxBytes: 4 << 20)
                do {
                    history = try JSONDecoder().decode(TrainingHistory.self, from: Data(bytes)).epochs
                } catch let error as DecodingError {
                    // `loupe import` writes where the model came from in its place: say so, not why it is
                    // not a training history.
                    if let imported = try? JSONDecoder().decode(ImportRecord.self, from: Data(bytes)) {
                        historyProblem = "no training curves: imported from \(imported.importedFrom)\(imported.opset.map { " (ONNX opset \($0))" } ?? "")"
                    } else {
                        historyProblem = "history.json is not a training history written by loupe train: \(Self.describe(error))"
                    }
                }
            } catch {
                historyProblem = "history.json could not be read: \(error)"
            }
        }
    }

    /// What `loupe import` writes as history.json.
    private struct ImportRecord: Decodable {
        var importedFrom: String
        var opset: Int?
        enum CodingKeys: String, CodingKey { case importedFrom = "imported_from", opset }
    }

    /// A decoding failure in a sentence (not the decoder's debug dump).
    static func describe(_ error: DecodingError) -> String {
        func at(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "" : " at " + path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "the key '\(key.stringValue)' is missing\(at(context.codingPath))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context): return "a value of the wrong type\(at(context.codingPath))"
        case .dataCorrupted(let context): return context.codingPath.isEmpty ? "it is not valid JSON" : "an invalid value\(at(context.codingPath))"
        @unknown default: return "it does not decode"
        }
    }

    /// Compact JSON (keys sorted), for embedding in a response.
    public func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? [UInt8](encoder.encode(self))) ?? Array("null".utf8)
    }
}
