import FoundationEssentials
import LoupeEngine

/// The JSON header of a `.loupe` model file. Field by field in docs/model-format.md.
public struct ModelHeader: Codable, Sendable, Equatable {
    /// The network, as the engine's `Architecture` encodes it.
    public var architecture: Architecture
    /// (H, W, C) of one input; equals `architecture.inputShape`.
    public var inputShape: [Int]
    /// Class names in output order; `labels.count` equals the network's output size.
    public var labels: [String]
    /// How UInt8 pixels become inputs: x = pixel * scale + offset.
    public var normalization: Normalization
    /// Total float32 values in the tensor data section.
    public var parameterCount: Int
    /// Named views into the tensor data section, as the engine's parameter slots.
    public var tensors: [TensorEntry]
    /// How the model was made.
    public var training: TrainingMetadata
    /// A few inputs with their expected outputs, for a load-time self-test.
    public var goldenSamples: [GoldenSample]
    /// Statistics of the training inputs, as a baseline for drift metrics.
    public var inputStatistics: InputStatistics?
    /// Int8 quantization (format version 2, docs/model-format.md §12); absent for fp32 models.
    public var quantization: QuantizationParameters?
    /// The fp32 model a quantized one was made from (absent otherwise).
    public var quantizedFrom: QuantizedFrom?
    /// The source graph's input tensor name (`loupe import` writes it; absent = "input"). The server's
    /// KServe v2 metadata and infer use it, so clients written for the original graph run unchanged.
    public var inputName: String?
    /// The source graph's output tensor name (absent = "probabilities", or "logits" for a network
    /// whose last layer is not softmax).
    public var outputName: String?
    /// How the source graph lays out its input: "NHWC" or "NCHW" (absent = NHWC). The server's v2
    /// metadata shows the input shape in this layout; data is accepted in either.
    public var inputLayout: String?

    /// "fp32", or the quantization's precision ("int8").
    public var precision: String { quantization?.precision ?? "fp32" }

    public init(architecture: Architecture, labels: [String], normalization: Normalization = .standard,
                parameterCount: Int, tensors: [TensorEntry], training: TrainingMetadata,
                goldenSamples: [GoldenSample] = [], inputStatistics: InputStatistics? = nil) {
        self.architecture = architecture
        self.inputShape = architecture.inputShape
        self.labels = labels
        self.normalization = normalization
        self.parameterCount = parameterCount
        self.tensors = tensors
        self.training = training
        self.goldenSamples = goldenSamples
        self.inputStatistics = inputStatistics
    }

    /// Number of input values per example (product of `inputShape`).
    public var inputCount: Int { inputShape.reduce(1, *) }
}

/// One named tensor: `shape.product` values; `offset` is its first element in the flat float32 view
/// of the parameters (the engine's slot). In a version-1 file that view is the data section itself;
/// in a quantized (version-2) file each tensor is stored as `dtype` at `byteOffset` of the data section.
public struct TensorEntry: Codable, Sendable, Equatable {
    public var name: String
    public var offset: Int
    public var shape: [Int]
    /// "float32" or "int8" (version 2 only; absent = float32).
    public var dtype: String?
    /// Byte offset in the data section (version 2 only).
    public var byteOffset: Int?

    public init(name: String, offset: Int, shape: [Int], dtype: String? = nil, byteOffset: Int? = nil) {
        self.name = name
        self.offset = offset
        self.shape = shape
        self.dtype = dtype
        self.byteOffset = byteOffset
    }

    public var count: Int { shape.reduce(1, *) }
}

/// The fp32 parent of a quantized model, as measured when it was quantized.
public struct QuantizedFrom: Codable, Sendable, Equatable {
    /// SHA-256 of the parent's file.
    public var sha256: String
    /// The parent's file size in bytes.
    public var fileBytes: Int
    /// The parent's accuracy on the test split `loupe quantize` measured both models on (nil if not measured).
    public var testAccuracy: Double?
    public init(sha256: String, fileBytes: Int, testAccuracy: Double?) {
        self.sha256 = sha256; self.fileBytes = fileBytes; self.testAccuracy = testAccuracy
    }
}

/// Provenance of a trained model.
public struct TrainingMetadata: Codable, Sendable, Equatable {
    /// Dataset name, e.g. "fashion-mnist".
    public var dataset: String
    /// Where the dataset was read from, when known.
    public var datasetPath: String?
    public var trainExamples: Int?
    public var validationExamples: Int?
    public var testExamples: Int?
    public var epochs: Int
    public var batchSize: Int?
    public var learningRate: Double?
    /// "adam" or "sgd".
    public var optimizer: String?
    public var l2: Double?
    public var validationSplit: Double?
    public var seed: UInt64
    public var threads: Int?
    public var trainLoss: Double?
    public var trainAccuracy: Double?
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    /// Accuracy on the full test split (`testExamples` images), when measured.
    public var testLoss: Double?
    public var testAccuracy: Double?
    /// Per-class precision, recall, F1 and support on the same test split (`loupe evaluate`'s figures), in class order.
    public var testClasses: [EvaluationReport.ClassMetrics]?
    /// Wall-clock seconds spent training (all epochs).
    public var trainingSeconds: Double?
    /// Every training set used, in order (their training splits were concatenated), when more
    /// than the one `datasetPath` names or when a parent model was fine-tuned.
    public var datasets: [DatasetUse]?
    /// The model whose weights training started from (`loupe train --init-from`).
    public var parent: ParentModel?
    /// UTC creation time, ISO 8601 with a Z suffix ("2026-11-29T09:00:00Z").
    public var createdAt: String
    /// The engine that trained it, e.g. "loupe-engine 1".
    public var engineVersion: String

    public init(dataset: String, epochs: Int, seed: UInt64, createdAt: String = TrainingMetadata.now(),
                engineVersion: String = TrainingMetadata.defaultEngineVersion) {
        self.dataset = dataset
        self.epochs = epochs
        self.seed = seed
        self.createdAt = createdAt
        self.engineVersion = engineVersion
    }

    public static let defaultEngineVersion = "loupe-engine 1"

    /// The current UTC time as ISO 8601 ("YYYY-MM-DDTHH:MM:SSZ").
    public static func now() -> String {
        iso8601(Date())
    }

    public static func iso8601(_ date: Date) -> String {
        iso8601(secondsSince1970: date.timeIntervalSince1970)
    }

    /// Seconds since the Unix epoch as ISO 8601 UTC ("2026-11-29T09:00:00Z").
    public static func iso8601(secondsSince1970 seconds: Double) -> String {
        let t = Int64(seconds.rounded(.down))
        // Civil-from-days (Howard Hinnant), valid for the proleptic Gregorian calendar.
        let days = t >= 0 ? t / 86400 : (t - 86399) / 86400
        let secs = t - days * 86400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        var y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        if m <= 2 { y += 1 }
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))T\(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60))Z"
    }
}

/// One dataset a model was trained on: where, and how many of its examples were used.
public struct DatasetUse: Codable, Sendable, Equatable {
    public var path: String
    public var name: String
    /// Training-split examples taken from it (before the validation split).
    public var trainExamples: Int
    /// Test-split examples it contributed (0 when it has no test split).
    public var testExamples: Int
    public init(path: String, name: String, trainExamples: Int, testExamples: Int) {
        self.path = path; self.name = name; self.trainExamples = trainExamples; self.testExamples = testExamples
    }
}

/// The model a fine-tuned model started from.
public struct ParentModel: Codable, Sendable, Equatable {
    /// SHA-256 (hex) of the parent's file.
    public var sha256: String
    public var path: String
    /// The parent's own training dataset name and test accuracy, when recorded.
    public var dataset: String?
    public var testAccuracy: Double?
    public init(sha256: String, path: String, dataset: String?, testAccuracy: Double?) {
        self.sha256 = sha256; self.path = path; self.dataset = dataset; self.testAccuracy = testAccuracy
    }
}

/// An input and the output the model produced for it when it was saved. A loader runs the
/// model on `pixels` (normalised with the header's normalisation) and expects the same
/// `expectedClass` and probabilities within a small tolerance (Loupe uses 1e-4).
public struct GoldenSample: Codable, Sendable, Equatable {
    /// `inputCount` UInt8 pixels, row-major (H, W, C). JSON: base64 string.
    public var pixels: [UInt8]
    /// The dataset's label for this input (may differ from `expectedClass`).
    public var label: Int?
    /// argmax of `probabilities`.
    public var expectedClass: Int
    /// Softmax output, one per class.
    public var probabilities: [Float]

    public init(pixels: [UInt8], label: Int?, expectedClass: Int, probabilities: [Float]) {
        self.pixels = pixels
        self.label = label
        self.expectedClass = expectedClass
        self.probabilities = probabilities
    }

    private enum CodingKeys: String, CodingKey { case pixels, label, expectedClass, probabilities }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let b64 = try c.decode(String.self, forKey: .pixels)
        guard let data = Data(base64Encoded: b64) else {
            throw DecodingError.dataCorruptedError(forKey: .pixels, in: c, debugDescription: "pixels is not valid base64")
        }
        pixels = [UInt8](data)
        label = try c.decodeIfPresent(Int.self, forKey: .label)
        expectedClass = try c.decode(Int.self, forKey: .expectedClass)
        probabilities = try c.decode([Float].self, forKey: .probabilities)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Data(pixels).base64EncodedString(), forKey: .pixels)
        try c.encodeIfPresent(label, forKey: .label)
        try c.encode(expectedClass, forKey: .expectedClass)
        try c.encode(probabilities, forKey: .probabilities)
    }
}
