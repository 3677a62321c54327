// A small Prometheus registry: counters, gauges and histograms with fixed label names, rendered in
// the text exposition format 0.0.4. Metric families are created once at start-up and their
// children (one per label-value tuple) are looked up or cached by the caller; labels must be
// bounded (route templates, codes, class names — never raw paths or ids).
//
// Other parts of the service (the model repository) create their own families on the same
// registry with `counter/gauge/histogram`, or register a `collector` closure that writes
// samples computed at scrape time.
import LoupeSystem
import Synchronization

/// A metric's kind, as written on its `# TYPE` line.
public enum MetricKind: String, Sendable { case counter, gauge, histogram, untyped }

/// Writes samples of collector-provided families in exposition format.
public struct MetricsWriter {
    var text: String = ""

    init() { text.reserveCapacity(16 * 1024) }

    /// Writes `# HELP` and `# TYPE` for a family.
    public mutating func family(_ name: String, help: String, kind: MetricKind) {
        text += "# HELP \(name) \(escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
    }

    /// Writes one sample line: `name{l="v",…} value`.
    public mutating func sample(_ name: String, labels: [(String, String)] = [], value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{"
            for (i, (k, v)) in labels.enumerated() {
                if i > 0 { text += "," }
                text += k
                text += "=\""
                text += escapeLabelValue(v)
                text += "\""
            }
            text += "}"
        }
        text += " "
        text += formatMetricValue(value)
        text += "\n"
    }
}

func formatMetricValue(_ v: Double) -> String {
    if v.isNaN { return "NaN" }
    if v == .infinity { return "+Inf" }
    if v == -.infinity { return "-Inf" }
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return String(v)
}

func escapeLabelValue(_ s: String) -> String {
    guard s.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") }) else {
        return s
    }
    var out = ""
    for c in s {
        switch c {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        default: out.append(c)
        }
    }
    return out
}

func escapeHelp(_ s: String) -> String {
    s.replacingOccurrences("\\", "\\\\").replacingOccurrences("\n", "\\n")
}

/// A counter (monotonic) or gauge value; lock-free. Striped (`StripedCells`): each thread adds in
/// a cache line of its own, so two event loops counting the same route do not trade the line at
/// every request; reading adds the stripes.
public final class MetricValue: Sendable {
    private let cells = StripedCells(width: 1)

    public func add(_ delta: Double) { cells.add(double: delta, to: 0) }
    public func increment() { add(1) }
    public func decrement() { add(-1) }
    public func set(_ value: Double) { cells.set(double: value, cell: 0) }
    public var value: Double { cells.sumDouble(0) }
}

/// A histogram with fixed upper bounds (`le`), cumulative on output. Striped like `MetricValue`:
/// per stripe one count per bucket (the last: above every bound) and the sum. The count is the
/// buckets' total, so a snapshot's +Inf bucket always equals its count.
public final class HistogramValue: Sendable {
    let upperBounds: [Double]
    private let cells: StripedCells

    init(upperBounds: [Double]) {
        self.upperBounds = upperBounds
        cells = StripedCells(width: upperBounds.count + 2)
    }

    private var sumCell: Int { upperBounds.count + 1 }

    public func observe(_ value: Double) { observe(value, times: 1) }

    /// Records `n` observations of the same value at once.
    public func observe(_ value: Double, times n: Int) {
        guard n > 0 else { return }
        // Binary search for the first bound ≥ value (upperBounds.count: above every bound).
        var lo = 0, hi = upperBounds.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if upperBounds[mid] >= value { hi = mid } else { lo = mid + 1 }
        }
        cells.add(UInt64(n), to: lo)
        cells.add(double: value * Double(n), to: sumCell)
    }

    /// Per-bucket counts (last: above every bound), sum and count.
    func counts() -> HistogramCounts {
        var counts = [UInt64](repeating: 0, count: upperBounds.count + 1)
        var count: UInt64 = 0
        for i in counts.indices { counts[i] = cells.sum(i); count &+= counts[i] }
        return HistogramCounts(upperBounds: upperBounds, counts: counts, sum: cells.sumDouble(sumCell), count: count)
    }

    func snapshot() -> (cumulative: [UInt64], sum: Double, count: UInt64) {
        let c = counts()
        var running: UInt64 = 0
        var cumulative = [UInt64](); cumulative.reserveCapacity(upperBounds.count)
        for i in 0..<upperBounds.count { running &+= c.counts[i]; cumulative.append(running) }
        return (cumulative, c.sum, c.count)
    }
}

/// The set of metric families one `/metrics` scrape renders, in registration order.
public final class MetricsRegistry: Sendable {
    private enum Entry: Sendable {
        case family(MetricFamily)
        case histogram(HistogramFamily)
        case collector(@Sendable (inout MetricsWriter) -> Void)
    }
    private let entries = Mutex<[Entry]>([])
    private let names = Mutex<Set<String>>([])

    public init() {}

    /// Registering a name twice returns the first family when kind and labels agree (so two
    /// parts of the service may share one), and stops the process when they do not (a bug).
    private func family(_ name: String, help: String, kind: MetricKind, labels: [String]) -> MetricFamily {
        entries.withLock { list in
            for case .family(let f) in list where f.name == name {
                precondition(f.kind == kind && f.labelNames == labels, "metric \(name) registered twice with different kinds or labels")
                return f
            }
            let fresh = names.withLock { $0.insert(name).inserted }
            precondition(fresh, "metric \(name) registered twice with different kinds")
            let f = MetricFamily(name: name, help: help, kind: kind, labelNames: labels)
            list.append(.family(f))
            return f
        }
    }

    public func counter(_ name: String, help: String, labels: [String] = []) -> MetricFamily {
        family(name, help: help, kind: .counter, labels: labels)
    }

    public func gauge(_ name: String, help: String, labels: [String] = []) -> MetricFamily {
        family(name, help: help, kind: .gauge, labels: labels)
    }

    public func histogram(_ name: String, help: String, labels: [String] = [], buckets: [Double]) -> HistogramFamily {
        entries.withLock { list in
            for case .histogram(let h) in list where h.name == name {
                precondition(h.labelNames == labels, "histogram \(name) registered twice with different labels")
                return h
            }
            let fresh = names.withLock { $0.insert(name).inserted }
            precondition(fresh, "metric \(name) registered twice with different kinds")
            let h = HistogramFamily(name: name, help: help, labelNames: labels, upperBounds: buckets)
            list.append(.histogram(h))
            return h
        }
    }

    /// A closure run at every scrape that writes whole families (HELP/TYPE + samples) with
    /// `MetricsWriter.family` and `.sample`. It must be quick and must not call back into the registry.
    public func addCollector(_ collect: @escaping @Sendable (inout MetricsWriter) -> Void) {
        entries.withLock { $0.append(.collector(collect)) }
    }

    /// The whole registry in Prometheus text format 0.0.4.
    public func render() -> String {
        let snapshot = entries.withLock { $0 }
        var writer = MetricsWriter()
        for entry in snapshot {
            switch entry {
            case .family(let f): f.render(into: &writer)
            case .histogram(let h): h.render(into: &writer)
            case .collector(let c): c(&writer)
            }
        }
        return writer.text
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// Bucket sets used across the service.
public enum MetricBuckets {
    /// Latency in seconds from 25 µs to 10 s (sub-millisecond resolution).
    public static let latencySeconds: [Double] = [
        0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.0075,
        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]
    /// Batch sizes (images).
    public static let batchSize: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    /// Confidence (top-1 probability).
    public static let confidence: [Double] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1]
}

/// A histogram's bucket counts at one moment; differences of two give the histogram of a time window.
struct HistogramCounts: Sendable, Equatable {
    var upperBounds: [Double]
    /// One per bound, then the count above the last bound.
    var counts: [UInt64]
    var sum: Double
    var count: UInt64

    mutating func add(_ o: HistogramCounts) {
        for i in counts.indices { counts[i] &+= o.counts[i] }
        sum += o.sum; count &+= o.count
    }

    /// self − earlier (a later snapshot minus an earlier one of the same histogram).
    func minus(_ earlier: HistogramCounts) -> HistogramCounts {
        HistogramCounts(upperBounds: upperBounds, counts: zip(counts, earlier.counts).map { $0 >= $1 ? $0 - $1 : 0 },
                        sum: sum - earlier.sum, count: count >= earlier.count ? count - earlier.count : 0)
    }

    /// The q-quantile (0…1), linearly interpolated inside its bucket as Prometheus's histogram_quantile
    /// does (the first bucket starts at 0; above the last bound answers the last bound). Nil when empty.
    func quantile(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = q * Double(count)
        var seen: UInt64 = 0
        for (i, c) in counts.enumerated() {
            if Double(seen + c) >= rank && c > 0 {
                guard i < upperBounds.count else { return upperBounds.last }
                let lower = i == 0 ? 0 : upperBounds[i - 1]
                return lower + (upperBounds[i] - lower) * (rank - Double(seen)) / Double(c)
            }
            seen += c
        }
        return upperBounds.last
    }

    /// The upper bound of the bucket holding the q-quantile ("at most"): for integer-valued
    /// observations such as batch sizes, where interpolating inside a bucket invents fractions. Nil when empty.
    func quantileBound(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = q * Double(count)
        var seen: UInt64 = 0
        for (i, c) in counts.enumerated() {
            seen += c
            if Double(seen) >= rank && c > 0 { return i < upperBounds.count ? upperBounds[i] : upperBounds.last }
        }
        return upperBounds.last
    }
}
