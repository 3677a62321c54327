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

    /// Builds the report from predicted probabilities (count × classes) and true labels.
    public init(probabilities: [Float], labels: [UInt8], count: Int, classNames: [String], model: String? = nil, dataset: String? = nil) {
        let k = classNames.count
        var matrix = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        var lossSum = 0.0
        var correct = 0
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
        }
        var classes: [ClassMetrics] = []
        for c in 0..<k {
            let tp = Double(matrix[c][c])
            let predictedC = Double((0..<k).reduce(0) { $0 + matrix[$1][c] })
            let actualC = matrix[c].reduce(0, +)
            let precision = predictedC > 0 ? tp / predictedC : 0
            let recall = actualC > 0 ? tp / Double(actualC) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            classes.append(ClassMetrics(label: classNames[c], precision: precision, recall: recall, f1: f1, support: actualC))
        }
        self.model = model
        self.dataset = dataset
        self.count = count
        self.accuracy = count > 0 ? Double(correct) / Double(count) : 0
        self.loss = count > 0 ? lossSum / Double(count) : 0
        self.classes = classes
        self.macroF1 = k > 0 ? classes.reduce(0) { $0 + $1.f1 } / Double(k) : 0
        self.confusionMatrix = matrix
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
            throw LoupeDataError.datasetMismatch("the images are \(dataset.rows)×\(dataset.cols) = \(dataset.pixelsPerImage) pixels but the model takes \(model.inputCount) inputs (\(model.architecture.inputShape))")
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
