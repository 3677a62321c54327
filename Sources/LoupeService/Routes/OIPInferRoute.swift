// KServe v2 / Open Inference Protocol inference, POST /v2/models/{m}[/versions/{v}]/infer, with
// FP32 or UINT8 tensors shaped [N,H·W·C], [N,H,W,C] or [N,C,H,W] (and [N,H,W] for one channel) under the
// model's input name, answering the network's output as it is (logits stay logits), plus the
// classification extension (`"parameters": {"classification": k}` on an output, or on the
// request, answers BYTES "score:index:label"). Tensor data comes as JSON or with the binary
// tensor data extension (Inference-Header-Content-Length), and the output goes back either way.
import LoupeEngine
import LoupeHTTP

struct OIPInferRoute: Sendable {
    let models: ModelResolver
    let inputs: InputPolicy
    let batcher: Batcher
    let recorder: PredictionRecorder

    func handle(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        inputs.offloadIfLarge(request, sink, self) { $0.handleNow($1, $2) }
    }

    func handleNow(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let started = monotonicNanoseconds()
        guard let routed = models.route(request, name: request.pathParameters["m"], versionText: request.pathParameters["v"], orAnswer: sink) else { return }
        let model = routed.model
        let parsed: OIPRequest
        do { parsed = try OIPRequest.parse(request, model: model, maxImages: inputs.maxImages) } catch {
            batcher.failed(model, startedAt: started)
            return sink.respond(error.response)
        }
        let versionText = String(model.version)
        let requestID = request.id
        batcher.submit(parsed.batch, model: model, sink: sink, startedAt: started) { [recorder] result in
            _ = recorder.record(model: model, batch: parsed.batch, probabilities: result.probabilities, requestID: requestID,
                                routed: routed, inferenceNanoseconds: result.inferenceNanoseconds)
            let body = Self.response(model: model, version: versionText, id: parsed.id, count: parsed.batch.count,
                                        probabilities: result.probabilities, outputs: result.outputs, classification: parsed.classification,
                                        binary: parsed.binaryOutput)
            guard let headerLength = body.jsonLength else { return .json(200, body.bytes) }
            // The binary tensor data extension: JSON header, then the raw tensor bytes.
            return HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/octet-stream"),
                                                                   ("Inference-Header-Content-Length", String(headerLength))]),
                                body: body.bytes)
        }
    }

    /// The response body; `jsonLength` is set when the output tensor follows the JSON as binary data.
    /// `outputs` are the network's outputs (returned as the FP32 tensor); `probabilities` feed the
    /// classification extension.
    static func response(model: any InferenceModel, version: String, id: String?, count: Int, probabilities: [Float],
                         outputs: [Float], classification: Int?, binary: Bool) -> (bytes: [UInt8], jsonLength: Int?) {
        let k = model.outputCount
        var w = JSONWriter(capacity: 256 + (binary ? 0 : count * k * 14))
        w.raw("{"); w.key("model_name"); w.string(model.name)
        w.raw(","); w.key("model_version"); w.string(version)
        if let id { w.raw(","); w.key("id"); w.string(id) }
        w.raw(","); w.key("outputs"); w.raw("[{"); w.key("name"); w.string(model.outputTensorName)
        if let top = classification {
            w.raw(","); w.key("datatype"); w.string("BYTES")
            w.raw(","); w.key("shape"); w.raw("["); w.int(count); w.raw(","); w.int(top); w.raw("]")
            var strings: [String] = []
            var order = [Int](repeating: 0, count: k)
            for i in 0..<count {
                let base = i * k
                Ranking.top(top, of: probabilities[base..<(base + k)], into: &order)
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
                for v in outputs.prefix(count * k) {
                    let b = v.bitPattern
                    data += [UInt8(b & 0xFF), UInt8(b >> 8 & 0xFF), UInt8(b >> 16 & 0xFF), UInt8(b >> 24)]
                }
                return binaryTail(&w, data)
            }
            w.raw(","); w.key("data"); w.raw("[")
            for i in 0..<(count * k) {
                if i > 0 { w.raw(",") }
                w.float(outputs[i])
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

