// The recent predictions the service can take ground truth for: every answered request's top-1
// class and confidence per image, kept by its X-Request-ID in a bounded window (`feedback.window`
// images, `feedback.max_age_s` seconds). A lookup is one hash-table probe; recording one
// prediction is one table insert plus a ring-buffer push under one short lock, and the
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
    private struct Key {
        let id: String
        let hash: Int
        init(_ id: String) { self.id = id; hash = id.hashValue }
    }
    /// One record, in arrival order; `prediction` is nil once a newer record of the same id
    /// replaced it (or it was pushed out).
    private struct Slot { var key: Key; var prediction: RecentPrediction? }
    private struct State {
        /// Each id's newest record, by its sequence number.
        var byID = IDTable()
        /// The records: a ring; `head` is the oldest live one, `ring[i]` has sequence `base + i`.
        var ring: [Slot] = []
        var head = 0
        var base: UInt64 = 0
        var images = 0

        /// The table position and ring index of `key`'s newest record.
        func find(_ key: Key) -> (position: Int, index: Int)? {
            byID.find(key.hash) { ring[Int($0 - base)].key.id == key.id }.map { ($0.position, Int($0.sequence - base)) }
        }
        func index(_ key: Key) -> Int? { find(key)?.index }
    }

    /// Request ids to sequence numbers: open addressing with linear probing over (hash, sequence)
    /// pairs, at most half full (doubled as it fills, never shrunk: the window bounds it), a removal
    /// shifting the entries after it back (no tombstones). A probe compares hashes and looks at a
    /// record's id only when they match; nothing hashes again. (A `Dictionary` here cost a hash
    /// per probe, per removal and per entry a removal moved: ~3% of a /predict's CPU.)
    struct IDTable {
        private var hashes: [Int] = []
        /// sequence + 1; 0 = empty.
        private var entries: [UInt64] = []
        private(set) var count = 0

        /// The position and sequence of the entry with `hash` whose record `matches`.
        func find(_ hash: Int, where matches: (UInt64) -> Bool) -> (position: Int, sequence: UInt64)? {
            guard !entries.isEmpty else { return nil }
            let mask = entries.count - 1
            var i = hash & mask
            while entries[i] != 0 {
                if hashes[i] == hash && matches(entries[i] - 1) { return (i, entries[i] - 1) }
                i = (i + 1) & mask
            }
            return nil
        }

        mutating func update(position: Int, sequence: UInt64) { entries[position] = sequence + 1 }

        /// Adds an entry (the caller knows the id is not in the table).
        mutating func insert(_ hash: Int, sequence: UInt64) {
            if (count + 1) * 2 > entries.count { resize(max(16, entries.count * 2)) }
            place(hash, sequence + 1)
            count += 1
        }

        /// Removes the entry at `position`: each entry after it in its run moves back into the gap
        /// when its home position is not between the gap and itself (so every entry stays
        /// reachable from its home).
        mutating func remove(position: Int) {
            let mask = entries.count - 1
            var gap = position, j = position
            entries[gap] = 0
            while true {
                j = (j + 1) & mask
                if entries[j] == 0 { break }
                let home = hashes[j] & mask
                let reachable = gap <= j ? (gap < home && home <= j) : (gap < home || home <= j)
                if reachable { continue }
                hashes[gap] = hashes[j]; entries[gap] = entries[j]
                entries[j] = 0
                gap = j
            }
            count -= 1
        }

        private mutating func place(_ hash: Int, _ entry: UInt64) {
            let mask = entries.count - 1
            var i = hash & mask
            while entries[i] != 0 { i = (i + 1) & mask }
            hashes[i] = hash; entries[i] = entry
        }

        private mutating func resize(_ size: Int) {
            let oldHashes = hashes, oldEntries = entries
            hashes = [Int](repeating: 0, count: size)
            entries = [UInt64](repeating: 0, count: size)
            for j in oldEntries.indices where oldEntries[j] != 0 { place(oldHashes[j], oldEntries[j]) }
        }
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
            if let old = s.find(key) {
                s.byID.update(position: old.position, sequence: sequence)
                s.images -= s.ring[old.index].prediction?.classes.count ?? 0
                s.ring[old.index].prediction = nil
            } else {
                s.byID.insert(key.hash, sequence: sequence)
            }
            s.ring.append(Slot(key: key, prediction: prediction))
            s.images += n
            while s.images > capacityImages, s.head < s.ring.count {
                // A slot whose id was since reused holds nothing: the newer record stays.
                if let oldest = s.ring[s.head].prediction {
                    let oldestSequence = s.base + UInt64(s.head)
                    if let entry = s.byID.find(s.ring[s.head].key.hash, where: { $0 == oldestSequence }) {
                        s.byID.remove(position: entry.position)
                    }
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
