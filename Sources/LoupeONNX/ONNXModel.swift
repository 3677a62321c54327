// The part of ONNX's protobuf schema (onnx/onnx.proto, IR version ≥ 7) that describes a graph of
// dense tensors: model → graph → nodes, initializers, inputs and outputs. Field numbers are
// onnx.proto's; unknown fields are skipped, as protobuf readers do.

/// A tensor from an initializer or a Constant node, as float32 or int64 values.
public struct ONNXTensor: Sendable, Equatable {
    public var name: String
    public var dims: [Int]
    public var dataType: Int
    public var floats: [Float] = []
    public var int64s: [Int64] = []
    public var count: Int { dims.reduce(1, *) }

    public static let float = 1, int64 = 7
}

public enum ONNXAttribute: Sendable, Equatable {
    case int(Int64)
    case float(Float)
    case ints([Int64])
    case floats([Float])
    case string(String)
    case tensor(ONNXTensor)
    case other
}

public struct ONNXNode: Sendable, Equatable {
    public var name: String
    public var opType: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: ONNXAttribute]

    /// "node 'conv1' (Conv)" — how error messages name a node.
    public var label: String { name.isEmpty ? "node \(opType) → \(outputs.first ?? "?")" : "node '\(name)' (\(opType))" }

    public func int(_ key: String) -> Int64? { if case .int(let v)? = attributes[key] { v } else { nil } }
    public func float(_ key: String) -> Float? { if case .float(let v)? = attributes[key] { v } else { nil } }
    public func ints(_ key: String) -> [Int64]? { if case .ints(let v)? = attributes[key] { v } else { nil } }
    public func string(_ key: String) -> String? { if case .string(let v)? = attributes[key] { v } else { nil } }
}

/// A graph input or output: name and shape (nil entries are symbolic dimensions).
public struct ONNXValueInfo: Sendable, Equatable {
    public var name: String
    public var elementType: Int
    public var shape: [Int?]
}

public struct ONNXModel: Sendable {
    public var irVersion: Int64 = 0
    /// Opset of the default domain ("" / "ai.onnx").
    public var opset: Int64 = 0
    public var producer: String = ""
    public var nodes: [ONNXNode] = []
    public var initializers: [String: ONNXTensor] = [:]
    public var inputs: [ONNXValueInfo] = []
    public var outputs: [ONNXValueInfo] = []

    /// Decodes a model file's bytes.
    public init(bytes: [UInt8]) throws(ProtoError) {
        var r = ProtoReader(bytes[...])
        var sawGraph = false
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 0): irVersion = Int64(bitPattern: try r.varint())
            case (2, 2): producer = try r.string()
            case (7, 2): try decodeGraph(try r.lengthDelimited()); sawGraph = true
            case (8, 2):
                var o = ProtoReader(try r.lengthDelimited())
                var domain = "", version: Int64 = 0
                while let (f, w) = try o.nextField() {
                    switch (f, w) {
                    case (1, 2): domain = try o.string()
                    case (2, 0): version = Int64(bitPattern: try o.varint())
                    default: try o.skip(w)
                    }
                }
                if domain == "" || domain == "ai.onnx" { opset = version }
            default: try r.skip(wire)
            }
        }
        guard sawGraph else { throw ProtoError(offset: bytes.count, message: "no graph: this is not an ONNX model (or the file is truncated)") }
    }

    private mutating func decodeGraph(_ bytes: ArraySlice<UInt8>) throws(ProtoError) {
        var r = ProtoReader(bytes)
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 2): nodes.append(try Self.decodeNode(try r.lengthDelimited()))
            case (5, 2):
                let t = try Self.decodeTensor(try r.lengthDelimited())
                initializers[t.name] = t
            case (11, 2): inputs.append(try Self.decodeValueInfo(try r.lengthDelimited()))
            case (12, 2): outputs.append(try Self.decodeValueInfo(try r.lengthDelimited()))
            case (15, 2): throw r.error("sparse initializers are not supported")
            default: try r.skip(wire)
            }
        }
    }

    static func decodeNode(_ bytes: ArraySlice<UInt8>) throws(ProtoError) -> ONNXNode {
        var r = ProtoReader(bytes)
        var node = ONNXNode(name: "", opType: "", domain: "", inputs: [], outputs: [], attributes: [:])
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 2): node.inputs.append(try r.string())
            case (2, 2): node.outputs.append(try r.string())
            case (3, 2): node.name = try r.string()
            case (4, 2): node.opType = try r.string()
            case (7, 2): node.domain = try r.string()
            case (5, 2):
                let (name, value) = try decodeAttribute(try r.lengthDelimited())
                node.attributes[name] = value
            default: try r.skip(wire)
            }
        }
        return node
    }

    static func decodeAttribute(_ bytes: ArraySlice<UInt8>) throws(ProtoError) -> (String, ONNXAttribute) {
        var r = ProtoReader(bytes)
        var name = "", type: UInt64 = 0
        var f: Float = 0, i: Int64 = 0, s = "", t: ONNXTensor? = nil
        var fs: [Float] = [], ins: [Int64] = []
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 2): name = try r.string()
            case (2, 5): f = Float(bitPattern: try r.fixed32())
            case (3, 0): i = Int64(bitPattern: try r.varint())
            case (4, 2): s = String(decoding: try r.lengthDelimited(), as: UTF8.self)
            case (5, 2): t = try decodeTensor(try r.lengthDelimited())
            case (7, _): try r.floats(wire, into: &fs)
            case (8, _): try r.int64s(wire, into: &ins)
            case (20, 0): type = try r.varint()
            default: try r.skip(wire)
            }
        }
        // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7.
        switch type {
        case 1: return (name, .float(f))
        case 2: return (name, .int(i))
        case 3: return (name, .string(s))
        case 4: return (name, t.map { .tensor($0) } ?? .other)
        case 6: return (name, .floats(fs))
        case 7: return (name, .ints(ins))
        default: return (name, .other)
        }
    }

    static func decodeTensor(_ bytes: ArraySlice<UInt8>) throws(ProtoError) -> ONNXTensor {
        var r = ProtoReader(bytes)
        var dims: [Int64] = []
        var t = ONNXTensor(name: "", dims: [], dataType: 0)
        var raw: ArraySlice<UInt8>? = nil
        var external = false
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, _): try r.int64s(wire, into: &dims)
            case (2, 0): t.dataType = Int(try r.varint())
            case (4, _): try r.floats(wire, into: &t.floats)
            case (7, _): try r.int64s(wire, into: &t.int64s)
            case (8, 2): t.name = try r.string()
            case (9, 2): raw = try r.lengthDelimited()
            case (14, 0): external = try r.varint() == 1
            case (13, 2): external = true; _ = try r.lengthDelimited()
            default: try r.skip(wire)
            }
        }
        if external {
            throw r.error("tensor '\(t.name)' keeps its data in an external file; save the model with the weights inside (onnx.save(model, path, save_as_external_data=False))")
        }
        guard dims.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }) else { throw r.error("tensor '\(t.name)' has a negative or huge dimension") }
        t.dims = dims.map { Int($0) }
        let count = t.count
        if let raw {
            switch t.dataType {
            case ONNXTensor.float:
                guard raw.count == 4 * count else { throw r.error("tensor '\(t.name)': \(raw.count) bytes of raw data for \(count) floats") }
                t.floats = [Float](repeating: 0, count: count)
                var k = raw.startIndex
                for i in 0..<count {
                    var bits = UInt32(raw[k])
                    bits |= UInt32(raw[k + 1]) << 8
                    bits |= UInt32(raw[k + 2]) << 16
                    bits |= UInt32(raw[k + 3]) << 24
                    t.floats[i] = Float(bitPattern: bits)
                    k += 4
                }
            case ONNXTensor.int64:
                guard raw.count == 8 * count else { throw r.error("tensor '\(t.name)': \(raw.count) bytes of raw data for \(count) int64 values") }
                t.int64s = stride(from: raw.startIndex, to: raw.endIndex, by: 8).map { k in
                    var v: UInt64 = 0
                    for b in 0..<8 { v |= UInt64(raw[k + b]) << (8 * UInt64(b)) }
                    return Int64(bitPattern: v)
                }
            default: break
            }
        }
        if t.dataType == ONNXTensor.float && t.floats.count != count {
            throw r.error("tensor '\(t.name)' declares \(count) values and holds \(t.floats.count)")
        }
        if t.dataType == ONNXTensor.int64 && t.int64s.count != count {
            throw r.error("tensor '\(t.name)' declares \(count) values and holds \(t.int64s.count)")
        }
        return t
    }

    static func decodeValueInfo(_ bytes: ArraySlice<UInt8>) throws(ProtoError) -> ONNXValueInfo {
        var r = ProtoReader(bytes)
        var info = ONNXValueInfo(name: "", elementType: 0, shape: [])
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 2): info.name = try r.string()
            case (2, 2):
                var type = ProtoReader(try r.lengthDelimited())
                while let (tf, tw) = try type.nextField() {
                    guard tf == 1, tw == 2 else { try type.skip(tw); continue }   // tensor_type
                    var tensor = ProtoReader(try type.lengthDelimited())
                    while let (ef, ew) = try tensor.nextField() {
                        switch (ef, ew) {
                        case (1, 0): info.elementType = Int(try tensor.varint())
                        case (2, 2):
                            var shape = ProtoReader(try tensor.lengthDelimited())
                            while let (sf, sw) = try shape.nextField() {
                                guard sf == 1, sw == 2 else { try shape.skip(sw); continue }
                                var dim = ProtoReader(try shape.lengthDelimited())
                                var value: Int? = nil
                                while let (df, dw) = try dim.nextField() {
                                    if df == 1 && dw == 0 { value = Int(truncatingIfNeeded: Int64(bitPattern: try dim.varint())) } else { try dim.skip(dw) }
                                }
                                info.shape.append(value.flatMap { $0 > 0 ? $0 : nil })
                            }
                        default: try tensor.skip(ew)
                        }
                    }
                }
            default: try r.skip(wire)
            }
        }
        return info
    }
}
