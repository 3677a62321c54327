#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong while reading datasets, images and model files.
/// Each case renders as one human sentence (`description`) naming the file and the problem.
public enum LoupeDataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A system call on a file failed (`operation` is the call, `errno` its error number).
    case io(path: String, operation: String, errno: Int32)
    /// A dataset directory lacks one of the expected IDX files.
    case datasetNotFound(directory: String, missing: String)
    /// An IDX file is malformed (bad magic, wrong dimensions, truncated, trailing data).
    case invalidIDX(path: String, reason: String)
    /// The images and labels of a split disagree (count or shape).
    case datasetMismatch(String)
    /// zlib / gzip data is corrupt, truncated, or inflates beyond the allowed size.
    case compression(String)
    /// An image could not be decoded.
    case invalidImage(format: String, reason: String)
    /// An image's declared size exceeds the configured limits.
    case imageTooLarge(width: Int, height: Int, limit: String)
    /// The bytes are not a supported image format.
    case unsupportedImageFormat(String)
    /// The process-wide allowance for image decoding in flight is used up (retry shortly).
    case decodeBudgetExhausted(limit: Int)
    /// Decoding this one image would need more memory than the whole allowance (retrying cannot help).
    case decodeExceedsBudget(needed: Int, limit: Int)
    /// A model file is malformed; `path` is nil when decoding bytes from memory.
    case modelFile(path: String?, problem: ModelFileProblem)
    /// An architecture to train needs more parameters than a model file holds (`parameters` nil: past 2^40).
    case architectureTooLarge(parameters: Int?, limit: Int)
    /// Training the architecture at this batch size would need more activation workspace than `limit` bytes.
    case trainingWorkspaceTooLarge(bytes: Int, limit: Int, batchSize: Int, threads: Int)
    /// The training loss stopped being a number (the weights overflowed), in this epoch (1-based).
    case trainingDiverged(epoch: Int, learningRate: Float)

    public var description: String {
        switch self {
        case let .io(path, operation, code):
            return "\(operation) failed for '\(path)': \(String(cString: strerror(code))) (errno \(code))."
        case let .datasetNotFound(directory, missing):
            return "No \(missing) file in '\(directory)' (looked for the standard IDX names, with or without .gz)."
        case let .invalidIDX(path, reason):
            return "'\(path)' is not a valid IDX file: \(reason)."
        case let .datasetMismatch(reason):
            return "The dataset is inconsistent: \(reason)."
        case let .compression(reason):
            return "Compressed data is invalid: \(reason)."
        case let .invalidImage(format, reason):
            return "Invalid \(format) image: \(reason)."
        case let .imageTooLarge(width, height, limit):
            return "The image is \(width)×\(height), larger than allowed (\(limit))."
        case let .decodeBudgetExhausted(limit):
            return "Images being decoded already use the \(limit)-byte decoding allowance; retry shortly."
        case let .decodeExceedsBudget(needed, limit):
            return "Decoding this image needs about \(needed) bytes, more than the whole \(limit)-byte decoding allowance."
        case let .unsupportedImageFormat(what):
            return "Unsupported image format: \(what); expected PNG, JPEG, WebP or PGM (P5/P2)."
        case let .architectureTooLarge(parameters, limit):
            func grouped(_ v: Int) -> String {
                let s = String(v)
                return String(s.enumerated().flatMap { i, c in i > 0 && (s.count - i) % 3 == 0 ? [",", c] : [c] })
            }
            return "The architecture needs \(parameters.map(grouped) ?? "more than \(grouped(1 << 40))") parameters; a model file holds at most \(grouped(limit)) (1 GiB of float32). Make its layers smaller."
        case let .trainingWorkspaceTooLarge(bytes, limit, batchSize, threads):
            func gib(_ b: Int) -> String { "\((Double(b) / Double(1 << 30) * 10).rounded() / 10) GiB" }
            return "Training this architecture with --batch-size \(batchSize) on \(threads) thread\(threads == 1 ? "" : "s") needs \(bytes == Int.max ? "more than 8 EiB" : gib(bytes)) of activations and gradients, over the \(gib(limit)) loupe train allows; lower --batch-size or make the layers' outputs smaller."
        case let .trainingDiverged(epoch, learningRate):
            return "Training diverged in epoch \(epoch): the training loss is not a number (NaN or infinite), so neither are the weights; nothing was written. Try a lower --learning-rate (\(learningRate))."
        case let .modelFile(path, problem):
            if let path { return "Model file '\(path)' is invalid: \(problem)." }
            return "Model file is invalid: \(problem)."
        }
    }
}

/// The ways a `.loupe` model file can be rejected; see docs/model-format.md.
public enum ModelFileProblem: CustomStringConvertible, Equatable, Sendable {
    case badMagic
    case unsupportedVersion(UInt32)
    case truncated(expected: Int, actual: Int)
    case trailingBytes(expected: Int, actual: Int)
    case checksumMismatch(stored: String, computed: String)
    case invalidHeader(String)
    case shapeMismatch(String)

    public var description: String {
        switch self {
        case .badMagic: return "bad magic (not a .loupe model file)"
        case let .unsupportedVersion(v): return "unsupported format version \(v) (this reader knows versions \(ModelFile.formatVersion) and \(ModelFile.quantizedFormatVersion))"
        case let .truncated(expected, actual): return "truncated: \(actual) bytes, expected \(expected)"
        case let .trailingBytes(expected, actual): return "\(actual - expected) unexpected bytes after the checksum (\(actual) bytes, expected \(expected))"
        case let .checksumMismatch(stored, computed): return "checksum mismatch: the file says SHA-256 \(stored), the content hashes to \(computed)"
        case let .invalidHeader(reason): return "invalid JSON header: \(reason)"
        case let .shapeMismatch(reason): return "shape mismatch: \(reason)"
        }
    }
}
