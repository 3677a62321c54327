import LoupeData
import LoupeEngine

/// One verified, self-tested version of a model, ready to serve. Immutable: a request resolves
/// its `LoadedModel` once and uses it for its whole life, so a response never mixes versions even
/// when the repository publishes another version meanwhile.
public final class LoadedModel: Sendable {
    public let name: String
    public let version: Int
    /// SHA-256 of the file (lower-case hex), as stored in and verified against the file.
    public let sha256: String
    public let header: ModelHeader
    public let model: Sequential
    /// Wall-clock time the version was published, seconds since the Unix epoch.
    public let loadedAt: Double
    /// Time to read, verify, build and self-test the version, in seconds.
    public let loadDuration: Double
    /// Canonical path of the file it was loaded from.
    public let path: String
    /// Drift statistics of this model name (shared by all its versions).
    public let drift: DriftWindow
    /// The file state it was loaded from; a different identity on disk means the file changed.
    let fileIdentity: FileIdentity

    init(name: String, version: Int, sha256: String, header: ModelHeader, model: Sequential, loadedAt: Double,
         loadDuration: Double, path: String, drift: DriftWindow, fileIdentity: FileIdentity) {
        self.name = name; self.version = version; self.sha256 = sha256; self.header = header; self.model = model
        self.loadedAt = loadedAt; self.loadDuration = loadDuration; self.path = path; self.drift = drift
        self.fileIdentity = fileIdentity
    }

    /// Class labels, index = class.
    public var labels: [String] { header.labels }
    /// Values per input example (784 for 28×28×1).
    public var inputCount: Int { model.inputCount }
    public var outputCount: Int { model.outputCount }

    /// Records one prediction for drift statistics (cheap: features computed outside the lock,
    /// one short critical section). `pixels` are the image's 8-bit pixels as sent.
    public func recordPrediction(pixels: some Collection<UInt8>, predictedClass: Int) {
        drift.record(pixels: pixels, predictedClass: predictedClass)
    }

    /// Records a batch for drift statistics: `pixels` holds the images back to back (empty when
    /// they came as float tensors, see `observe(normalized:predictedClasses:)`), one predicted
    /// class per image.
    public func recordPredictions(pixels: some RandomAccessCollection<UInt8>, predictedClasses: [Int]) {
        drift.recordBatch(pixels: pixels, predictedClasses: predictedClasses)
    }
}

extension DriftReference {
    /// The reference recorded in a model header (labels always; statistics when present).
    init(header: ModelHeader) {
        let s = header.inputStatistics
        self.init(labels: header.labels, classPriors: s?.classPriors, predictedClassShares: s?.predictedClassShares,
                  meanIntensity: s?.meanIntensity,
                  inkFraction: s?.inkFraction, inkThreshold: s?.inkThreshold ?? InputStatistics.defaultInkThreshold,
                  intensityHistogram: s?.histogram)
    }
}
