// `loupe evaluate` with ROC AUC, calibration and --compare (McNemar), and `loupe train --folds`,
// with the real binary on Fashion-MNIST.
import FoundationEssentials
import Glibc
import LoupeData
import Testing

@Suite(.serialized) struct EvaluateCompareEndToEndTests {
    @Test func evaluateShowsAUCReliabilityAndComparesTwoModels() throws {
        let scratch = try TempDir()
        let a = scratch.path + "/a.loupe", b = scratch.path + "/b.loupe"
        for (path, limit) in [(a, "600"), (b, "6000")] {
            let r = try CLIProcess.loupe(["train", "--epochs", "1", "--limit", limit, "--threads", "2", "--output", path])
            #expect(r.status == 0, "\(r.output)")
        }
        let one = try CLIProcess.loupe(["evaluate", "--model", b, "--threads", "2"])
        #expect(one.status == 0, "\(one.output)")
        #expect(one.stdout.contains("ROC AUC   0.9"), "\(one.stdout)")          // a trained model ranks well
        #expect(one.stdout.contains("reliability (top-1 confidence bins"))
        #expect(one.stdout.contains("ECE       0."))
        let json = try CLIProcess.loupe(["evaluate", "--model", a, "--compare", b, "--json", "--threads", "2"])
        #expect(json.status == 0, "\(json.output)")
        struct Both: Decodable {
            struct Report: Decodable { var accuracy: Double; var count: Int; var macroROCAUC: Double?; var calibrationError: Double }
            struct Comparison: Decodable { var bothRight: Int; var onlyFirst: Int; var onlySecond: Int; var bothWrong: Int; var pValue: Double; var accuracyDifference: Double }
            var first: Report; var second: Report; var comparison: Comparison
        }
        let both = try JSONDecoder().decode(Both.self, from: Data(json.stdout.utf8))
        let c = both.comparison
        #expect(c.bothRight + c.onlyFirst + c.onlySecond + c.bothWrong == 10_000)
        // The discordant counts give the accuracy difference exactly.
        #expect(abs(c.accuracyDifference - (both.second.accuracy - both.first.accuracy)) < 1e-9)
        #expect(both.second.accuracy > both.first.accuracy && c.pValue < 0.05, "\(json.stdout.suffix(400))")
        let text = try CLIProcess.loupe(["evaluate", "--model", a, "--compare", b, "--threads", "2"])
        #expect(text.stdout.contains("McNemar    B − A accuracy +"), "\(text.stdout)")
        #expect(text.stdout.contains("the difference is significant at 5%"))
        let refused = try CLIProcess.loupe(["evaluate", "--model", a, "--compare", scratch.path + "/none.loupe"])
        #expect(refused.status != 0 && refused.output.contains("there is no model at"))
    }

    @Test func foldsReportMeanAndStdAndWriteNothing() throws {
        let scratch = try TempDir()
        let r = try CLIProcess.loupe(["train", "--folds", "3", "--epochs", "1", "--limit", "900", "--threads", "2",
                                      "--repository", scratch.path + "/models"])
        #expect(r.status == 0, "\(r.output)")
        for k in 1...3 { #expect(r.stdout.contains("fold \(k)/3: 600 training, 300 validation images: val_accuracy 0.")) }
        #expect(r.stdout.contains("3-fold cross-validation: val_accuracy 0."))
        #expect(r.stdout.contains(" ± "))
        #expect(r.stdout.contains("no model written"))
        #expect(!FileIO.isDirectory(scratch.path + "/models/fashion"))
        let bad = try CLIProcess.loupe(["train", "--folds", "1"])
        #expect(bad.status != 0 && bad.output.contains("--folds must be at least 2"))
    }
}
