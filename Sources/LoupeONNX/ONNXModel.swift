// An ONNX model as the importer sees it: model → graph → nodes, initializers, inputs and outputs,
// with float32/int64 tensors. Parsed by swift-protobuf's messages generated from onnx.proto
// (Generated/onnx.pb.swift, scripts/gen-onnx-proto.sh); the checks a protobuf parser cannot make —
// external data, raw_data of the wrong length, dims that do not match the values — are made here.
import FoundationEssentials
import SwiftProtobuf

/// Why an ONNX file's bytes were refused: not a protobuf message ("malformed protobuf: …"), or
/// not an ONNX model whose tensors are whole and inside the file.
public struct ProtoError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

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

extension ONNXAttribute {
    /// The AttributeProto type name (INT, INTS, …); nil for `other` (undefined or a type not read).
    var typeName: String? {
        switch self {
        case .int: "INT"
        case .float: "FLOAT"
        case .ints: "INTS"
        case .floats: "FLOATS"
        case .string: "STRING"
        case .tensor: "TENSOR"
        case .other: nil
        }
    }
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
        let proto: Onnx_ModelProto
        do {
            proto = try Onnx_ModelProto(serializedBytes: bytes)
        } catch let error as BinaryDecodingError {
            throw ProtoError(Self.sentence(error))
        } catch {
            throw ProtoError("\(error)")
        }
        try self.init(proto: proto)
    }

    init(proto: Onnx_ModelProto) throws(ProtoError) {
        guard proto.hasGraph else { throw ProtoError("no graph: this is not an ONNX model (or the file is truncated)") }
        // onnx.proto: "a model MUST specify at least one OperatorSetIdProto"; writers put
        // opset_import (field 8) after the graph (7), so a file cut just after its graph ends here.
        guard !proto.opsetImport.isEmpty else {
            throw ProtoError("no opset_import: the model names no operator set (an incomplete ONNX model, or the file is truncated)")
        }
        irVersion = proto.irVersion
        producer = proto.producerName
        for o in proto.opsetImport where o.domain == "" || o.domain == "ai.onnx" { opset = o.version }
        let graph = proto.graph
        guard graph.sparseInitializer.isEmpty else { throw ProtoError("sparse initializers are not supported") }
        nodes = try graph.node.map(Self.node)
        for t in graph.initializer {
            let tensor = try Self.tensor(t)
            initializers[tensor.name] = tensor
        }
        inputs = graph.input.map(Self.valueInfo)
        outputs = graph.output.map(Self.valueInfo)
    }

    /// swift-protobuf's decoding errors as sentences.
    static func sentence(_ error: BinaryDecodingError) -> String {
        "malformed protobuf: " + reason(error)
    }

    private static func reason(_ error: BinaryDecodingError) -> String {
        switch error {
        case .truncated: return "the data ends inside a field: the file is truncated or not an ONNX model"
        case .malformedProtobuf: return "the bytes are not a protobuf message (a bad field key, wire type or length): not an ONNX model, or damaged"
        case .invalidUTF8: return "a string field is not UTF-8"
        case .messageDepthLimit: return "messages are nested more than 100 deep"
        default: return "\(error)"
        }
    }

    static func node(_ n: Onnx_NodeProto) throws(ProtoError) -> ONNXNode {
        var node = ONNXNode(name: n.name, opType: n.opType, domain: n.domain, inputs: n.input, outputs: n.output, attributes: [:])
        for a in n.attribute {
            switch a.type {
            case .float: node.attributes[a.name] = .float(a.f)
            case .int: node.attributes[a.name] = .int(a.i)
            case .string: node.attributes[a.name] = .string(String(decoding: a.s, as: UTF8.self))
            case .tensor: node.attributes[a.name] = a.hasT ? .tensor(try tensor(a.t)) : .other
            case .floats: node.attributes[a.name] = .floats(a.floats)
            case .ints: node.attributes[a.name] = .ints(a.ints)
            default: node.attributes[a.name] = .other
            }
        }
        return node
    }

    static func tensor(_ t: Onnx_TensorProto) throws(ProtoError) -> ONNXTensor {
        if t.dataLocation == .external || !t.externalData.isEmpty {
            throw ProtoError("tensor '\(t.name)' keeps its data in an external file; save the model with the weights inside (onnx.save(model, path, save_as_external_data=False))")
        }
        guard t.dims.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }) else { throw ProtoError("tensor '\(t.name)' has a negative or huge dimension \(t.dims)") }
        var tensor = ONNXTensor(name: t.name, dims: t.dims.map { Int($0) }, dataType: Int(t.dataType))
        var count = 1
        for d in tensor.dims {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= 1 << 31 else { throw ProtoError("tensor '\(t.name)' declares \(t.dims) elements, more than an ONNX file can hold") }
            count = product
        }
        switch tensor.dataType {
        case ONNXTensor.float:
            if t.hasRawData {
                guard t.rawData.count == 4 * count else { throw ProtoError("tensor '\(t.name)': \(t.rawData.count) bytes of raw data for \(count) floats") }
                tensor.floats = littleEndianFloats(t.rawData, count: count)
            } else {
                tensor.floats = t.floatData
            }
            guard tensor.floats.count == count else { throw ProtoError("tensor '\(t.name)' declares \(count) values and holds \(tensor.floats.count)") }
        case ONNXTensor.int64:
            if t.hasRawData {
                guard t.rawData.count == 8 * count else { throw ProtoError("tensor '\(t.name)': \(t.rawData.count) bytes of raw data for \(count) int64 values") }
                tensor.int64s = (0..<count).map { i in
                    var v: UInt64 = 0
                    for b in 0..<8 { v |= UInt64(t.rawData[t.rawData.startIndex + 8 * i + b]) << (8 * UInt64(b)) }
                    return Int64(bitPattern: v)
                }
            } else {
                tensor.int64s = t.int64Data
            }
            guard tensor.int64s.count == count else { throw ProtoError("tensor '\(t.name)' declares \(count) values and holds \(tensor.int64s.count)") }
        default:
            break   // other element types: the importer names the tensor when it needs its values
        }
        return tensor
    }

    /// `count` float32 values stored little-endian in `raw` (raw.count == 4 · count).
    static func littleEndianFloats(_ raw: Data, count: Int) -> [Float] {
        var floats = [Float](repeating: 0, count: count)
        floats.withUnsafeMutableBytes { dst in raw.withUnsafeBytes { src in dst.copyMemory(from: src) } }
        #if _endian(big)
        for i in floats.indices { floats[i] = Float(bitPattern: UInt32(littleEndian: floats[i].bitPattern)) }
        #endif
        return floats
    }

    static func valueInfo(_ v: Onnx_ValueInfoProto) -> ONNXValueInfo {
        var info = ONNXValueInfo(name: v.name, elementType: 0, shape: [])
        guard case let .tensorType(t)? = v.type.value else { return info }
        info.elementType = Int(t.elemType)
        info.shape = t.shape.dim.map { d in
            if case let .dimValue(n)? = d.value, n > 0, n <= Int64(Int32.max) { return Int(n) }
            return nil
        }
        return info
    }
}
