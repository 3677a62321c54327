// KServe v2 / Open Inference Protocol: server and model metadata, readiness, and inference with
// FP32 or UINT8 tensors shaped [N,784], [N,28,28], [N,1,28,28] or [N,28,28,1], plus the
// classification extension (`"parameters": {"classification": k}` on an output, or on the
// request, answers BYTES "score:index:label"). Tensor data must be JSON; the binary tensor
// extension is refused with a 400 that says so.
import LoupeHTTP

extension InferenceService {
    static let inputTensorName = "input"
    static let outputTensorName = "probabilities"

    func oipServerMetadata(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        var extensions: [JSONValue] = [.string("classification")]
        if configuration.repositoryAPIEnabled { extensions.append(.string("model_repository")) }
        sink.respond(.json(200, .object([("name", .string("loupe")), ("version", .string(loupeVersion)),
                                         ("extensions", .array(extensions))])))
    }

    func oipModelMetadata(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let name = request.pathParameters["m"]
        let model: any InferenceModel
        switch resolveModel(name: name, versionText: request.pathParameters["v"]) {
        case .success(let m): model = m
        case .failure(let e): return sink.respond(e.response)
        }
        let versions = provider.servedModels().filter { $0.name == model.name }.map(\.version).sorted()
        let inputShape: [JSONValue] = ([-1] + model.inputShape).map { .number(Double($0)) }
        let metadata: JSONValue = .object([
            ("name", .string(model.name)),
            ("versions", .array((request.pathParameters["v"] != nil ? [model.version] : versions).map { .string(String($0)) })),
            ("platform", .string("loupe")),
            ("inputs", .array([.object([("name", .string(Self.inputTensorName)), ("datatype", .string("FP32")),
                                        ("shape", .array(inputShape))])])),
            ("outputs", .array([.object([("name", .string(Self.outputTensorName)), ("datatype", .string("FP32")),
                                         ("shape", .array([.number(-1), .number(Double(model.outputCount))]))])])),
            ("parameters", .object([("labels", .array(model.labels.map { .string($0) })),
                                    ("sha256", .string(model.sha256)),
                                    ("accepted_input_shapes", .string("[N,\(model.inputCount)], [N,\(model.imageHeight),\(model.imageWidth)], [N,1,\(model.imageHeight),\(model.imageWidth)], [N,\(model.imageHeight),\(model.imageWidth),1]")),
                                    ("accepted_input_datatypes", .string("FP32 (model-ready values), UINT8 (pixels 0-255)"))])),
        ])
        sink.respond(.json(200, metadata))
    }

    func oipModelReady(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        switch resolveModel(name: request.pathParameters["m"], versionText: request.pathParameters["v"]) {
        case .success(let m):
            if isDraining { return sink.respond(ServiceError.draining.response(flag: "ready")) }
            sink.respond(.json(200, .object([("name", .string(m.name)), ("version", .string(String(m.version))), ("ready", .bool(true))])))
        case .failure(let e): sink.respond(e.response(flag: "ready"))
        }
    }

    func oipInfer(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        offloadIfLarge(request) { [self] in oipInferNow(request, sink) }
    }

    func oipInferNow(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let model: any InferenceModel
        switch resolveModel(name: request.pathParameters["m"], versionText: request.pathParameters["v"]) {
        case .success(let m): model = m
        case .failure(let e): return sink.respond(e.response)
        }
        let parsed: OIPRequest
        do { parsed = try OIPRequest.parse(request, model: model, maxImages: configuration.maxImagesPerRequest) } catch {
            return sink.respond(error.response)
        }
        let versionText = String(model.version)
        submit(parsed.batch, model: model, sink: sink) { [self] result in
            _ = recordOutcome(model: model, batch: parsed.batch, probabilities: result.probabilities)
            let body = Self.oipResponse(model: model, version: versionText, id: parsed.id, count: parsed.batch.count,
                                        probabilities: result.probabilities, classification: parsed.classification,
                                        binary: parsed.binaryOutput)
            guard let headerLength = body.jsonLength else { return .json(200, body.bytes) }
            // The binary tensor data extension: JSON header, then the raw tensor bytes.
            return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/octet-stream"),
                                                                   ("Inference-Header-Content-Length", String(headerLength))]),
                                body: body.bytes)
        }
    }

    /// The response body; `jsonLength` is set when the output tensor follows the JSON as binary data.
    static func oipResponse(model: any InferenceModel, version: String, id: String?, count: Int, probabilities: [Float],
                            classification: Int?, binary: Bool) -> (bytes: [UInt8], jsonLength: Int?) {
        let k = model.outputCount
        var w = JSONWriter(capacity: 256 + (binary ? 0 : count * k * 14))
        w.raw("{"); w.key("model_name"); w.string(model.name)
        w.raw(","); w.key("model_version"); w.string(version)
        if let id { w.raw(","); w.key("id"); w.string(id) }
        w.raw(","); w.key("outputs"); w.raw("[{"); w.key("name"); w.string(outputTensorName)
        if let top = classification {
            w.raw(","); w.key("datatype"); w.string("BYTES")
            w.raw(","); w.key("shape"); w.raw("["); w.int(count); w.raw(","); w.int(top); w.raw("]")
            var strings: [String] = []
            var order = [Int](repeating: 0, count: k)
            for i in 0..<count {
                let base = i * k
                for j in 0..<k { order[j] = j }
                order.sort { a, b in
                    let pa = probabilities[base + a], pb = probabilities[base + b]
                    return pa != pb ? pa > pb : a < b
                }
                for j in 0..<top {
                    let c = order[j]
                    let label = c < model.labels.count ? ":" + model.labels[c] : ""
                    strings.append("\(probabilities[base + c]):\(c)\(label)")
                }
            }
            if binary {
                // BYTES in binary form: each element a 4-byte little-endian length, then its bytes.
                var data: [UInt8] = []
                for s in strings {
                    let u = Array(s.utf8)
                    data += [UInt8(u.count & 0xFF), UInt8(u.count >> 8 & 0xFF), UInt8(u.count >> 16 & 0xFF), UInt8(u.count >> 24)] + u
                }
                return binaryTail(&w, data)
            }
            w.raw(","); w.key("data"); w.raw("[")
            for (i, s) in strings.enumerated() {
                if i > 0 { w.raw(",") }
                w.string(s)
            }
            w.raw("]")
        } else {
            w.raw(","); w.key("datatype"); w.string("FP32")
            w.raw(","); w.key("shape"); w.raw("["); w.int(count); w.raw(","); w.int(k); w.raw("]")
            if binary {
                var data = [UInt8](); data.reserveCapacity(count * k * 4)
                for v in probabilities.prefix(count * k) {
                    let b = v.bitPattern
                    data += [UInt8(b & 0xFF), UInt8(b >> 8 & 0xFF), UInt8(b >> 16 & 0xFF), UInt8(b >> 24)]
                }
                return binaryTail(&w, data)
            }
            w.raw(","); w.key("data"); w.raw("[")
            for i in 0..<(count * k) {
                if i > 0 { w.raw(",") }
                w.float(probabilities[i])
            }
            w.raw("]")
        }
        w.raw("}]}")
        return (w.bytes, nil)
    }

    /// Ends the JSON header with the output's `binary_data_size` and appends the tensor bytes.
    private static func binaryTail(_ w: inout JSONWriter, _ data: [UInt8]) -> (bytes: [UInt8], jsonLength: Int?) {
        w.raw(","); w.key("parameters"); w.raw("{"); w.key("binary_data_size"); w.int(data.count); w.raw("}")
        w.raw("}]}")
        let length = w.bytes.count
        return (w.bytes + data, length)
    }
}

/// A parsed OIP inference request.
struct OIPRequest {
    var id: String?
    var batch: DecodedBatch
    /// k of the classification extension, nil for raw probabilities.
    var classification: Int?
    /// The output goes back as binary tensor data (`binary_data_output`, or the output's `binary_data`).
    var binaryOutput = false

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
        do { document = try JSONReader.parse(Array(jsonBytes)) } catch {
            throw .badRequest("invalid_json", "the body is not valid JSON: \(error)")
        }
        guard document.objectValue != nil else {
            throw .badRequest("invalid_input", "expected a JSON object with 'inputs', received \(document.kindName)")
        }
        let id = document["id"]?.stringValue
        guard let inputs = document["inputs"]?.arrayValue else {
            throw .badRequest("invalid_input", "expected 'inputs': an array with one tensor named '\(InferenceService.inputTensorName)'")
        }
        guard inputs.count == 1, let input = inputs.first, input.objectValue != nil else {
            throw .badRequest("invalid_input", "expected exactly one input tensor named '\(InferenceService.inputTensorName)', received \(inputs.count)")
        }
        let name = input["name"]?.stringValue ?? ""
        guard name == InferenceService.inputTensorName else {
            throw .badRequest("invalid_input", "expected an input named '\(InferenceService.inputTensorName)', received '\(echoed(name))'")
        }
        let elementSizes = ["FP32": 4, "UINT8": 1, "FP16": 2, "INT8": 1]
        guard let datatype = input["datatype"]?.stringValue, let elementSize = elementSizes[datatype] else {
            throw .badRequest("invalid_datatype", "expected datatype FP32, FP16, UINT8 or INT8, received \(input["datatype"].map { $0.stringValue.map { "'\(echoed($0))'" } ?? $0.kindName } ?? "none")")
        }
        guard let shapeValues = input["shape"]?.arrayValue,
              let shape = Optional(shapeValues.compactMap { $0.numberValue.flatMap { $0 == $0.rounded() && $0 >= 0 && $0 < 1e9 ? Int($0) : nil } }),
              shape.count == shapeValues.count else {
            throw .badRequest("invalid_shape", "expected 'shape' as an array of non-negative integers")
        }
        let h = model.imageHeight, w = model.imageWidth, n = model.inputCount
        let accepted = [[n], [h, w], [1, h, w], [h, w, 1]]
        guard shape.count >= 2, shape[0] >= 1, accepted.contains(Array(shape.dropFirst())) else {
            throw .badRequest("invalid_shape",
                              "expected shape [N,\(n)], [N,\(h),\(w)], [N,1,\(h),\(w)] or [N,\(h),\(w),1] with N ≥ 1, received \(echoed("\(shape)"))")
        }
        let count = shape[0]
        guard count <= maxImages else { throw .tooLarge("a request may carry at most \(maxImages) images, received \(count)") }
        var values: [Double] = []
        values.reserveCapacity(count * n)
        if let size = input["parameters"]?["binary_data_size"] {
            guard let bytes = size.numberValue, bytes == bytes.rounded(), Int(exactly: bytes) == count * n * elementSize else {
                throw .badRequest("wrong_input_size", "binary_data_size must be \(count * n * elementSize) (shape \(shape) of \(datatype)), received \(size.numberValue.map { String($0) } ?? size.kindName)")
            }
            guard binary.count == count * n * elementSize else {
                throw .badRequest("wrong_input_size", "the binary tensor data after the JSON header is \(binary.count) bytes; binary_data_size says \(count * n * elementSize)")
            }
            if datatype == "UINT8" {
                // Zero-copy into the batch: the bytes are the pixels.
                return try finish(document, batch: InputDecoding.normalize(Array(binary), count: count, model: model), id: id, model: model)
            }
            values = decodeBinary(binary, datatype: datatype)
        } else {
            guard binary.isEmpty else {
                throw .badRequest("invalid_input", "\(binary.count) bytes follow the JSON header but no input names them with binary_data_size")
            }
            guard let data = input["data"] else { throw .badRequest("invalid_input", "the input tensor has no 'data'") }
            try flatten(data, into: &values, limit: count * n)
        }
        guard values.count == count * n else {
            throw .badRequest("wrong_input_size", "shape \(shape) needs \(count * n) values, received \(values.count)")
        }
        let batch: DecodedBatch
        if datatype == "UINT8" {
            var pixels = [UInt8](); pixels.reserveCapacity(values.count)
            for v in values {
                guard v >= 0, v <= 255, v == v.rounded() else {
                    throw .badRequest("invalid_input", "UINT8 data must be whole numbers from 0 to 255, received \(v)")
                }
                pixels.append(UInt8(v))
            }
            batch = InputDecoding.normalize(pixels, count: count, model: model)
        } else {
            var floats = [Float](); floats.reserveCapacity(values.count)
            for v in values {
                let f = Float(v)
                guard f.isFinite else { throw .badRequest("invalid_input", "FP32 data must be finite numbers, received \(v)") }
                floats.append(f)
            }
            batch = DecodedBatch(input: floats, count: count, pixels: nil)
        }
        return try finish(document, batch: batch, id: id, model: model)
    }

    /// Little-endian FP32 / FP16 / INT8 tensor bytes as numbers.
    static func decodeBinary(_ bytes: ArraySlice<UInt8>, datatype: String) -> [Double] {
        var out: [Double] = []
        var k = bytes.startIndex
        switch datatype {
        case "FP32":
            out.reserveCapacity(bytes.count / 4)
            while k + 4 <= bytes.endIndex {
                var bits = UInt32(bytes[k])
                bits |= UInt32(bytes[k + 1]) << 8
                bits |= UInt32(bytes[k + 2]) << 16
                bits |= UInt32(bytes[k + 3]) << 24
                out.append(Double(Float(bitPattern: bits)))
                k += 4
            }
        case "FP16":
            while k + 2 <= bytes.endIndex {
                out.append(Double(Float(Float16(bitPattern: UInt16(bytes[k]) | UInt16(bytes[k + 1]) << 8))))
                k += 2
            }
        default:   // INT8
            for b in bytes { out.append(Double(Int8(bitPattern: b))) }
        }
        return out
    }

    /// The outputs part of a request: classification and binary output, per output or on the request.
    static func finish(_ document: JSONValue, batch: DecodedBatch, id: String?, model: any InferenceModel) throws(ServiceError) -> OIPRequest {
        var binaryOutput = document["parameters"]?["binary_data_output"]?.boolValue ?? false
        var classification: Int?
        if let outputs = document["outputs"]?.arrayValue {
            for output in outputs {
                let outName = output["name"]?.stringValue ?? ""
                guard outName == InferenceService.outputTensorName else {
                    throw .badRequest("invalid_output", "unknown output '\(outName)'; this model has one output named '\(InferenceService.outputTensorName)'")
                }
                if let c = output["parameters"]?["classification"] { classification = try classCount(c, model: model) }
                if let b = output["parameters"]?["binary_data"]?.boolValue { binaryOutput = b }
            }
        }
        if let c = document["parameters"]?["classification"] { classification = try classCount(c, model: model) }
        if classification == 0 { classification = nil }
        return OIPRequest(id: id, batch: batch, classification: classification, binaryOutput: binaryOutput)
    }

    private static func classCount(_ v: JSONValue, model: any InferenceModel) throws(ServiceError) -> Int {
        guard let x = v.numberValue, x == x.rounded(), x >= 0, x <= Double(model.outputCount) else {
            throw .badRequest("invalid_parameter", "classification must be an integer from 1 to \(model.outputCount), received \(v.numberValue.map { String($0) } ?? v.kindName)")
        }
        return Int(x)
    }

    /// Row-major flattening of nested arrays of numbers.
    private static func flatten(_ value: JSONValue, into out: inout [Double], limit: Int) throws(ServiceError) {
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
