import LoupeHTTP
@testable import LoupeService
import Testing

// The console's routes through the real router (the page itself is tested in a browser:
// EndToEndTests/ConsoleBrowserTests), and the histogram window arithmetic behind /api/status.
@Suite struct ConsoleRouteTests {
    @Test func rootServesThePageToBrowsersAndLivenessToOthers() {
        let h = Harness()
        let page = h.send(.GET, "/", headers: [("Accept", "text/html,application/xhtml+xml")])
        #expect(page.status == 200)
        #expect(page.headers["Content-Type"] == "text/html; charset=utf-8")
        #expect(page.headers["Vary"] == "Accept, Accept-Encoding")
        // The page is gzipped once per process, not per request: the handler answers the encoded bytes.
        let gzipped = h.send(.GET, "/", headers: [("Accept", "text/html"), ("Accept-Encoding", "gzip, br")])
        #expect(gzipped.headers["Content-Encoding"] == "gzip" && gzipped.body == ConsolePage.gzipped)
        let etag = page.headers["ETag"] ?? ""
        #expect(h.send(.GET, "/", headers: [("Accept", "text/html"), ("If-None-Match", etag)]).status == 304)
        #expect(String(decoding: page.body, as: UTF8.self).contains("<title>Loupe console</title>"))
        let api = h.send(.GET, "/")
        #expect(json(api)["status"]?.stringValue == "alive")
    }

    @Test func statusCountsPostRequestsAndReportsQueueAndModels() {
        let h = Harness()
        for _ in 0..<4 {
            _ = h.send(.POST, "/predict", headers: [("Content-Type", "application/octet-stream")], body: [0, 0, 0, 0])
        }
        _ = h.send(.GET, "/health/live")
        let v = json(h.send(.GET, "/api/status"))
        #expect(v["requests"]?.numberValue == 4)
        #expect(v["queue_depth"]?.numberValue == 0)
        #expect((v["latency_ms"]?["p50"]?.numberValue ?? 0) > 0)
        #expect(v["batch_size"]?["batches"]?.numberValue == 4)
        #expect(v["batch_size"]?["p50"]?.numberValue == 1)
        #expect(v["models"]?.arrayValue?.first?["name"]?.stringValue == "fake")
        // A fixture model without a file has no card and no drift window.
        #expect(v["models"]?.arrayValue?.first?["drift"] == .null)
        #expect(json(h.send(.GET, "/api/models"))["models"]?.arrayValue?.first?["card"] == .null)
    }

    @Test func histogramWindowQuantiles() {
        let bounds = [1.0, 2.0, 4.0]
        let earlier = HistogramCounts(upperBounds: bounds, counts: [5, 0, 0, 0], sum: 5, count: 5)
        let later = HistogramCounts(upperBounds: bounds, counts: [5, 10, 10, 0], sum: 65, count: 25)
        let window = later.minus(earlier)
        #expect(window.counts == [0, 10, 10, 0] && window.count == 20 && window.sum == 60)
        #expect(window.quantile(0.5) == 2)            // rank 10 ends the (1, 2] bucket
        #expect(window.quantile(0.75) == 3)           // halfway through (2, 4]
        #expect(window.quantileBound(0.75) == 4)
        #expect(HistogramCounts(upperBounds: bounds, counts: [0, 0, 0, 3], sum: 30, count: 3).quantile(0.5) == 4)
        #expect(HistogramCounts(upperBounds: bounds, counts: [0, 0, 0, 0], sum: 0, count: 0).quantile(0.5) == nil)
    }
}
