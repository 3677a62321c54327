// Parsing of a KServe v2 inference request body (JSON, or JSON plus binary tensor data) into a
// model-ready batch and the requested output form.
import LoupeHTTP

/// The tensor names of Loupe models in the v2 protocol.
enum OIPTensor {
    static let input = "input"
    static let output = "probabilities"
    /// The output of a Loupe model whose network ends in logits.
    static let logits = "logits"
}

/// A parsed OIP inference request.
struct OIPRequest {
    var id: String?
    var batch: DecodedBatch
    /// k of the classification extension, nil for raw probabilities.
    var classification: Int?
    /// The output goes back as binary tensor data (`binary_data_output`, or the output's `binary_data`).
    var binaryOutput = false

    /// The input datatypes infer takes, with each one's element size in binary tensor data.
    static let elementSizes = ["FP32": 4, "FP16": 2, "INT8": 1, "UINT8": 1]
    /// The same, as the model metadata's `accepted_input_datatypes` says them.
    static let acceptedDatatypes = "FP32, FP16, INT8 (model-ready values), UINT8 (pixels 0-255)"

    static func parse(_ request: HTTPRequest, model: any InferenceModel, maxImages: Int) throws(ServiceError) -> OIPRequest {
        guard !request.body.isEmpty else {
            throw .badRequest("empty_body", "the request body is empty; expected a JSON inference request {\"inputs\": [...]}")
        }
        // The binary tensor data extension: the first Inference-Header-Content-Length bytes are
        // the JSON request, the rest are the tensors named with `binary_data_size`, in input order.
        var jsonBytes = request.body[...]
        var binary: ArraySlice<UInt8> = []
        if let header = request.headers["Inference-Header-Content-Length"] {
            guard let length = Int(header.trimmingSpaces()), length > 0, length <= request.body.count else {
                throw .badRequest("invalid_header", "Inference-Header-Content-Length must be the JSON header's length in bytes, 1 to \(request.body.count), received '\(echoed(header))'")
            }
            jsonBytes = request.body[..<length]
            binary = request.body[length...]
        }
        let document: JSONValue
        do { document = try JSONReader.parse(jsonBytes) } catch {
            throw .badRequest("invalid_json", "the body is not valid JSON: \(error)")
        }
        guard document.objectValue != nil else {
            throw .badRequest("invalid_input", "expected a JSON object with 'inputs', received \(document.kindName)")
        }
        if let id = document["id"], id.stringValue == nil {
            throw .badRequest("invalid_input", "'id' must be a string, received \(id.kindName)")
        }
        let id = document["id"]?.stringValue
        try requireObject(document["parameters"], "the request's 'parameters'")
        let inputName = model.inputTensorName
        guard let inputs = document["inputs"]?.arrayValue else {
            throw .badRequest("invalid_input", "expected 'inputs': an array with one tensor named '\(inputName)'")
        }
        guard inputs.count == 1, let input = inputs.first, input.objectValue != nil else {
            throw .badRequest("invalid_input", "expected exactly one input tensor named '\(inputName)', received \(inputs.count)")
        }
        try requireObject(input["parameters"], "the input's 'parameters'")
        let name = input["name"]?.stringValue ?? ""
        guard name == inputName || name == OIPTensor.input else {
            throw .badRequest("invalid_input", "expected an input named '\(inputName)', received '\(echoed(name))'")
        }
        guard let datatype = input["datatype"]?.stringValue, let elementSize = elementSizes[datatype] else {
            throw .badRequest("invalid_datatype", "expected datatype FP32, FP16, UINT8 or INT8, received \(input["datatype"].map { $0.stringValue.map { "'\(echoed($0))'" } ?? $0.kindName } ?? "none")")
        }
        guard let shapeValues = input["shape"]?.arrayValue,
              let shape = Optional(shapeValues.compactMap { $0.numberValue.flatMap { $0 == $0.rounded() && $0 >= 0 && $0 < 1e9 ? Int($0) : nil } }),
              shape.count == shapeValues.count else {
            throw .badRequest("invalid_shape", "expected 'shape' as an array of non-negative integers")
        }
        let n = model.inputCount
        guard shape.count >= 2, shape[0] >= 1, let layout = layout(of: Array(shape.dropFirst()), model: model) else {
            throw .badRequest("invalid_shape", "expected shape \(acceptedShapes(model)) with N ≥ 1, received \(echoed("\(shape)"))")
        }
        // Channel-first data of a multi-channel model is reordered to the engine's NHWC.
        let reorder = layout == .channelsFirst && model.imageChannels > 1
        let count = shape[0]
        guard count <= maxImages else { throw .tooLarge("a request may carry at most \(maxImages) images, received \(count)") }
        let total = count * n
        var floats: [Float] = []
        if let size = input["parameters"]?["binary_data_size"] {
            guard let bytes = size.numberValue, bytes == bytes.rounded(), Int(exactly: bytes) == total * elementSize else {
                throw .badRequest("wrong_input_size", "binary_data_size must be \(total * elementSize) (shape \(shape) of \(datatype)), received \(size.numberValue.map { String($0) } ?? size.kindName)")
            }
            guard binary.count == total * elementSize else {
                throw .badRequest("wrong_input_size", "the binary tensor data after the JSON header is \(binary.count) bytes; binary_data_size says \(total * elementSize)")
            }
            if datatype == "UINT8" {
                // The bytes are the pixels (reordered when they come channel-first).
                let pixels = Array(binary)
                return try finish(document, batch: InputDecoding.normalize(reorder ? channelsLast(pixels, count: count, model: model) : pixels,
                                                                           count: count, model: model), id: id, model: model)
            }
            floats = decodeBinary(binary, datatype: datatype)
            if let bad = floats.first(where: { !$0.isFinite }) {   // as for JSON data: never fed to the model
                throw .badRequest("invalid_input", "\(datatype) data must be finite numbers, received \(bad)")
            }
        } else {
            guard binary.isEmpty else {
                throw .badRequest("invalid_input", "\(binary.count) bytes follow the JSON header but no input names them with binary_data_size")
            }
            guard let data = input["data"] else { throw .badRequest("invalid_input", "the input tensor has no 'data'") }
            var numbers: [JSONNumber] = []
            numbers.reserveCapacity(total)
            try flatten(data, into: &numbers, limit: total)
            guard numbers.count == total else {
                throw .badRequest("wrong_input_size", "shape \(shape) needs \(total) values, received \(numbers.count)")
            }
            if datatype == "UINT8" {
                var pixels = [UInt8](); pixels.reserveCapacity(total)
                for v in numbers {
                    guard v.double >= 0, v.double <= 255, v.double == v.double.rounded() else {
                        throw .badRequest("invalid_input", "UINT8 data must be whole numbers from 0 to 255, received \(v.double)")
                    }
                    pixels.append(UInt8(v.double))
                }
                return try finish(document, batch: InputDecoding.normalize(reorder ? channelsLast(pixels, count: count, model: model) : pixels,
                                                                           count: count, model: model), id: id, model: model)
            }
            // FP32 (and FP16, INT8 written as JSON numbers): each value the correctly rounded Float of its text.
            floats.reserveCapacity(total)
            for v in numbers {
                guard v.float.isFinite else { throw .badRequest("invalid_input", "FP32 data must be finite numbers, received \(v.double)") }
                floats.append(v.float)
            }
        }
        if reorder { floats = channelsLast(floats, count: count, model: model) }
        let batch = DecodedBatch(input: floats, count: count, pixels: nil)
        return try finish(document, batch: batch, id: id, model: model)
    }

    enum Layout { case channelsLast, channelsFirst, flat }

    /// How a tensor shape without its batch dimension lays out one image, or nil when the model does not take it:
    /// [H·W·C] (flat, NHWC order), [H,W,C], [C,H,W], and [H,W] for a one-channel model. The graph's own
    /// layout wins when both read the same (H = W = C).
    static func layout(of shape: [Int], model: any InferenceModel) -> Layout? {
        let h = model.imageHeight, w = model.imageWidth, c = model.imageChannels
        if shape == [model.inputCount] { return .flat }
        if model.inputLayout == "NCHW" && shape == [c, h, w] { return .channelsFirst }
        if shape == [h, w, c] { return .channelsLast }
        if shape == [c, h, w] { return .channelsFirst }
        if c == 1 && shape == [h, w] { return .channelsLast }
        return nil
    }

    /// The shapes `layout(of:model:)` takes, for messages and the metadata's `accepted_input_shapes`.
    static func acceptedShapes(_ model: any InferenceModel) -> String {
        let h = model.imageHeight, w = model.imageWidth, c = model.imageChannels
        var shapes = ["[N,\(model.inputCount)]"]
        if c == 1 { shapes.append("[N,\(h),\(w)]") }
        let nchw = "[N,\(c),\(h),\(w)]", nhwc = "[N,\(h),\(w),\(c)]"
        shapes += [nchw, nhwc]
        return shapes.dropLast().joined(separator: ", ") + " or " + shapes.last!
    }

    /// N×C×H×W values → N×H×W×C.
    static func channelsLast<T>(_ values: [T], count: Int, model: any InferenceModel) -> [T] {
        let h = model.imageHeight, w = model.imageWidth, c = model.imageChannels, plane = h * w
        var out = values
        for i in 0..<count {
            let base = i * plane * c
            for ch in 0..<c {
                for p in 0..<plane { out[base + p * c + ch] = values[base + ch * plane + p] }
            }
        }
        return out
    }

    /// Little-endian FP32 / FP16 / INT8 tensor bytes as Floats.
    static func decodeBinary(_ bytes: ArraySlice<UInt8>, datatype: String) -> [Float] {
        switch datatype {
        case "FP32":
            return [Float](unsafeUninitializedCapacity: bytes.count / 4) { out, initialized in
                bytes.withUnsafeBytes { raw in
                    for i in 0..<out.count { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                }
                initialized = out.count
            }
        case "FP16":
            return [Float](unsafeUninitializedCapacity: bytes.count / 2) { out, initialized in
                bytes.withUnsafeBytes { raw in
                    for i in 0..<out.count { out[i] = Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
                }
                initialized = out.count
            }
        default:   // INT8
            return bytes.map { Float(Int8(bitPattern: $0)) }
        }
    }

    /// The outputs part of a request: classification and binary output, per output or on the request.
    static func finish(_ document: JSONValue, batch: DecodedBatch, id: String?, model: any InferenceModel) throws(ServiceError) -> OIPRequest {
        var binaryOutput = try flag(document["parameters"]?["binary_data_output"], "binary_data_output") ?? false
        var classification: Int?
        if let outputs = document["outputs"] {
            guard let outputs = outputs.arrayValue else {
                throw .badRequest("invalid_output", "'outputs' must be an array of {\"name\": \"\(model.outputTensorName)\"}, received \(outputs.kindName)")
            }
            for output in outputs {
                guard output.objectValue != nil else {
                    throw .badRequest("invalid_output", "each output must be an object {\"name\": \"\(model.outputTensorName)\"}, received \(output.kindName)")
                }
                try requireObject(output["parameters"], "the output's 'parameters'")
                let outName = output["name"]?.stringValue ?? ""
                guard outName == model.outputTensorName else {
                    throw .badRequest("invalid_output", "unknown output '\(echoed(outName))'; this model has one output named '\(model.outputTensorName)'")
                }
                if let c = output["parameters"]?["classification"] { classification = try classCount(c, model: model) }
                if let b = try flag(output["parameters"]?["binary_data"], "binary_data") { binaryOutput = b }
            }
        }
        if let c = document["parameters"]?["classification"] { classification = try classCount(c, model: model) }
        if classification == 0 { classification = nil }
        return OIPRequest(id: id, batch: batch, classification: classification, binaryOutput: binaryOutput)
    }

    /// `parameters` fields must be JSON objects when present.
    private static func requireObject(_ v: JSONValue?, _ what: String) throws(ServiceError) {
        guard let v, v.objectValue == nil else { return }
        throw .badRequest("invalid_parameter", "\(what) must be a JSON object, received \(v.kindName)")
    }

    /// A boolean parameter (nil when absent); any other JSON type is a 400.
    private static func flag(_ v: JSONValue?, _ name: String) throws(ServiceError) -> Bool? {
        guard let v else { return nil }
        guard let b = v.boolValue else {
            throw .badRequest("invalid_parameter", "\(name) must be true or false, received \(v.kindName)")
        }
        return b
    }

    private static func classCount(_ v: JSONValue, model: any InferenceModel) throws(ServiceError) -> Int {
        guard let x = v.numberValue, x == x.rounded(), x >= 0, x <= Double(model.outputCount) else {
            throw .badRequest("invalid_parameter", "classification must be an integer from 1 to \(model.outputCount), received \(v.numberValue.map { String($0) } ?? v.kindName)")
        }
        return Int(x)
    }

    /// Row-major flattening of nested arrays of numbers (stops once past `limit`).
    private static func flatten(_ value: JSONValue, into out: inout [JSONNumber], limit: Int) throws(ServiceError) {
        switch value {
        case .number(let x):
            guard out.count < limit + 1 else { return }
            out.append(x)
        case .array(let items):
            for item in items {
                try flatten(item, into: &out, limit: limit)
                if out.count > limit { return }
            }
        default:
            throw .badRequest("invalid_input", "tensor data must be numbers (or nested arrays of numbers), received \(value.kindName)")
        }
    }
}
