import LoupeEngine

/// Accuracy, loss, per-class precision/recall/F1 and the confusion matrix of a model on a
/// labelled set. Codable: `loupe evaluate --json` prints it.
public struct EvaluationReport: Codable, Sendable, Equatable {
    public struct ClassMetrics: Codable, Sendable, Equatable {
        public var label: String
        public var precision: Double
        public var recall: Double
        public var f1: Double
        /// Examples whose true class this is.
        public var support: Int
        /// One-vs-rest ROC AUC of this class's probability (nil when every example or none is of it).
        public var rocAUC: Double?
    }

    public var model: String?
    public var dataset: String?
    public var count: Int
    public var accuracy: Double
    /// Mean cross-entropy, −log p(true class) with p floored at 1e-7 (as Keras clips).
    public var loss: Double
    public var classes: [ClassMetrics]
    /// Unweighted mean over classes.
    public var macroF1: Double
    /// confusionMatrix[true][predicted] = count.
    public var confusionMatrix: [[Int]]
    /// Mean of the classes' one-vs-rest ROC AUC (over the classes where it is defined).
    public var macroROCAUC: Double?
    /// Expected calibration error of the top-1 confidence (10 bins).
    public var calibrationError: Double
    /// The reliability table behind it: per confidence bin, count, mean confidence and accuracy.
    public var reliability: [CalibrationBins.Row]

    /// Builds the report from predicted probabilities (count × classes) and true labels.
    public init(probabilities: [Float], labels: [UInt8], count: Int, classNames: [String], model: String? = nil, dataset: String? = nil) {
        let k = classNames.count
        var matrix = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        var lossSum = 0.0
        var correct = 0
        var bins = CalibrationBins(bins: 10)
        for i in 0..<count {
            let row = probabilities[i * k..<(i + 1) * k]
            var best = row.startIndex
            for j in row.indices where row[j] > row[best] { best = j }
            let predicted = best - row.startIndex
            let truth = Int(labels[i])
            if truth < k {
                matrix[truth][predicted] += 1
                lossSum += -Double(max(row[row.startIndex + truth], 1e-7)).logNaturally()
            }
            if predicted == truth { correct += 1 }
            bins.add(confidence: row[best], correct: predicted == truth)
        }
        var classes: [ClassMetrics] = []
        for c in 0..<k {
            let tp = Double(matrix[c][c])
            let predictedC = Double((0..<k).reduce(0) { $0 + matrix[$1][c] })
            let actualC = matrix[c].reduce(0, +)
            let precision = predictedC > 0 ? tp / predictedC : 0
            let recall = actualC > 0 ? tp / Double(actualC) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            let auc = ClassifierStatistics.rocAUC(scores: (0..<count).map { probabilities[$0 * k + c] },
                                                  positive: (0..<count).map { Int(labels[$0]) == c })
            classes.append(ClassMetrics(label: classNames[c], precision: precision, recall: recall, f1: f1, support: actualC, rocAUC: auc))
        }
        let aucs = classes.compactMap(\.rocAUC)
        self.macroROCAUC = aucs.isEmpty ? nil : aucs.reduce(0, +) / Double(aucs.count)
        self.calibrationError = bins.expectedCalibrationError ?? 0
        self.reliability = bins.table
        self.model = model
        self.dataset = dataset
        self.count = count
        self.accuracy = count > 0 ? Double(correct) / Double(count) : 0
        self.loss = count > 0 ? lossSum / Double(count) : 0
        self.classes = classes
        self.macroF1 = k > 0 ? classes.reduce(0) { $0 + $1.f1 } / Double(k) : 0
        self.confusionMatrix = matrix
    }

    /// Top-1 class of each example (count × classes probabilities).
    public static func predictedClasses(_ probabilities: [Float], count: Int, classes k: Int) -> [Int] {
        (0..<count).map { i in
            var best = 0
            for j in 1..<max(k, 1) where probabilities[i * k + j] > probabilities[i * k + best] { best = j }
            return best
        }
    }

    /// Runs `model` over the dataset (batches of 256) and builds the report.
    public static func evaluate(model: Sequential, dataset: IDXDataset, classNames: [String], normalization: Normalization = .standard,
                                threads: Int = 1, modelName: String? = nil, datasetName: String? = nil) throws -> EvaluationReport {
        let probabilities = try predictAll(model: model, dataset: dataset, normalization: normalization, threads: threads)
        guard classNames.count == model.outputCount else {
            throw LoupeDataError.datasetMismatch("the model has \(model.outputCount) outputs but \(classNames.count) class names")
        }
        return EvaluationReport(probabilities: probabilities, labels: dataset.labels, count: dataset.count, classNames: classNames,
                                model: modelName, dataset: datasetName)
    }

    /// Probabilities (count × outputs) for every image of the dataset.
    public static func predictAll(model: Sequential, dataset: IDXDataset, normalization: Normalization = .standard, threads: Int = 1) throws -> [Float] {
        guard dataset.pixelsPerImage == model.inputCount else {
            throw LoupeDataError.datasetMismatch("the images are \(dataset.shapeDescription) = \(dataset.pixelsPerImage) values but the model takes \(model.inputCount) inputs (\(model.architecture.inputShape))")
        }
        if let bad = dataset.labels.first(where: { Int($0) >= model.outputCount }) {
            throw LoupeDataError.datasetMismatch("label \(bad) is out of range for a model with \(model.outputCount) classes")
        }
        let batch = 256
        var workspace = model.makeWorkspace(maxBatch: batch)
        var out: [Float] = []
        out.reserveCapacity(dataset.count * model.outputCount)
        var input = [Float](repeating: 0, count: batch * model.inputCount)
        var start = 0
        while start < dataset.count {
            let n = min(batch, dataset.count - start)
            normalization.apply(dataset.images[start * model.inputCount..<(start + n) * model.inputCount], into: &input, at: 0)
            out += model.predict(input, count: n, workspace: &workspace, threads: threads)
            start += n
        }
        return out
    }
}

/// Two models on the same examples: which was right where, and McNemar's test of the accuracy difference.
public struct ModelComparison: Codable, Sendable, Equatable {
    public var count: Int
    public var bothRight: Int
    /// Right by the first model only (b), by the second only (c).
    public var onlyFirst: Int
    public var onlySecond: Int
    public var bothWrong: Int
    public var accuracyDifference: Double
    public var mcnemarStatistic: Double
    public var pValue: Double
    public var method: String

    /// `first` and `second`: each model's top-1 class per example.
    public init(first: [Int], second: [Int], labels: [UInt8]) {
        var both = 0, a = 0, b = 0, none = 0
        for i in labels.indices {
            let ra = first[i] == Int(labels[i]), rb = second[i] == Int(labels[i])
            switch (ra, rb) {
            case (true, true): both += 1
            case (true, false): a += 1
            case (false, true): b += 1
            case (false, false): none += 1
            }
        }
        count = labels.count; bothRight = both; onlyFirst = a; onlySecond = b; bothWrong = none
        accuracyDifference = count > 0 ? Double(b - a) / Double(count) : 0
        (mcnemarStatistic, pValue, method) = ClassifierStatistics.mcnemar(onlyA: a, onlyB: b)
    }
}

extension Double {
    func logNaturally() -> Double {
        // Avoid importing Foundation: log via Glibc/Darwin.
        #if canImport(Glibc)
        return Glibc.log(self)
        #else
        return Darwin.log(self)
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
