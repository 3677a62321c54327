import Testing
@testable import LoupeService

@Suite struct JSONTests {
    @Test func parsesDocuments() throws {
        let v = try JSONReader.parse(Array(#"{"a": [1, -2.5, 1e3, 0.1], "b": "x\"\u00e9\n", "c": true, "d": null, "e": {}}"#.utf8))
        #expect(v["a"] == .array([.number(1), .number(-2.5), .number(1000), .number(0.1)]))
        #expect(v["b"]?.stringValue == "x\"é\n")
        #expect(v["c"] == .bool(true))
        #expect(v["d"] == .null)
        #expect(v["e"] == .object([]))
    }

    @Test func numbersAreCorrectlyRounded() throws {
        for text in ["0.1", "0.30000000000000004", "123456.789", "1.7976931348623157e308", "5e-324", "0.000001", "-0", "255",
                     "0.12345678901234567890", "3.141592653589793238"] {
            let v = try JSONReader.parse(Array(text.utf8))
            #expect(v.numberValue == Double(text), "\(text)")
        }
    }

    @Test func rejectsMalformedInputWithOffset() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "01x", "nul", "\"abc", "[1] 2", "-", "1.", "1e"] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONReader.parse(Array(bad.utf8)) }
        }
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONParseError.self) { try JSONReader.parse(Array(deep.utf8)) }
    }

    @Test func repeatedKeysAreRefusedNamingTheKey() throws {
        for (text, key) in [(#"{"instances":[1],"instances":[2]}"#, "instances"),
                            (#"{"inputs":[{"name":"x","data":[1],"datatype":"FP32","data":[2]}]}"#, "data"),
                            (#"{"a":{"b":1,"b":1}}"#, "b")] {
            do {
                _ = try JSONReader.parse(Array(text.utf8))
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.message == "the key \"\(key)\" appears more than once in an object", "\(error)")
                #expect(Array(text.utf8)[error.offset] == UInt8(ascii: "\""))
            }
        }
        // Past 16 keys the look-up switches to a set: still caught, and distinct keys still pass.
        let many = (0..<40).map { "\"k\($0)\":\($0)" }
        #expect(try JSONReader.parse(Array(("{" + many.joined(separator: ",") + "}").utf8)).objectValue?.count == 40)
        #expect(throws: JSONParseError.self) { try JSONReader.parse(Array(("{" + (many + ["\"k3\":0"]).joined(separator: ",") + "}").utf8)) }
        // The same key in sibling objects is fine.
        #expect(throws: Never.self) { try JSONReader.parse(Array(#"[{"a":1},{"a":2}]"#.utf8)) }
    }

    @Test func invalidUTF8IsRefusedAnywhere() throws {
        let cases: [[UInt8]] = [
            Array(#"{"instances":[1],"note":""#.utf8) + [0xFF] + Array(#""}"#.utf8),          // invalid byte in an ignored field
            Array(#"{""#.utf8) + [0xC3] + Array(#"":1}"#.utf8),                                // truncated sequence in a key
            [UInt8(ascii: "["), UInt8(ascii: "\"")] + [0xED, 0xA0, 0x80] + [UInt8(ascii: "\""), UInt8(ascii: "]")],   // an encoded surrogate
            Array(#"["a\n"#.utf8) + [0xC0, 0x80] + Array(#""]"#.utf8),                         // overlong, on the escape path
        ]
        for bytes in cases {
            do {
                _ = try JSONReader.parse(bytes)
                Issue.record("accepted \(bytes)")
            } catch {
                #expect(error.message == "a string is not valid UTF-8", "\(error)")
            }
        }
        #expect(try JSONReader.parse(Array(#"["é😀"]"#.utf8)) == .array([.string("é😀")]))
    }

    @Test func writerRoundTrips() throws {
        var w = JSONWriter()
        let value: JSONValue = .object([("s", .string("q\"\\\n\u{1}")), ("n", .number(3)), ("f", .number(0.25)), ("a", .array([.bool(false), .null]))])
        w.value(value)
        #expect(try JSONReader.parse(w.bytes) == value)
        var f = JSONWriter()
        f.float(Float(0.1)); f.raw(","); f.float(.nan)
        #expect(String(decoding: f.bytes, as: UTF8.self) == "0.1,null")
    }
    @Test func writerNumbersMatchTheStandardLibraryText() {
        // Floats: the same shortest round-trip text as `description` over special values, the
        // probability range and 100k random bit patterns (every exponent).
        var g = SystemRandomNumberGenerator()
        var floats: [Float] = [0, -0.0, 1, -1, .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude,
                               -.greatestFiniteMagnitude, 1e-45, 3.4028235e38, 0.1, 1.0 / 3, 5.8176614e-08, 0.9980393, 1e7, 1e16]
        for _ in 0..<100_000 {
            let f = Float(bitPattern: g.next())
            if f.isFinite { floats.append(f) }
            floats.append(Float.random(in: 0...1, using: &g))
        }
        for f in floats {
            var w = JSONWriter()
            w.float(f)
            let text = String(decoding: w.bytes, as: UTF8.self)
            if text != f.description { Issue.record("\(f.bitPattern): \(text) != \(f.description)"); break }
        }
        for v in [0, 1, -1, 9, 10, 99, 100, 123_456_789, Int.max, Int.min, Int.min + 1] + (0..<1000).map({ _ in Int.random(in: .min ... .max) }) {
            var w = JSONWriter()
            w.int(v)
            #expect(String(decoding: w.bytes, as: UTF8.self) == String(v))
        }
    }

    @Test func writerEscapesExactly() {
        var w = JSONWriter()
        w.string("plain"); w.raw(","); w.string(""); w.raw(",")
        w.string("a\"b\\c\nd\re\tf\u{1}g\u{1f}é\u{7f}"); w.raw(","); w.string("\"")
        #expect(String(decoding: w.bytes, as: UTF8.self) ==
                #""plain","","a\"b\\c\nd\re\tf\u0001g\u001fé\#u{7f}","\"""#)
        // A string assembled from characters gives the same output.
        var v = JSONWriter()
        v.string(String("x\"y".utf8.map { Character(Unicode.Scalar($0)) }))
        #expect(String(decoding: v.bytes, as: UTF8.self) == #""x\"y""#)
    }

    @Test func topKOrderMatchesStableSort() throws {
        let model = FakeModel()
        // Ties resolve by class index; every top_k from 0 to 3.
        let rows: [[Float]] = [[0.2, 0.5, 0.3], [0.4, 0.2, 0.4], [0.1, 0.1, 0.1], [0.0, 0.3, 0.7]]
        for topK in 0...3 {
            let bytes = PredictRoute.response(model: model, probabilities: rows.flatMap { $0 },
                                                         classes: rows.map { _ in 0 }, topK: topK)
            let value = try JSONReader.parse(bytes)
            let predictions = value["predictions"]?.arrayValue ?? []
            #expect(predictions.count == rows.count)
            for (row, p) in zip(rows, predictions) {
                let expected = Array(row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }.prefix(topK))
                let got = (p["top_k"]?.arrayValue ?? []).compactMap { $0["class"]?.numberValue }.map { Int($0) }
                #expect(got == expected)
            }
        }
    }

    /// The /predict body against a plain writer (every probability formatted where it appears, the
    /// top-k ranked by a stable sort): byte for byte, with odd values (non-finite, −0, subnormal,
    /// extremes), several rows and every top_k.
    @Test(arguments: [["a", "b", "c"], ["T-shirt/top", "quote \" back\\slash <tag> & \u{1}", "é"], ["only one"]])
    func predictResponseMatchesAPlainWriter(labels: [String]) throws {
        let model = FakeModel(name: "fa\"ke<", labels: labels)   // a class past the labels is named by its index
        let odd: [Float] = [.nan, .infinity, -.infinity, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                            .leastNormalMagnitude, 1, 0.1, 1e-7, -1.1754944e-38]
        var rows: [[Float]] = [[0.2, 0.5, 0.3], [0.4, 0.2, 0.4], [0.1, 0.1, 0.1]]
        for i in 0..<odd.count { rows.append([odd[i], odd[(i + 5) % odd.count], odd[(i + 7) % odd.count]]) }
        for _ in 0..<20 { rows.append((0..<3).map { _ in Float.random(in: 0...1) }) }
        func plain(_ rows: [[Float]], classes: [Int], topK: Int) -> [UInt8] {
            var w = JSONWriter()
            w.raw("{\"model\":"); w.string(model.name)
            w.raw(",\"model_version\":"); w.int(model.version)
            w.raw(",\"predictions\":[")
            for (i, row) in rows.enumerated() {
                if i > 0 { w.raw(",") }
                func entry(_ c: Int) {
                    w.raw("{\"class\":"); w.int(c); w.raw(",\"label\":")
                    if c < model.labels.count { w.string(model.labels[c]) } else { w.string(String(c)) }
                    w.raw(",\"confidence\":"); w.float(row[c])
                }
                entry(classes[i])
                w.raw(",\"top_k\":[")
                let order = row.indices.sorted { a, b in row[a] != row[b] ? row[a] > row[b] : a < b }
                for (j, c) in order.prefix(topK).enumerated() { if j > 0 { w.raw(",") }; entry(c); w.raw("}") }
                w.raw("],\"probabilities\":[")
                for (j, p) in row.enumerated() { if j > 0 { w.raw(",") }; w.float(p) }
                w.raw("]}")
            }
            w.raw("]}")
            return w.bytes
        }
        let finite = rows.filter { $0.allSatisfy { !$0.isNaN } }   // a ranking over NaN has no order to compare
        for topK in 0...3 {
            let classes = rows.map { row in row.indices.max { row[$0] < row[$1] }! }
            let got = PredictRoute.response(model: model, probabilities: rows.flatMap { $0 }, classes: classes, topK: 0)
            #expect(got == plain(rows, classes: classes, topK: 0))
            let fc = finite.map { row in row.indices.max { row[$0] < row[$1] }! }
            let ranked = PredictRoute.response(model: model, probabilities: finite.flatMap { $0 }, classes: fc, topK: topK)
            #expect(String(decoding: ranked, as: UTF8.self) == String(decoding: plain(finite, classes: fc, topK: topK), as: UTF8.self))
        }
    }

    /// One route's cached name and label texts follow the model asked for (versions alternating).
    @Test func modelTextsFollowTheModel() {
        let shared = ModelTexts()
        let models = [FakeModel(name: "m", version: 1, labels: ["a", "b", "c"]), FakeModel(name: "n", version: 2, labels: ["x", "<y>", "z"])]
        let row: [Float] = [0.1, 0.7, 0.2]
        for i in 0..<6 {
            let m = models[i % 2]
            #expect(PredictRoute.response(model: m, probabilities: row, classes: [1], topK: 2, texts: shared)
                    == PredictRoute.response(model: m, probabilities: row, classes: [1], topK: 2))
        }
        #expect(String(decoding: PredictRoute.response(model: models[1], probabilities: row, classes: [1], topK: 0, texts: shared), as: UTF8.self)
                .contains(#""label":"\u003cy\u003e""#))
        // The cache does not keep a model alive (an unloaded version is freed).
        weak var gone: FakeModel?
        do {
            let unloaded = FakeModel(name: "old", labels: ["p", "q", "r"])
            gone = unloaded
            _ = shared.of(unloaded)
        }
        #expect(gone == nil)
    }

    /// Server-Timing's milliseconds against the plain formatting (round to the microsecond, three decimals).
    @Test func serverTimingFormatsMillisecondsExactly() {
        func plain(_ ns: UInt64) -> String {
            let micro = (Double(ns) / 1e6 * 1000).rounded()
            let whole = Int(micro) / 1000, frac = Int(micro) % 1000
            let f = String(frac)
            return "\(whole)." + String(repeating: "0", count: 3 - f.count) + f
        }
        let values: [UInt64] = [0, 1, 499, 500, 501, 999, 1_000, 1_499, 1_500, 9_999_499, 9_999_500, 12_000_500, 123_456_789,
                                1_000_000_000_000, 18_000_000_000_000_000]
            + (0..<2000).map { _ in UInt64.random(in: 0...50_000_000) }
        for q in values {
            let i = values[Int(q % UInt64(values.count))]
            #expect(serverTiming(queueNanoseconds: q, stage: "inference", stageNanoseconds: i) == "queue;dur=\(plain(q)), inference;dur=\(plain(i))")
        }
        #expect(serverTiming(queueNanoseconds: 2_000, stage: "explain", stageNanoseconds: 1_250_000) == "queue;dur=0.002, explain;dur=1.250")
    }

    /// A model's per-class prediction series are found once and kept; a later version of the
    /// model (same name) that names a class differently counts under its own label.
    @Test func predictionSeriesFollowTheLabels() {
        let registry = MetricsRegistry()
        let metrics = ServiceMetrics(registry: registry, version: "test")
        for _ in 0..<3 { metrics.recordPredictions(model: "m", labels: ["a", "b"], classes: [1], confidences: [0.9]) }
        metrics.recordPredictions(model: "m", labels: ["x", "y"], classes: [1], confidences: [0.9])
        metrics.recordPredictions(model: "m", labels: ["a", "b"], classes: [1], confidences: [0.4])
        metrics.recordPredictions(model: "m", labels: ["a", "b"], classes: [7], confidences: [0.9])
        let text = registry.render()
        #expect(text.contains(#"loupe_predictions_total{model="m",label="b"} 4"#))
        #expect(text.contains(#"loupe_predictions_total{model="m",label="y"} 1"#))
        #expect(text.contains(#"loupe_predictions_total{model="m",label="7"} 1"#))
        #expect(!text.contains(#"label="a""#))
        #expect(text.contains(#"loupe_low_confidence_predictions_total{model="m"} 1"#))
    }

    /// A prediction without a finite confidence (an FP32 infer input that overflowed the network) counts as
    /// confidence 0: before, it made loupe_prediction_confidence_sum NaN for good (and landed above le="1").
    @Test func aNaNConfidenceDoesNotPoisonTheConfidenceHistogram() {
        let registry = MetricsRegistry()
        let metrics = ServiceMetrics(registry: registry, version: "test")
        metrics.recordPredictions(model: "m", labels: ["a", "b"], classes: [0], confidences: [.nan])
        metrics.recordPredictions(model: "m", labels: ["a", "b"], classes: [1, 1], confidences: [0.75, .nan])
        let text = registry.render()
        #expect(text.contains(#"loupe_prediction_confidence_sum{model="m"} 0.75"#), "\(text)")
        #expect(text.contains(#"loupe_prediction_confidence_bucket{model="m",le="0.1"} 2"#), "\(text)")
        #expect(text.contains(#"loupe_low_confidence_predictions_total{model="m"} 2"#), "\(text)")
    }
}
