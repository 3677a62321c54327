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

    /// A request id with its hash computed once, outside the lock: the table's probes, and the
    /// entries a removal moves back, rehash no string.
    private struct Key: Hashable {
        let id: String
        let hash: Int
        init(_ id: String) { self.id = id; hash = id.hashValue }
        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.id == b.id }
    }
    /// One record, in arrival order; `prediction` is nil once a newer record of the same id
    /// replaced it (or it was pushed out).
    private struct Slot { var key: Key; var prediction: RecentPrediction? }
    private struct State {
        /// Each id's newest record, by its sequence number (the table holds no prediction, so
        /// what it moves is small).
        var byID: [Key: UInt64] = [:]
        /// The records: a ring; `head` is the oldest live one, `ring[i]` has sequence `base + i`.
        var ring: [Slot] = []
        var head = 0
        var base: UInt64 = 0
        var images = 0

        func index(_ key: Key) -> Int? { byID[key].map { Int($0 - base) } }
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
        let key = Key(id)
        state.withLock { s in
            let sequence = s.base + UInt64(s.ring.count)
            if let old = s.byID.updateValue(sequence, forKey: key) {
                let i = Int(old - s.base)
                s.images -= s.ring[i].prediction?.classes.count ?? 0
                s.ring[i].prediction = nil
            }
            s.ring.append(Slot(key: key, prediction: prediction))
            s.images += n
            while s.images > capacityImages, s.head < s.ring.count {
                // A slot whose id was since reused holds nothing: the newer record stays.
                if let oldest = s.ring[s.head].prediction {
                    s.byID[s.ring[s.head].key] = nil
                    s.images -= oldest.classes.count
                    s.ring[s.head].prediction = nil
                }
                s.head += 1
            }
            // Drop the consumed front once it is half the array (amortised O(1) per record).
            if s.head > 64 && s.head * 2 > s.ring.count {
                s.ring.removeFirst(s.head)
                s.base += UInt64(s.head)
                s.head = 0
            }
        }
    }

    /// Takes the prediction of request `id` for feedback: marks it labelled and returns it, or says
    /// why not. `now` is monotonic seconds.
    public func claim(id: String, now: Double) -> Result<RecentPrediction, FeedbackClaimError> {
        let key = Key(id)
        return state.withLock { s in
            guard let i = s.index(key), var prediction = s.ring[i].prediction else { return .failure(.unknown) }
            let age = now - prediction.at
            if age > maxAgeSeconds { return .failure(.expired(ageSeconds: age)) }
            if prediction.labelled { return .failure(.duplicate) }
            prediction.labelled = true
            s.ring[i].prediction = prediction
            return .success(prediction)
        }
    }

    /// Returns a claim (feedback that was then refused for another reason may be sent again).
    func release(id: String) {
        let key = Key(id)
        state.withLock { s in
            guard let i = s.index(key), s.ring[i].prediction != nil else { return }
            s.ring[i].prediction!.labelled = false
        }
    }

    /// The prediction of request `id`, without claiming it (tests, capture).
    func peek(id: String) -> RecentPrediction? {
        let key = Key(id)
        return state.withLock { s in s.index(key).flatMap { s.ring[$0].prediction } }
    }

    /// Images and requests held now.
    var occupancy: (images: Int, requests: Int) { state.withLock { ($0.images, $0.byID.count) } }
}
