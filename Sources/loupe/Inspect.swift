import ArgumentParser
import FoundationEssentials
import LoupeData
import LoupeEngine

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model file: header, architecture, parameters, labels, training metadata, checksum.",
        discussion: """
        Checks the file as the server's loader does: the strict reader (magic, version, sizes, \
        SHA-256, header, tensor table), then builds the network and runs its golden samples (the \
        self-test). Exits 0 when the server would serve the file, 1 when not (showing what could \
        be read).
        """)

    @Argument(help: ArgumentHelp("A .loupe file, a version directory, or a model directory (latest version).", valueName: "path"))
    var path: String

    @Flag(name: .long, help: "Print the JSON header (plus container fields) instead of a summary.")
    var json = false

    @Flag(name: .customLong("no-self-test"), help: "Skip the golden-sample self-test (as models.self_test: false does for the server).")
    var skipSelfTest = false

    @Option(name: .customLong("self-test-tolerance"), parsing: .unconditional,
            help: "Largest allowed difference of a golden sample's probability from the recorded one (the server's models.self_test_tolerance).")
    var selfTestTolerance: Float = ModelFile.defaultSelfTestTolerance

    func validate() throws {
        guard selfTestTolerance.isFinite, (0...1).contains(selfTestTolerance) else {
            throw ValidationError("--self-test-tolerance must be between 0 and 1, got \(selfTestTolerance)")
        }
    }

    func run() throws {
        let file = try ModelPath.resolve(path)
        let bytes = try FileIO.readFile(file, maxBytes: ModelFile.maxFileBytes)
        let r = ModelInspection.inspect(bytes: bytes, selfTest: !skipSelfTest, tolerance: selfTestTolerance)
        if json {
            try printJSON(r, file: file)
        } else {
            printSummary(r, file: file)
        }
        if let error = r.error {
            if !json { Terminal.line("INVALID: \(LoupeDataError.modelFile(path: file, problem: problem(error)))") }
            throw ExitCode.failure
        }
        if case let .failed(reason)? = r.selfTest {
            if !json { Terminal.line("INVALID: \(file): self-test: \(reason)") }
            throw ExitCode.failure
        }
    }

    private func problem(_ e: LoupeDataError) -> ModelFileProblem {
        if case let .modelFile(_, p) = e { return p }
        return .invalidHeader(e.description)
    }

    /// The value of an arithmetic result, nil when it overflowed.
    static func checked(_ r: (partialValue: Int, overflow: Bool)) -> Int? { r.overflow ? nil : r.partialValue }

    private func printSummary(_ r: ModelInspection, file: String) {
        Terminal.line("file            \(file) (\(Format.grouped(r.fileSize)) bytes)")
        Terminal.line("format          \(r.magicOK ? "loupe" : "not a .loupe file (bad magic)")\(r.formatVersion.map { ", version \($0)" } ?? "")")
        if let l = r.headerLength, let d = r.dataOffset { Terminal.line("header          \(Format.grouped(l)) bytes of JSON; tensor data at byte \(d)") }
        if let s = r.storedChecksum {
            Terminal.line("sha256          \(s) \(r.checksumOK ? "(verified)" : "(MISMATCH: content hashes to \(r.computedChecksum ?? "?"))")")
        }
        guard let h = r.header else { return }
        Terminal.line("input           \(h.inputShape.map(String.init).joined(separator: "×")), pixel × \(h.normalization.scale) + \(h.normalization.offset)")
        if h.inputName != nil || h.outputName != nil {
            Terminal.line("graph tensors   input '\(h.inputName ?? "input")' \(h.inputLayout ?? "NHWC"), output '\(h.outputName ?? "?")'")
        }
        if let q = h.quantization {
            // The header's figures are whatever its writer put there (the file may be invalid): no arithmetic that traps.
            let int8Count = h.tensors.filter { $0.dtype == "int8" }.reduce(Optional(0)) { sum, t in
                t.shape.reduce(Optional(1)) { p, d in p.flatMap { Self.checked($0.multipliedReportingOverflow(by: d)) } }
                    .flatMap { c in sum.flatMap { Self.checked($0.addingReportingOverflow(c)) } }
            }
            let floatCount = int8Count.flatMap { Self.checked(h.parameterCount.subtractingReportingOverflow($0)) }
            Terminal.line("parameters      \(Format.grouped(h.parameterCount)): \(int8Count.map(Format.grouped) ?? "?") int8 weights, \(floatCount.map(Format.grouped) ?? "?") float32")
            Terminal.line("precision       \(q.precision): weights per output channel (symmetric), uint8 activations; calibrated on \(Format.grouped(q.calibrationImages)) images (\(q.calibrator.rawValue)\(q.percentile.map { " \($0)" } ?? ""))")
            for l in q.layers {
                Terminal.line("  \(Format.pad(l.name, 8)) input scale \(l.inputScale), zero point \(l.inputZeroPoint); weight scales \(Format.grouped(l.weightScales.count)) in [\(l.weightScales.min() ?? 0), \(l.weightScales.max() ?? 0)]")
            }
            if let p = h.quantizedFrom {
                Terminal.line("fp32 parent     sha256 \(p.sha256.prefix(16))…, \(Format.grouped(p.fileBytes)) bytes (this file \(Format.grouped(r.fileSize)), \(Format.fixed(Double(r.fileSize) / Double(max(1, p.fileBytes)), 3))×)\(p.testAccuracy.map { ", test accuracy \(Format.fixed($0, 4))" } ?? "")\(p.testAccuracy.flatMap { a in h.training.testAccuracy.map { ", int8 \(Format.fixed($0, 4)) (\(Format.fixed(($0 - a) * 100, 2)) points)" } } ?? "")")
            }
        } else {
            let bytes = Self.checked(h.parameterCount.multipliedReportingOverflow(by: 4))
            Terminal.line("parameters      \(Format.grouped(h.parameterCount)) float32 (\(bytes.map(Format.grouped) ?? "more than \(Format.grouped(Int.max))") bytes)")
            Terminal.line("precision       fp32")
        }
        Terminal.line("architecture")
        for (i, layer) in h.architecture.layers.enumerated() { Terminal.line("  \(i + 1). \(Inspect.describe(layer))") }
        Terminal.line("tensors")
        for t in h.tensors {
            Terminal.line("  \(Format.pad(t.name, 16)) \(Format.pad(t.shape.map(String.init).joined(separator: "×"), 12)) offset \(t.offset)\(t.dtype.map { " \($0)" } ?? "")\(t.byteOffset.map { " at byte \($0)" } ?? "")")
        }
        Terminal.line("labels          \(h.labels.enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: ", "))")
        let t = h.training
        Terminal.line("training        dataset \(t.dataset)\(t.datasetPath.map { " (\($0))" } ?? ""), \(t.epochs) epoch\(t.epochs == 1 ? "" : "s"), seed \(t.seed)")
        var hyper: [String] = []
        if let o = t.optimizer { hyper.append("optimizer \(o)") }
        if let lr = t.learningRate { hyper.append("learning rate \(lr)") }
        if let b = t.batchSize { hyper.append("batch \(b)") }
        if let l2 = t.l2, l2 > 0 { hyper.append("l2 \(l2)") }
        if let v = t.validationSplit { hyper.append("validation split \(v)") }
        if !hyper.isEmpty { Terminal.line("                \(hyper.joined(separator: ", "))") }
        var figures: [String] = []
        if let a = t.trainAccuracy { figures.append("train accuracy \(Format.fixed(a, 4))") }
        if let a = t.validationAccuracy { figures.append("val accuracy \(Format.fixed(a, 4))") }
        if let a = t.testAccuracy { figures.append("test accuracy \(Format.fixed(a, 4))\(t.testExamples.map { " (\(Format.grouped($0)) images)" } ?? "")") }
        if !figures.isEmpty { Terminal.line("                \(figures.joined(separator: ", "))") }
        if let p = t.parent {
            Terminal.line("parent          sha256 \(p.sha256) (\(p.path)\(p.dataset.map { ", trained on \($0)" } ?? "")\(p.testAccuracy.map { ", test accuracy \(Format.fixed($0, 4))" } ?? ""))")
        }
        for (i, d) in (t.datasets ?? []).enumerated() {
            Terminal.line("\(i == 0 ? "datasets        " : "                ")\(d.name) (\(d.path)): \(Format.grouped(d.trainExamples)) training, \(Format.grouped(d.testExamples)) test images")
        }
        Terminal.line("created         \(t.createdAt) by \(t.engineVersion)\(t.trainingSeconds.map { ", \(Format.duration($0)) of training" } ?? "")")
        Terminal.line("golden samples  \(h.goldenSamples.count)\(h.goldenSamples.isEmpty ? "" : " (expected classes \(h.goldenSamples.map { String($0.expectedClass) }.joined(separator: " ")))")")
        if let s = h.inputStatistics {
            Terminal.line("input stats     \(Format.grouped(s.sampleCount)) images, mean intensity \(Format.fixed(s.meanIntensity, 4)), ink fraction \(Format.fixed(s.inkFraction, 4)) (pixel ≥ \(s.inkThreshold))")
        }
        switch r.selfTest {
        case let .passed(count)?: Terminal.line("self-test       passed (\(count) golden sample\(count == 1 ? "" : "s") reproduced within \(selfTestTolerance))")
        case let .failed(reason)?: Terminal.line("self-test       FAILED: \(reason)")
        case nil: if skipSelfTest && r.error == nil { Terminal.line("self-test       not run (--no-self-test)") }
        }
        if r.isValid { Terminal.line("status          valid") }
    }

    private func printJSON(_ r: ModelInspection, file: String) throws {
        struct Output: Encodable {
            var file: String
            var fileSize: Int
            var formatVersion: UInt32?
            var headerLength: Int?
            var dataOffset: Int?
            var sha256: String?
            var checksumOK: Bool
            var valid: Bool
            var error: String?
            /// "passed", "failed" or absent (not run).
            var selfTest: String?
            var selfTestError: String?
            var header: ModelHeader?
        }
        var selfTest: String? = nil, selfTestError: String? = nil
        switch r.selfTest {
        case .passed?: selfTest = "passed"
        case let .failed(reason)?: selfTest = "failed"; selfTestError = reason
        case nil: break
        }
        let out = Output(file: file, fileSize: r.fileSize, formatVersion: r.formatVersion, headerLength: r.headerLength, dataOffset: r.dataOffset,
                         sha256: r.storedChecksum, checksumOK: r.checksumOK, valid: r.isValid, error: r.error?.description,
                         selfTest: selfTest, selfTestError: selfTestError, header: r.header)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        Terminal.line(String(decoding: try encoder.encode(out), as: UTF8.self))
    }

    static func describe(_ layer: LayerSpec) -> String {
        switch layer {
        case let .conv2d(filters, kernel, stride, padding, activation):
            return "conv2d \(filters) filters \(kernel.area)\(stride == 1 ? "" : " stride \(stride)"), \(padding) padding, \(activation)"
        case let .groupedConv2d(filters, groups, kernel, stride, padding, activation):
            return "groupedConv2d \(filters) filters in \(groups) groups \(kernel.area)\(stride == 1 ? "" : " stride \(stride)"), \(padding) padding, \(activation)"
        case let .depthwiseConv2d(kernel, stride, padding, activation):
            return "depthwiseConv2d \(kernel.area)\(stride == 1 ? "" : " stride \(stride)"), \(padding) padding, \(activation)"
        case let .maxPool2d(pool, stride, padding), let .avgPool2d(pool, stride, padding):
            let kind = if case .maxPool2d = layer { "maxPool2d" } else { "avgPool2d" }
            return "\(kind) \(pool.area)\(stride.map { $0 == pool ? "" : " stride \($0)" } ?? "")\(padding == .valid ? "" : ", \(padding) padding")"
        case .globalAvgPool2d: return "globalAvgPool2d"
        case let .activation(a): return "activation \(a)"
        case .flatten: return "flatten"
        case let .dense(units, activation): return "dense \(units), \(activation)"
        case let .dropout(rate): return "dropout \(rate)"
        }
    }
}
