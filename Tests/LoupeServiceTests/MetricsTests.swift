import Testing
@testable import LoupeService

@Suite struct MetricsTests {
    @Test func rendersCountersGaugesHistograms() {
        let r = MetricsRegistry()
        let requests = r.counter("loupe_test_requests_total", help: "Requests.", labels: ["route", "code"])
        requests.labels("/predict", "200").increment()
        requests.labels("/predict", "200").add(2)
        requests.labels("/v2/models/{m}", "404").increment()
        let depth = r.gauge("loupe_test_depth", help: "Depth.")
        depth.unlabelled.set(1.5)
        let h = r.histogram("loupe_test_seconds", help: "Latency.", buckets: [0.001, 0.01])
        h.unlabelled.observe(0.0005)
        h.unlabelled.observe(0.005)
        h.unlabelled.observe(5)
        r.addCollector { w in
            w.family("loupe_test_info", help: "Info with \"quotes\".", kind: .gauge)
            w.sample("loupe_test_info", labels: [("v", "a\"b\\c\nd")], value: 1)
        }
        let text = r.render()
        #expect(text.contains("# TYPE loupe_test_requests_total counter\n"))
        #expect(text.contains("loupe_test_requests_total{route=\"/predict\",code=\"200\"} 3\n"))
        #expect(text.contains("loupe_test_requests_total{route=\"/v2/models/{m}\",code=\"404\"} 1\n"))
        #expect(text.contains("loupe_test_depth 1.5\n"))
        #expect(text.contains("loupe_test_seconds_bucket{le=\"0.001\"} 1\n"))
        #expect(text.contains("loupe_test_seconds_bucket{le=\"0.01\"} 2\n"))
        #expect(text.contains("loupe_test_seconds_bucket{le=\"+Inf\"} 3\n"))
        #expect(text.contains("loupe_test_seconds_count 3\n"))
        #expect(text.contains("loupe_test_info{v=\"a\\\"b\\\\c\\nd\"} 1\n"))
    }

    @Test func processMetricsArePresent() {
        let r = MetricsRegistry()
        ProcessMetrics.register(on: r)
        let text = r.render()
        for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                     "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes"] {
            #expect(text.contains("\n\(name) ") || text.hasPrefix(name) || text.contains("# TYPE \(name) "), "\(name)")
        }
        #expect(ProcessMetrics.residentBytes() > 1_000_000)
        #expect(ProcessMetrics.openFileDescriptorCount() >= 3)
    }

    @Test func concurrentUpdatesAreNotLost() async {
        let r = MetricsRegistry()
        let c = r.counter("c_total", help: "c").unlabelled
        let h = r.histogram("h", help: "h", buckets: [1]).unlabelled
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<1000 { c.increment(); h.observe(0.5) } }
            }
        }
        #expect(c.value == 8000)
        #expect(h.snapshot().count == 8000)
    }
}
