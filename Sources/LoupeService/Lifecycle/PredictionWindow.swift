// The recent predictions the service can take ground truth for: every answered request's top-1
// class and confidence per image, kept by its X-Request-ID in a bounded window (`feedback.window`
// images, `feedback.max_age_s` seconds). A lookup is one dictionary probe; recording one
// prediction is one dictionary insert plus a ring-buffer push under one short lock, and the
// oldest entries are pushed out as new ones arrive (amortised O(1)).
import Synchronization

/// One answered request: which model version answered, and its top-1 class and confidence per image.
public struct RecentPrediction: Sendable, Equatable {
    public var model: String
    public var version: Int
    /// The model's class count (labels must be below it).
    public var classCount: Int
    public var classes: [Int]
    public var confidences: [Float]
    /// Monotonic seconds when it was answered.
    public var at: Double
    /// Set once feedback for the request was taken (a second one is a duplicate).
    public var labelled = false

    public init(model: String, version: Int, classCount: Int, classes: [Int], confidences: [Float], at: Double, labelled: Bool = false) {
        self.model = model; self.version = version; self.classCount = classCount; self.classes = classes
        self.confidences = confidences; self.at = at; self.labelled = labelled
    }
}

/// Why feedback by request id was refused.
public enum FeedbackClaimError: Error, Equatable {
    /// Never seen, or pushed out of the window by newer predictions.
    case unknown
    /// Still in the window but older than `feedback.max_age_s`.
    case expired(ageSeconds: Double)
    case duplicate
}

public final class PredictionWindow: Sendable {
    /// Images kept at most (0: the window is off and nothing is recorded).
    let capacityImages: Int
    let maxAgeSeconds: Double

    private struct Slot { var id: String; var sequence: UInt64; var images: Int }
    private struct State {
        var byID: [String: (sequence: UInt64, prediction: RecentPrediction)] = [:]
        /// Insertion order: a ring of slots; `head` is the oldest live one.
        var ring: [Slot] = []
        var head = 0
        var images = 0
        var nextSequence: UInt64 = 0
    }
    private let state = Mutex(State())

    public init(capacityImages: Int, maxAgeSeconds: Double) {
        self.capacityImages = capacityImages
        self.maxAgeSeconds = maxAgeSeconds
    }

    var isEnabled: Bool { capacityImages > 0 }

    /// Records an answered request. A client that reuses an id replaces its earlier prediction.
    /// A request with more images than the whole window is not kept.
    public func record(id: String, _ prediction: RecentPrediction) {
        let n = prediction.classes.count
        guard isEnabled, n > 0, n <= capacityImages else { return }
        state.withLock { s in
            let sequence = s.nextSequence
            s.nextSequence &+= 1
            if let old = s.byID.updateValue((sequence, prediction), forKey: id) { s.images -= old.prediction.classes.count }
            s.ring.append(Slot(id: id, sequence: sequence, images: n))
            s.images += n
            while s.images > capacityImages, s.head < s.ring.count {
                let oldest = s.ring[s.head]
                s.head += 1
                // A slot whose id was since reused names a newer entry: that one stays.
                if let entry = s.byID[oldest.id], entry.sequence == oldest.sequence {
                    s.byID[oldest.id] = nil
                    s.images -= oldest.images
                }
            }
            // Drop the consumed front once it is half the array (amortised O(1) per record).
            if s.head > 64 && s.head * 2 > s.ring.count {
                s.ring.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    /// Takes the prediction of request `id` for feedback: marks it labelled and returns it, or says
    /// why not. `now` is monotonic seconds.
    public func claim(id: String, now: Double) -> Result<RecentPrediction, FeedbackClaimError> {
        state.withLock { s in
            guard var entry = s.byID[id] else { return .failure(.unknown) }
            let age = now - entry.prediction.at
            if age > maxAgeSeconds { return .failure(.expired(ageSeconds: age)) }
            if entry.prediction.labelled { return .failure(.duplicate) }
            entry.prediction.labelled = true
            s.byID[id] = entry
            return .success(entry.prediction)
        }
    }

    /// Returns a claim (feedback that was then refused for another reason may be sent again).
    func release(id: String) {
        state.withLock { s in
            guard var entry = s.byID[id] else { return }
            entry.prediction.labelled = false
            s.byID[id] = entry
        }
    }

    /// The prediction of request `id`, without claiming it (tests, capture).
    func peek(id: String) -> RecentPrediction? { state.withLock { $0.byID[id]?.prediction } }

    /// Images and requests held now.
    var occupancy: (images: Int, requests: Int) { state.withLock { ($0.images, $0.byID.count) } }
}
