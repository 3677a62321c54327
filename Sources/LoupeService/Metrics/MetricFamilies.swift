// Labelled metric families (counters, gauges, histograms): one value per label combination, created on
// first use and kept (label values are bounded by the callers; see ServiceMetrics).
import Synchronization

/// A family of counters or gauges sharing a name and label names.
public final class MetricFamily: Sendable {
    public let name: String
    public let help: String
    public let kind: MetricKind
    public let labelNames: [String]
    private let children = Mutex<[[String]: MetricValue]>([:])
    private let order = Mutex<[[String]]>([])

    init(name: String, help: String, kind: MetricKind, labelNames: [String]) {
        self.name = name; self.help = help; self.kind = kind; self.labelNames = labelNames
    }

    /// The child for these label values (in `labelNames` order), created on first use.
    public func labels(_ values: String...) -> MetricValue { child(values) }

    public func child(_ values: [String]) -> MetricValue {
        precondition(values.count == labelNames.count, "\(name): expected \(labelNames.count) label values")
        return children.withLock { map in
            if let existing = map[values] { return existing }
            let created = MetricValue()
            map[values] = created
            order.withLock { $0.append(values) }
            return created
        }
    }

    /// Removes one child (for example a model version that was unloaded).
    public func remove(_ values: [String]) {
        children.withLock { map in
            if map.removeValue(forKey: values) != nil {
                order.withLock { $0.removeAll { $0 == values } }
            }
        }
    }

    /// Removes every child.
    public func removeAll() {
        children.withLock { map in
            map.removeAll()
            order.withLock { $0.removeAll() }
        }
    }

    /// The value for a family without labels.
    public var unlabelled: MetricValue { child([]) }

    /// The sum over the children whose label values pass `include` (for the console's status JSON).
    func total(where include: ([String]) -> Bool) -> Double {
        children.withLock { map in map.reduce(0.0) { include($1.key) ? $0 + $1.value.value : $0 } }
    }

    func render(into writer: inout MetricsWriter) {
        let snapshot: [([String], Double)] = children.withLock { map in
            order.withLock { keys in keys.compactMap { k in map[k].map { (k, $0.value) } } }
        }
        writer.family(name, help: help, kind: kind)
        for (values, value) in snapshot {
            writer.sample(name, labels: Array(zip(labelNames, values)), value: value)
        }
    }
}

/// A family of histograms sharing a name, label names and buckets.
public final class HistogramFamily: Sendable {
    public let name: String
    public let help: String
    public let labelNames: [String]
    public let upperBounds: [Double]
    private let children = Mutex<[[String]: HistogramValue]>([:])
    private let order = Mutex<[[String]]>([])

    init(name: String, help: String, labelNames: [String], upperBounds: [Double]) {
        self.name = name; self.help = help; self.labelNames = labelNames
        self.upperBounds = upperBounds.sorted()
    }

    public func labels(_ values: String...) -> HistogramValue { child(values) }

    public func child(_ values: [String]) -> HistogramValue {
        precondition(values.count == labelNames.count, "\(name): expected \(labelNames.count) label values")
        return children.withLock { map in
            if let existing = map[values] { return existing }
            let created = HistogramValue(upperBounds: upperBounds)
            map[values] = created
            order.withLock { $0.append(values) }
            return created
        }
    }

    public var unlabelled: HistogramValue { child([]) }

    /// Per-bucket counts (not cumulative; the last one is +Inf), sum and count, added over the children whose
    /// label values pass `include` (for the console's status JSON).
    func merged(where include: ([String]) -> Bool) -> HistogramCounts {
        let selected: [HistogramValue] = children.withLock { map in map.compactMap { include($0.key) ? $0.value : nil } }
        var out = HistogramCounts(upperBounds: upperBounds, counts: [UInt64](repeating: 0, count: upperBounds.count + 1), sum: 0, count: 0)
        for h in selected { out.add(h.counts()) }
        return out
    }

    func render(into writer: inout MetricsWriter) {
        let snapshot: [([String], HistogramValue)] = children.withLock { map in
            order.withLock { keys in keys.compactMap { k in map[k].map { (k, $0) } } }
        }
        writer.family(name, help: help, kind: .histogram)
        for (values, histogram) in snapshot {
            let labels = Array(zip(labelNames, values))
            let (cumulative, sum, count) = histogram.snapshot()
            for (bound, c) in zip(upperBounds, cumulative) {
                writer.sample(name + "_bucket", labels: labels + [("le", formatMetricValue(bound))], value: Double(c))
            }
            writer.sample(name + "_bucket", labels: labels + [("le", "+Inf")], value: Double(count))
            writer.sample(name + "_sum", labels: labels, value: sum)
            writer.sample(name + "_count", labels: labels, value: Double(count))
        }
    }
}
