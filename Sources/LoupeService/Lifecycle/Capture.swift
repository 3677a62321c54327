// Captured data (`capture.*`, off by default): a sample of the requests the service answered,
// their pixels with the predicted class, and the true label once POST /feedback brings one,
// written as IDX datasets that `loupe train --data` reads as they are.
//
// On the request path a sampled request costs one random draw, one copy of its pixels and one
// short critical section (the pending table, by request id). Everything else runs on the capture
// queue every `capture.flush_interval_s`: records that got a label, or whose feedback window
// (`feedback.max_age_s`) passed, are written as one new set per model:
//
//   <capture.dir>/<model>/<UTC time>-<n>/
//     train-images-idx3-ubyte, train-labels-idx1-ubyte            labelled records (true labels)
//     unlabelled-images-idx3-ubyte, unlabelled-predictions-idx1-ubyte   the others (predicted class)
//     capture.json                                                 one entry per record
//
// A set is built in a temp directory and renamed into place (a reader never sees half a set).
// The directory holds at most `capture.max_bytes`: the oldest sets are deleted to make room
// (rotation), and records waiting in memory are bounded by the same figure (a sample that does
// not fit is dropped and counted). A write that fails (a full disk, a read-only volume) stops
// capture with one error log line and `loupe_capture_stopped 1`; requests never fail for it.
// Colour models (C > 1) are written as idx4 image files. Labels are one byte (IDX type 0x08, all
// `loupe train` reads), so a model with more than 256 classes is not captured: one warning names it
// (at start for the models served then, else at its first answered request) and its sampled images
// count as dropped (`reason="too_many_classes"`) — never labels clamped to 255.
// This file: the store, the request path and the metrics; the capture queue's writing is
// CaptureWriting.swift, a set's file contents CaptureSetFiles.swift.
import Dispatch
import Glibc
import Logging
import LoupeData
import Synchronization

struct CaptureConfiguration: Sendable, Equatable {
    var enabled = false
    var sampleRate = 0.01
    var maxBytes = 256 << 20
    var directory = "capture"
    var flushIntervalSeconds = 60.0
    /// `feedback.max_age_s`: how long an unlabelled record waits for its label.
    var labelWaitSeconds = 3600.0
}

final class CaptureStore: Sendable {
    /// One captured image.
    struct Record: Sendable {
        var requestID: String
        var index: Int
        var model: String
        var version: Int
        var shape: [Int]
        var pixels: [UInt8]
        var predicted: Int
        var confidence: Float
        var label: Int?
        /// Wall-clock seconds (for the sidecar) and monotonic seconds (for waiting).
        var timestamp: Double
        var at: Double
    }

    struct State {
        var pending: [String: [Record]] = [:]
        var order: [String] = []            // request ids in arrival order (may name taken ones)
        var ready: [Record] = []
        var bufferedBytes = 0
        var stopped = false
        var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
        /// Sets on disk, oldest first, with their sizes.
        var sets: [(path: String, bytes: Int)] = []
        var sequence = 0
        /// Models refused for their class count (warned once each).
        var refused: Set<String> = []
    }

    /// Classes a captured label can name: one IDX byte.
    static let maxClasses = 256

    let configuration: CaptureConfiguration
    let logger: Logger
    let state: Mutex<State>
    let queue = DispatchQueue(label: "loupe.capture")
    private let timerStarted = Atomic<Bool>(false)
    // Metrics
    private let sampled = Atomic<Int>(0)
    let writtenLabelled = Atomic<Int>(0)
    let writtenUnlabelled = Atomic<Int>(0)
    private let droppedFull = Atomic<Int>(0)
    private let droppedStopped = Atomic<Int>(0)
    private let droppedClasses = Atomic<Int>(0)
    let writeErrors = Atomic<Int>(0)

    init(configuration: CaptureConfiguration, logger: Logger, seed: UInt64) {
        self.configuration = configuration
        self.logger = logger
        var s = State()
        s.rng = seed | 1
        state = Mutex(s)
    }

    var isEnabled: Bool { configuration.enabled && configuration.sampleRate > 0 }

    /// Starts the periodic flush and takes stock of the sets already on disk.
    func start() {
        guard isEnabled, !timerStarted.exchange(true, ordering: .relaxed) else { return }
        let existing = Self.existingSets(root: configuration.directory)
        state.withLock { $0.sets = existing }
        scheduleFlush()
    }

    // MARK: Request path

    /// Offers an answered request: kept with probability `capture.sample_rate`. `pixels` gives the
    /// images back to back (`count × shape.product` bytes); it is only evaluated for a sampled request.
    /// `classCount`: the model's classes; over `maxClasses` nothing is kept (see `refuse`).
    func offer(requestID: String, model: String, version: Int, shape: [Int], classCount: Int, pixels: () -> [UInt8],
               classes: [Int], confidences: [Float], now: Double) {
        guard isEnabled, !classes.isEmpty else { return }
        let refused = classCount > Self.maxClasses && refuse(model: model, classCount: classCount)
        let picked: Bool = state.withLock { s in
            // xorshift64*: the sampling draw.
            s.rng ^= s.rng >> 12; s.rng ^= s.rng << 25; s.rng ^= s.rng >> 27
            return Double((s.rng &* 0x2545_F491_4F6C_DD1D) >> 11) / Double(1 << 53) < configuration.sampleRate
        }
        guard picked else { return }
        if refused { droppedClasses.add(classes.count, ordering: .relaxed); return }
        let per = shape.reduce(1, *)
        let all = pixels()
        guard per > 0, all.count == per * classes.count else { return }
        let size = Self.bufferedSize(pixels: all.count, images: classes.count)
        let wall = wallClockSeconds()
        let records = classes.indices.map { i in
            Record(requestID: requestID, index: i, model: model, version: version, shape: shape,
                   pixels: Array(all[(i * per)..<((i + 1) * per)]), predicted: classes[i],
                   confidence: confidences[i], label: nil, timestamp: wall, at: now)
        }
        let outcome: Int = state.withLock { s in
            if s.stopped { return 2 }
            guard s.bufferedBytes + size <= configuration.maxBytes else { return 3 }
            if let old = s.pending.updateValue(records, forKey: requestID) {   // a reused id: the old one waits no more
                s.ready += old
            } else {
                s.order.append(requestID)
            }
            s.bufferedBytes += size
            return 1
        }
        switch outcome {
        case 1: sampled.add(classes.count, ordering: .relaxed)
        case 2: droppedStopped.add(classes.count, ordering: .relaxed)
        default: droppedFull.add(classes.count, ordering: .relaxed)
        }
    }

    /// A model with more than `maxClasses` classes is not captured: its labels would not fit the one-byte
    /// IDX labels `loupe train` reads. Warns once per model; returns true.
    @discardableResult
    func refuse(model: String, classCount: Int) -> Bool {
        guard isEnabled, state.withLock({ $0.refused.insert(model).inserted }) else { return true }
        logger.warning("capture is off for model '\(model)': it has \(classCount) classes, and captured labels are one byte (IDX type 0x08, what loupe train reads), so only models of at most \(Self.maxClasses) classes are captured; its requests are answered as usual")
        return true
    }

    /// Memory a waiting record is counted for: its pixels and, roughly, its sidecar entry.
    static func bufferedSize(pixels: Int, images: Int) -> Int { pixels + 160 * images }

    /// Labels arrived for a captured request (POST /feedback): its records are written at the next flush.
    func label(requestID: String, labels: [Int]) {
        guard isEnabled else { return }
        state.withLock { s in
            // Labels for another image count (an X-Request-ID reused for a request of another size) leave
            // the records waiting, to be written unlabelled and their bytes given back.
            guard var records = s.pending[requestID], records.count == labels.count else { return }
            s.pending[requestID] = nil
            for i in records.indices { records[i].label = labels[i] }
            s.ready += records
        }
    }

    /// Whether a request's records are waiting for a label (tests).
    func isPending(_ requestID: String) -> Bool { state.withLock { $0.pending[requestID] != nil } }
    /// Whether a write failure stopped capture (loupe_capture_stopped).
    var isStopped: Bool { state.withLock { $0.stopped } }

    // Writing (the capture queue): CaptureWriting.swift.

    // MARK: Metrics

    func register(on registry: MetricsRegistry) {
        registry.addCollector { [weak self] w in self?.write(into: &w) }
    }

    func write(into w: inout MetricsWriter) {
        let (bytes, sets, stopped, buffered) = state.withLock { s in
            (s.sets.reduce(0) { $0 + $1.bytes }, s.sets.count, s.stopped, s.bufferedBytes)
        }
        w.family("loupe_capture_enabled", help: "1 when capture.enabled is true and capture.sample_rate > 0.", kind: .gauge)
        w.sample("loupe_capture_enabled", value: isEnabled ? 1 : 0)
        w.family("loupe_capture_sampled_images_total", help: "Images picked for capture (capture.sample_rate).", kind: .counter)
        w.sample("loupe_capture_sampled_images_total", value: Double(sampled.load(ordering: .relaxed)))
        w.family("loupe_capture_written_images_total", help: "Captured images written to a set, by whether a label came (labelled: train-* files; unlabelled: unlabelled-* files).", kind: .counter)
        w.sample("loupe_capture_written_images_total", labels: [("state", "labelled")], value: Double(writtenLabelled.load(ordering: .relaxed)))
        w.sample("loupe_capture_written_images_total", labels: [("state", "unlabelled")], value: Double(writtenUnlabelled.load(ordering: .relaxed)))
        w.family("loupe_capture_dropped_images_total", help: "Sampled images not captured: buffer_full (waiting records reached capture.max_bytes), stopped (capture stopped after a write failure), too_many_classes (a model of more than 256 classes: labels are one byte).", kind: .counter)
        w.sample("loupe_capture_dropped_images_total", labels: [("reason", "buffer_full")], value: Double(droppedFull.load(ordering: .relaxed)))
        w.sample("loupe_capture_dropped_images_total", labels: [("reason", "stopped")], value: Double(droppedStopped.load(ordering: .relaxed)))
        w.sample("loupe_capture_dropped_images_total", labels: [("reason", "too_many_classes")], value: Double(droppedClasses.load(ordering: .relaxed)))
        w.family("loupe_capture_write_errors_total", help: "Captured sets that could not be written (a full disk, a read-only volume); the first stops capture.", kind: .counter)
        w.sample("loupe_capture_write_errors_total", value: Double(writeErrors.load(ordering: .relaxed)))
        w.family("loupe_capture_stopped", help: "Whether a write failure stopped capture (then 1; requests are unaffected; restart to capture again).", kind: .gauge)
        w.sample("loupe_capture_stopped", value: stopped ? 1 : 0)
        w.family("loupe_capture_bytes", help: "Bytes of captured sets on disk (at most capture.max_bytes) and waiting in memory.", kind: .gauge)
        w.sample("loupe_capture_bytes", labels: [("where", "disk")], value: Double(bytes))
        w.sample("loupe_capture_bytes", labels: [("where", "memory")], value: Double(buffered))
        w.family("loupe_capture_sets", help: "Captured sets on disk.", kind: .gauge)
        w.sample("loupe_capture_sets", value: Double(sets))
    }
}
