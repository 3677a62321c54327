// Ground truth, POST /feedback and POST /v2/models/{m}[/versions/{v}]/feedback. Two forms:
//   {"request_id": "<X-Request-ID of an earlier prediction>", "label": 3}   (or "labels": [...] for
//       a request that carried several images, one per image, in order; a label may also be a
//       class name such as "Sneaker")
//   {"instances": [...], "labels": [...]}   images with their labels: the model (from the path, or
//       ?model=&version= on /feedback; without a version, routed like /predict, so a canary candidate
//       classifies its share) classifies them now and the result is scored
// Labels feed the live statistics of the model version that answered (Lifecycle/LiveAccuracy.swift).
import LoupeHTTP

struct FeedbackRoute: Sendable {
    let models: ModelResolver
    let inputs: InputPolicy
    let batcher: Batcher
    let window: PredictionWindow
    let accuracy: LiveAccuracy
    /// Labels reach the captured records of the same request (`capture.*`).
    let capture: CaptureStore
    /// Safe promotion: labels also score the other version's shadow prediction of the request, and
    /// both feed the promotion evidence.
    let shadow: ShadowRunner

    static let expectedForms = #"expected {"request_id": "<X-Request-ID of a prediction>", "label": <class>} or {"instances": [...], "labels": [...]}"#

    func handle(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        inputs.offloadIfLarge(request, sink, self) { $0.handleNow($1, $2) }
    }

    func handleNow(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        do {
            let document = try InputDecoding.jsonDocument(request.body)
            guard document.objectValue != nil else {
                throw ServiceError.badRequest("invalid_feedback", "\(Self.expectedForms), received \(document.kindName)")
            }
            if let id = document["request_id"] {
                try byRequestID(id, document, request, sink)
            } else if document["instances"] != nil {
                try withInstances(document, request, sink)
            } else {
                throw ServiceError.badRequest("invalid_feedback", "\(Self.expectedForms); the object has neither 'request_id' nor 'instances'")
            }
        } catch let error as ServiceError {
            sink.respond(error.response)
        } catch {
            sink.respond(ServiceError.internalError.response)
        }
    }

    // MARK: By request id

    private func byRequestID(_ idValue: JSONValue, _ document: JSONValue, _ request: HTTPRequest, _ sink: any HTTPResponseSink) throws {
        guard let id = idValue.stringValue, !id.isEmpty else {
            throw ServiceError.badRequest("invalid_feedback", "'request_id' must be the non-empty X-Request-ID string of an earlier prediction, received \(idValue.kindName)")
        }
        guard window.isEnabled else {
            throw ServiceError(status: 404, code: "unknown_request_id",
                               "feedback by request id is off (feedback.window is 0); send {\"instances\": [...], \"labels\": [...]} instead")
        }
        let prediction: RecentPrediction
        switch window.claim(id: id, now: Double(monotonicNanoseconds()) / 1e9) {
        case .success(let p): prediction = p
        case .failure(.unknown):
            throw ServiceError(status: 404, code: "unknown_request_id",
                               "no recent prediction has request id '\(echoed(id))': the server keeps the last \(window.capacityImages) predicted images (feedback.window) for \(Int(window.maxAgeSeconds)) s (feedback.max_age_s); send the X-Request-ID of a /predict or infer response")
        case .failure(.expired(let age)):
            throw ServiceError(status: 410, code: "expired_request_id",
                               "the prediction with request id '\(echoed(id))' is \(Int(age)) s old, past feedback.max_age_s (\(Int(window.maxAgeSeconds)) s)")
        case .failure(.duplicate):
            throw ServiceError(status: 409, code: "duplicate_feedback", "feedback for request id '\(echoed(id))' was already received")
        }
        do {
            if let m = request.pathParameters["m"], m != prediction.model {
                throw ServiceError(status: 404, code: "wrong_model",
                                   "request id '\(echoed(id))' was answered by model '\(prediction.model)', not '\(echoed(m))'; send its feedback to /v2/models/\(prediction.model)/feedback or /feedback")
            }
            if let v = request.pathParameters["v"], v != String(prediction.version) {
                throw ServiceError(status: 404, code: "wrong_model",
                                   "request id '\(echoed(id))' was answered by version \(prediction.version) of '\(prediction.model)', not version \(echoed(v))")
            }
            let names = classNames(prediction)
            let labels = try Self.labels(document, count: prediction.classes.count, classNames: names)
            let key = ModelVersion(model: prediction.model, version: prediction.version)
            let tally = accuracy.record(key, classNames: names, labels: labels, classes: prediction.classes, confidences: prediction.confidences)
            capture.label(requestID: id, labels: labels)
            shadow.tracker.feedback(model: prediction.model, version: prediction.version, labels: labels, classes: prediction.classes)
            if case .success(let other) = shadow.window.claim(id: id, now: Double(monotonicNanoseconds()) / 1e9),
               other.classCount == prediction.classCount {
                shadow.tracker.feedback(model: other.model, version: other.version, labels: labels, classes: other.classes)
            }
            sink.respond(.json(200, Self.response(key, labels: labels, classes: prediction.classes, tally: tally)))
        } catch {
            window.release(id: id)   // a refused label can be corrected and sent again
            throw error
        }
    }

    /// The class names of the version that answered (its index when that version is gone).
    private func classNames(_ p: RecentPrediction) -> [String] {
        if let m = models.provider.model(named: p.model, version: p.version), m.labels.count == p.classCount { return m.labels }
        return (0..<p.classCount).map(String.init)
    }

    // MARK: With instances

    private func withInstances(_ document: JSONValue, _ request: HTTPRequest, _ sink: any HTTPResponseSink) throws {
        let started = monotonicNanoseconds()
        // Routed like /predict: in canary mode the candidate classifies its share of labelled images
        // (the answer's model_version says which), and the other version scores a sampled copy.
        let routed: RoutedModel
        switch models.route(request, name: request.pathParameters["m"] ?? request.queryValue("model"),
                            versionText: request.pathParameters["v"] ?? request.queryValue("version")) {
        case .success(let r): routed = r
        case .failure(let e): throw e
        }
        let model = routed.model
        let count = document["instances"]?.arrayValue?.count ?? 0
        guard document["labels"] != nil else {
            throw ServiceError.badRequest("invalid_feedback", "'labels' is missing: send one label per instance (\(count))")
        }
        let labels = try Self.labels(document, count: count, classNames: model.labels)
        let limits: InputLimits
        switch inputs.limits(request) {
        case .success(let l): limits = l
        case .failure(let e): throw e
        }
        let batch: DecodedBatch
        do { batch = try InputDecoding.jsonInstances(document: document, model: model, limits: limits) } catch {
            batcher.failed(model, startedAt: started)
            throw error
        }
        let key = ModelVersion(model: model.name, version: model.version)
        let requestID = request.id ?? ""
        batcher.submit(batch, model: model, sink: sink, startedAt: started) { [accuracy, capture, shadow] result in
            let (classes, confidences) = PredictionRecorder.top1(result.probabilities, count: batch.count, classes: model.outputCount)
            let tally = accuracy.record(key, classNames: model.labels, labels: labels, classes: classes, confidences: confidences)
            // The pair's evidence: this answer (latency, and its copy for the other version with the
            // labels, which score that version's prediction when the shadow worker has run it) first,
            // so that the labels count for the current pair.
            shadow.answered(routed, batch: batch, classes: classes, requestID: nil, labels: labels,
                            inferenceNanoseconds: result.inferenceNanoseconds)
            shadow.tracker.feedback(model: model.name, version: model.version, labels: labels, classes: classes)
            // Labelled images are captured (when sampled) with their labels straight away.
            if capture.isEnabled, let pixels = batch.pixels {
                capture.offer(requestID: requestID, model: model.name, version: model.version, shape: model.inputShape,
                              classCount: model.outputCount, pixels: { pixels }, classes: classes, confidences: confidences,
                              now: Double(monotonicNanoseconds()) / 1e9)
                capture.label(requestID: requestID, labels: labels)
            }
            return .json(200, Self.response(key, labels: labels, classes: classes, tally: tally))
        }
    }

    // MARK: Labels and the answer

    /// The labels of `document` ("label" when `count` is 1, else "labels" with `count` entries),
    /// each a class index below `classNames.count` or a class name.
    static func labels(_ document: JSONValue, count: Int, classNames: [String]) throws(ServiceError) -> [Int] {
        let values: [JSONValue]
        if let list = document["labels"] {
            guard let array = list.arrayValue else {
                throw .badRequest("invalid_label", "'labels' must be an array with one label per image (\(count)), received \(list.kindName)")
            }
            guard array.count == count else {
                throw .badRequest("invalid_label", "expected \(count) label\(count == 1 ? "" : "s") (one per image of the prediction), received \(array.count)")
            }
            values = array
        } else if let one = document["label"] {
            guard count == 1 else {
                throw .badRequest("invalid_label", "the prediction had \(count) images: send \"labels\" with \(count) entries, one per image in order")
            }
            values = [one]
        } else {
            throw .badRequest("invalid_label", "'label' is missing: send the true class as an index from 0 to \(classNames.count - 1) or a class name")
        }
        return try values.enumerated().map { (i, v) throws(ServiceError) in
            let at = values.count > 1 ? "label \(i): " : ""
            if let name = v.stringValue {
                guard let k = classNames.firstIndex(of: name) else {
                    throw .badRequest("invalid_label", "\(at)'\(echoed(name))' is not a class of this model; expected an index from 0 to \(classNames.count - 1) or one of \(classNames.prefix(20).joined(separator: ", "))")
                }
                return k
            }
            guard let x = v.numberValue, x == x.rounded(), x >= 0, x < Double(classNames.count) else {
                throw .badRequest("invalid_label", "\(at)expected a class index from 0 to \(classNames.count - 1) (or a class name), received \(v.numberValue.map { "\($0)" } ?? v.kindName)")
            }
            return Int(x)
        }
    }

    static func response(_ key: ModelVersion, labels: [Int], classes: [Int], tally: AccuracyTally) -> [UInt8] {
        var w = JSONWriter(capacity: 256)
        w.raw("{"); w.key("model"); w.string(key.model)
        w.raw(","); w.key("model_version"); w.int(key.version)
        w.raw(","); w.key("accepted"); w.int(labels.count)
        w.raw(","); w.key("correct"); w.int(zip(labels, classes).filter { $0 == $1 }.count)
        w.raw(","); w.key("predicted"); w.raw("[")
        for (i, c) in classes.enumerated() { if i > 0 { w.raw(",") }; w.int(c) }
        w.raw("],"); w.key("live_accuracy"); w.raw("{")
        w.key("all"); w.double(tally.accuracy ?? 0)
        w.raw(","); w.key("recent"); w.double(tally.recentAccuracy ?? 0)
        w.raw(","); w.key("labels"); w.int(tally.received)
        w.raw("}}")
        return w.bytes
    }
}
