// The protobuf wire reader under ONNX parsing: varints at their limits, every truncation of a
// real model refused with ProtoError (never a crash or a wrong model), and writer ↔ reader.
import Testing
@testable import LoupeONNX

@Suite struct ProtoWireTests {
    @Test func varintsAtTheirLimits() throws {
        var w = ProtoWriter()
        for v: UInt64 in [0, 1, 127, 128, 300, 1 << 35, .max] { w.varint(v) }
        var r = ProtoReader(w.bytes[...])
        for v: UInt64 in [0, 1, 127, 128, 300, 1 << 35, .max] { #expect(try r.varint() == v) }
        #expect(r.isAtEnd)
        var overflow = ProtoReader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02][...])
        #expect(throws: ProtoError.self) { try overflow.varint() }
        var truncated = ProtoReader([0x80, 0x80][...])
        #expect(throws: ProtoError.self) { try truncated.varint() }
    }

    @Test func aLengthPastTheMessageIsRefused() {
        var r = ProtoReader([0x0A, 0x05, 1, 2][...])   // field 1, 5 bytes, 2 present
        #expect(throws: ProtoError.self) { _ = try r.nextField(); _ = try r.lengthDelimited() }
    }

    /// A small graph written with ProtoWriter in ONNX's field numbers: Conv → Relu → … → Softmax.
    static func tinyModel() -> [UInt8] {
        func tensor(_ name: String, _ dims: [Int64], _ values: [Float]) -> (inout ProtoWriter) -> Void {
            { t in
                t.int64s(1, dims); t.int(2, 1); t.string(8, name)
                var raw: [UInt8] = []
                for v in values { let b = v.bitPattern; for i in 0..<4 { raw.append(UInt8(truncatingIfNeeded: b >> (8 * UInt32(i)))) } }
                t.bytes(9, raw)
            }
        }
        func node(_ op: String, _ inputs: [String], _ output: String, ints: [(String, [Int64])] = []) -> (inout ProtoWriter) -> Void {
            { n in
                for i in inputs { n.string(1, i) }
                n.string(2, output); n.string(4, op)
                for (name, v) in ints { n.message(5) { a in a.string(1, name); a.int64s(8, v); a.int(20, 7) } }
            }
        }
        func valueInfo(_ name: String, _ dims: [Int64?]) -> (inout ProtoWriter) -> Void {
            { v in
                v.string(1, name)
                v.message(2) { t in t.message(1) { tt in
                    tt.int(1, 1)
                    tt.message(2) { s in for d in dims { s.message(1) { dim in if let d { dim.int(1, d) } else { dim.string(2, "N") } } } }
                } }
            }
        }
        var m = ProtoWriter()
        m.int(1, 8)
        m.message(8) { o in o.string(1, ""); o.int(2, 17) }
        m.message(7) { g in
            g.message(1, node("Conv", ["x", "w", "b"], "c", ints: [("kernel_shape", [3, 3])]))
            g.message(1, node("Relu", ["c"], "r"))
            g.message(1, node("Flatten", ["r"], "f"))
            g.message(1, node("Gemm", ["f", "g", "gb"], "y"))
            g.message(1, node("Softmax", ["y"], "p"))
            g.message(5, tensor("w", [2, 1, 3, 3], (0..<18).map { Float($0) / 10 }))
            g.message(5, tensor("b", [2], [0.1, -0.2]))
            g.message(5, tensor("g", [2 * 3 * 3, 4], (0..<72).map { Float($0 % 7) / 7 - 0.4 }))
            g.message(5, tensor("gb", [4], [0, 1, 2, 3]))
            g.message(11, valueInfo("x", [nil, 1, 5, 5]))
            g.message(12, valueInfo("p", [nil, 4]))
        }
        return m.bytes
    }

    @Test func aWrittenModelReadsBackAndImports() throws {
        let model = try ONNXModel(bytes: Self.tinyModel())
        #expect(model.opset == 17 && model.nodes.map(\.opType) == ["Conv", "Relu", "Flatten", "Gemm", "Softmax"])
        #expect(model.initializers["w"]?.floats.count == 18 && model.inputs.first?.shape == [nil, 1, 5, 5])
        let imported = try ONNXImporter.importModel(model)
        #expect(imported.architecture.inputShape == [5, 5, 1] && imported.inputLayout == "NCHW")
        // HWIO: weight (y, x, c=0, o) = OIHW (o, 0, y, x); the 2×9 ONNX weights interleave by filter.
        #expect(Array(imported.parameters.prefix(4)) == [0.0, 0.9, 0.1, 1.0])
    }

    @Test func everyTruncationIsRefusedNeverMisread() {
        let whole = Self.tinyModel()
        for cut in 0..<whole.count {
            #expect(throws: (any Error).self, "cut at \(cut)") {
                _ = try ONNXImporter.importModel(try ONNXModel(bytes: Array(whole.prefix(cut))))
            }
        }
    }
}
