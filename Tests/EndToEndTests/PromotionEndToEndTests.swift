// Safe promotion end to end with the real `loupe serve` on loopback: versions trained by the real
// `loupe train` (a serving version, a deliberately worse one — one epoch on 1,000 images — and a
// better one fine-tuned from the serving version), published into a running server's repository.
// Canary: the worse version is rolled back by the accuracy rule (driven by feedback with the true
// labels) and never serves requests without a version; the better one is promoted; no client request
// fails; each client (X-Client-ID) stays on one version until the decision. Shadow: every answer is the
// serving version's, byte for byte; the shadow queue stays within its bound; a person rolls back.
// Canary covers every path a client predicts through (/predict, v2 infer, v1 :predict and :explain,
// /explain, /feedback with instances), each answer saying its version. The rollback memo survives a
// restart, and a rollback after the restart falls back past the remembered version.
// The latency rule is off here (it compares wall-clock times; PromotionRulesTests covers it on counts).
import FoundationEssentials
import Glibc
import LoupeData
import Testing

@Suite(.serialized) struct PromotionEndToEndTests {
    struct Predicted: Decodable { var model_version: Int }
    struct Health: Decodable {
        var promotion: [Entry]?
        struct Entry: Decodable {
            var model: String
            var mode: String?
            var serving_version: Int?
            var candidate_version: Int?
            var verdict: String?
            var last_decision: Decision?
            var candidate_labels: Int?
            var serving_labels: Int?
        }
        struct Decision: Decodable { var version: Int; var decision: String; var reason: String; var message: String }
    }

    static let token = "promo-secret"

    /// The models, trained once for both tests.
    nonisolated(unsafe) static let trained = Result { try trainModels() }

    /// serving (1 epoch on 6,000 images), worse (1 epoch on 1,000), better (fine-tuned from serving
    /// for 1 epoch on 12,000): each `<dir>/<name>/model.loupe`.
    static func trainModels() throws -> TempDir {
        let dir = try TempDir()
        for (name, extra) in [("serving", ["--limit", "6000", "--seed", "1"]), ("worse", ["--limit", "1000", "--seed", "3"]),
                              ("better", ["--init-from", dir.path + "/serving/model.loupe", "--limit", "12000", "--seed", "5"])] {
            try dir.mkdir(name)
            let r = try CLIProcess.loupe(["train", "--data", E2E.datasetDirectory, "--epochs", "1",
                                          "--output", dir.path + "/\(name)/model.loupe"] + extra)
            guard r.status == 0 else { throw E2EError("loupe train \(name) failed: \(r.output)") }
        }
        return dir
    }

    /// Publishes `model` as `<repo>/fashion/<version>/model.loupe` atomically, as `loupe train` does.
    static func publish(_ model: String, version: Int, into repo: TempDir) throws {
        try repo.mkdir("fashion/\(version)")
        try FileIO.writeAtomically(try FileIO.readFile(model), to: repo.path + "/fashion/\(version)/model.loupe")
    }

    static func health(_ port: Int) throws -> Health.Entry? {
        let r = try HTTP.request(port: port, "GET", "/health")
        return try JSONDecoder().decode(Health.self, from: Data(r.body)).promotion?.first { $0.model == "fashion" }
    }

    static func waitForCandidate(_ port: Int, _ version: Int, log: () -> String) throws {
        let deadline = now() + 20
        while now() < deadline {
            if try health(port)?.candidate_version == version { return }
            usleep(20_000)
        }
        throw E2EError("version \(version) never became a candidate; log:\n\(log())")
    }

    static func metric(_ text: String, _ series: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// Classifies test images one at a time from `start` (client `client-<i % 40>`), each followed by
    /// feedback with its true label, until /health reports a decision on `version` (checked every
    /// 10 images; at most `limit` images). Returns the decision, every answer's version per client,
    /// failed requests, and the next image index.
    static func drive(port: Int, version: Int, servingBefore: Int, start: Int, limit: Int,
                      pixels: [UInt8], labels: [UInt8]) throws -> (decision: Health.Decision?, byClient: [Int: [Int]], failed: Int, next: Int) {
        var byClient: [Int: [Int]] = [:]
        var failed = 0
        var i = start
        while i < start + limit && i < labels.count {
            let client = i % 40
            let r = try HTTP.request(port: port, "POST", "/predict",
                                     headers: [("Content-Type", "application/octet-stream"), ("X-Request-ID", "img-\(i)"),
                                               ("X-Client-ID", "client-\(client)")],
                                     body: Array(pixels[(i * 784)..<((i + 1) * 784)]))
            if r.status != 200 { failed += 1 } else {
                byClient[client, default: []].append(try JSONDecoder().decode(Predicted.self, from: Data(r.body)).model_version)
            }
            let f = try HTTP.request(port: port, "POST", "/feedback", headers: [("Content-Type", "application/json")],
                                     body: Array(#"{"request_id": "img-\#(i)", "label": \#(labels[i])}"#.utf8))
            if f.status != 200 { failed += 1 }
            i += 1
            if i % 10 == 0, let entry = try health(port) {
                if let d = entry.last_decision, d.version == version { return (d, byClient, failed, i) }
                // Until the decision, the version before keeps serving requests without a version.
                if let serving = entry.serving_version, serving != servingBefore { return (nil, byClient, failed + 1_000_000, i) }
            }
        }
        return (nil, byClient, failed, i)
    }

    @Test func canaryRollsBackAWorseVersionAndPromotesABetterOneWithoutAFailedRequest() throws {
        let models = try Self.trained.get()
        let repo = try TempDir()
        try Self.publish(models.path + "/serving/model.loupe", version: 1, into: repo)
        let server = try ServeProcess(models: repo.path, settings: [
            "promotion.mode=canary", "promotion.canary_percent=50", "promotion.canary_key_header=X-Client-ID",
            "promotion.min_requests=150", "promotion.min_labels=60", "promotion.max_accuracy_drop=0.05",
            "promotion.confidence=0.95", "promotion.min_agreement=0.5", "promotion.max_latency_ratio=0",
            "promotion.evaluate_interval_ms=50", "models.poll_interval_ms=100", "models.stable_after_ms=50",
            "repository_api.enabled=true", "repository_api.token=\(Self.token)", "logging.access_log=false"])
        try server.waitReady()
        // Room for 3,000 images a phase: each phase stops at its decision (a few hundred images on a
        // quiet machine); on a loaded one the other version's copies (classified from idle time)
        // come slower, and with them the agreement the rules wait for.
        let (pixels, labels) = try E2E.testImages(6000)

        // 1. The worse version as a canary: rolled back by the accuracy rule.
        try Self.publish(models.path + "/worse/model.loupe", version: 2, into: repo)
        try Self.waitForCandidate(server.port, 2, log: { server.log })
        let worse = try Self.drive(port: server.port, version: 2, servingBefore: 1, start: 0, limit: 3000, pixels: pixels, labels: labels)
        #expect(worse.failed == 0, "failed requests (≥ 1,000,000: version 1 stopped serving before the decision)")
        let rollback = try #require(worse.decision, "no decision on version 2 after \(worse.next) images; log:\n\(server.log.suffix(3000))")
        #expect(rollback.decision == "rollback" && rollback.reason == "accuracy", "\(rollback.message)")
        // The canary took part of the traffic, each client on one version until the decision
        // (2 then 1 after the rollback, or 1 throughout), never back to 2.
        let answers = worse.byClient.values.flatMap { $0 }
        #expect(answers.contains(2) && answers.contains(1))
        for (client, seen) in worse.byClient {
            let firstOne = seen.firstIndex(of: 1) ?? seen.count
            #expect(seen[firstOne...].allSatisfy { $0 == 1 }, "client \(client) switched back to version 2: \(seen)")
        }
        #expect(server.process.waitForLine(containing: "version 2 rolled back (accuracy: live accuracy", seconds: 5) != nil)
        var metrics = try HTTP.request(port: server.port, "GET", "/metrics").text
        #expect(Self.metric(metrics, #"loupe_promotion_decisions_total{model="fashion",version="2",decision="rollback",reason="accuracy"}"#) == 1)

        // Later repository passes (polled every 100 ms) do not make it a candidate again.
        usleep(500_000)
        #expect(try Self.health(server.port)?.candidate_version == nil)
        for i in 0..<20 {
            let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream"),
                                                                                      ("X-Client-ID", "client-\(i)")],
                                     body: Array(pixels[0..<784]))
            #expect(r.status == 200 && (try? JSONDecoder().decode(Predicted.self, from: Data(r.body)).model_version) == 1)
        }

        // 2. The better version as a canary: promoted.
        try Self.publish(models.path + "/better/model.loupe", version: 3, into: repo)
        try Self.waitForCandidate(server.port, 3, log: { server.log })
        let better = try Self.drive(port: server.port, version: 3, servingBefore: 1, start: worse.next, limit: 3000,
                                    pixels: pixels, labels: labels)
        #expect(better.failed == 0)
        let promotion = try #require(better.decision, "no decision on version 3 after \(better.next - worse.next) images; log:\n\(server.log.suffix(3000))")
        #expect(promotion.decision == "promote" && promotion.reason == "rules_passed", "\(promotion.message)")
        for (client, seen) in better.byClient {   // 1 then 3 after the promotion, or 3 throughout
            let firstThree = seen.firstIndex(of: 3) ?? seen.count
            #expect(seen[firstThree...].allSatisfy { $0 == 3 }, "client \(client) went back to version 1: \(seen)")
        }
        for i in 0..<20 {
            let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream"),
                                                                                      ("X-Client-ID", "client-\(i)")],
                                     body: Array(pixels[0..<784]))
            #expect(r.status == 200 && (try? JSONDecoder().decode(Predicted.self, from: Data(r.body)).model_version) == 3)
        }
        metrics = try HTTP.request(port: server.port, "GET", "/metrics").text
        #expect(Self.metric(metrics, #"loupe_promotion_decisions_total{model="fashion",version="3",decision="promote",reason="rules_passed"}"#) == 1)
        // The promotion is recorded for restarts.
        #expect(String(decoding: try FileIO.readFile(repo.path + "/.loupe-promotion.json"), as: UTF8.self).contains(#""fashion":3"#))
    }

    @Test func shadowTrafficNeverChangesAnAnswerAndPeopleCanRollBack() throws {
        let models = try Self.trained.get()
        let repo = try TempDir()
        try Self.publish(models.path + "/serving/model.loupe", version: 1, into: repo)
        let server = try ServeProcess(models: repo.path, settings: [
            "promotion.mode=shadow", "promotion.shadow_queue_images=8", "promotion.auto=false", "promotion.min_requests=50",
            "promotion.evaluate_interval_ms=50", "models.poll_interval_ms=100", "models.stable_after_ms=50",
            "repository_api.enabled=true", "repository_api.token=\(Self.token)", "logging.access_log=false"])
        try server.waitReady()
        try Self.publish(models.path + "/worse/model.loupe", version: 2, into: repo)
        try Self.waitForCandidate(server.port, 2, log: { server.log })

        let n = 120
        let (pixels, _) = try E2E.testImages(n)
        var differs = 0
        for i in 0..<n {
            let image = Array(pixels[(i * 784)..<((i + 1) * 784)])
            let headers = [("Content-Type", "application/octet-stream")]
            let answered = try HTTP.request(port: server.port, "POST", "/predict", headers: headers, body: image)
            let serving = try HTTP.request(port: server.port, "POST", "/predict?version=1", headers: headers, body: image)
            let candidate = try HTTP.request(port: server.port, "POST", "/predict?version=2", headers: headers, body: image)
            #expect(answered.status == 200 && serving.status == 200 && candidate.status == 200)
            // The answer is the serving version's, byte for byte, whatever the shadow computed.
            #expect(answered.body == serving.body, "image \(i)")
            if candidate.body != serving.body { differs += 1 }
        }
        #expect(differs > n / 2)   // the candidate's own answers are different: a leak would show

        // The shadow worker ran the candidate on copies, within the queue's bound (8 images).
        var metrics = ""
        let deadline = now() + 30
        repeat {
            metrics = try HTTP.request(port: server.port, "GET", "/metrics").text
            if (Self.metric(metrics, #"loupe_shadow_inferences_total{model="fashion",version="2"}"#) ?? 0) > 0 { break }
            usleep(50_000)
        } while now() < deadline
        let done = Self.metric(metrics, #"loupe_shadow_inferences_total{model="fashion",version="2"}"#) ?? 0
        let dropped = Self.metric(metrics, #"loupe_shadow_dropped_total{model="fashion"}"#) ?? 0
        #expect(done > 0)
        #expect(done + dropped <= Double(n))   // only requests without a version are shadowed
        #expect(Self.metric(metrics, "loupe_shadow_queue_high_water_images").map { $0 <= 8 } == true)
        #expect(Self.metric(metrics, "loupe_shadow_queue_capacity_images") == 8)
        let entry = try #require(try Self.health(server.port))
        #expect(entry.mode == "shadow" && entry.serving_version == 1 && entry.candidate_version == 2 && entry.verdict != nil)

        // A person rolls it back through the repository API (auto is off: the rules only report).
        let path = "/v2/repository/models/fashion/rollback"
        #expect(try HTTP.request(port: server.port, "POST", path).status == 401)
        let wrong = try HTTP.request(port: server.port, "POST", path, headers: [("Authorization", "Bearer \(Self.token)")],
                                     body: Array(#"{"version": 1}"#.utf8))
        #expect(wrong.status == 409 && wrong.text.contains("not the candidate"), "\(wrong.text)")
        let done200 = try HTTP.request(port: server.port, "POST", path, headers: [("Authorization", "Bearer \(Self.token)")],
                                       body: Array(#"{"version": 2}"#.utf8))
        #expect(done200.status == 200 && done200.text.contains(#""rolled_back_version":2"#) && done200.text.contains(#""serving_version":1"#),
                "\(done200.text)")
        let promote = try HTTP.request(port: server.port, "POST", "/v2/repository/models/fashion/promote",
                                       headers: [("Authorization", "Bearer \(Self.token)")])
        #expect(promote.status == 409 && promote.text.contains("no_candidate"))
        let after = try #require(try Self.health(server.port))
        #expect(after.candidate_version == nil && after.last_decision?.decision == "rollback" && after.last_decision?.reason == "manual")
        metrics = try HTTP.request(port: server.port, "GET", "/metrics").text
        #expect(Self.metric(metrics, #"loupe_promotion_decisions_total{model="fashion",version="2",decision="rollback",reason="manual"}"#) == 1)
        #expect(server.process.waitForLine(containing: "version 2 rolled back (manual rollback)", seconds: 5) != nil)
    }

    static func post(_ port: Int, _ path: String, json: String, client: String? = nil) throws -> TestResponse {
        try HTTP.request(port: port, "POST", path, headers: [("Content-Type", "application/json")] + (client.map { [("X-Client-ID", $0)] } ?? []),
                         body: Array(json.utf8))
    }

    static func version(_ r: TestResponse) -> Int? { try? JSONDecoder().decode(Predicted.self, from: Data(r.body)).model_version }

    /// Publishes `staging`'s version `version` file as `repo`'s version `version`.
    static func publish(from staging: TempDir, version: Int, into repo: TempDir) throws {
        try publish(staging.path + "/fashion/\(version)/model.loupe", version: version, into: repo)
    }

    @Test func canaryRoutesEveryPredictionPathAndEachAnswerSaysItsVersion() throws {
        // Two seeded (untrained) versions: their answers differ, so a wrong route would show.
        let staging = try E2E.makeRepository(versions: [7, 8])
        let repo = try TempDir()
        try Self.publish(from: staging, version: 1, into: repo)
        let server = try ServeProcess(models: repo.path, settings: [
            "promotion.mode=canary", "promotion.canary_percent=50", "promotion.canary_key_header=X-Client-ID",
            "promotion.auto=false", "promotion.min_requests=100000", "promotion.evaluate_interval_ms=50",
            "models.poll_interval_ms=100", "models.stable_after_ms=50", "logging.access_log=false"])
        try server.waitReady()
        try Self.publish(from: staging, version: 2, into: repo)
        try Self.waitForCandidate(server.port, 2, log: { server.log })

        let n = 40
        let (pixels, labels) = try E2E.testImages(n)
        var seen: Set<Int> = []
        for c in 0..<n {
            let client = "client-\(c)"
            let image = Array(pixels[(c * 784)..<((c + 1) * 784)])
            let instances = #"{"instances": [[\#(image.map(String.init).joined(separator: ","))]]"#
            let predicted = try HTTP.request(port: server.port, "POST", "/predict",
                                             headers: [("Content-Type", "application/octet-stream"), ("X-Client-ID", client)], body: image)
            let v = try #require(Self.version(predicted), "\(predicted.status) \(predicted.text)")
            seen.insert(v)
            // KServe v1 :predict: the same version (its header), the same answer as that version named.
            let v1 = try Self.post(server.port, "/v1/models/fashion:predict", json: instances + "}", client: client)
            let named = try Self.post(server.port, "/v1/models/fashion/versions/\(v):predict", json: instances + "}")
            #expect(v1.status == 200 && v1.header("X-Loupe-Model-Version") == String(v), "client \(c): \(v1.status) \(v1.text)")
            #expect(v1.body == named.body, "client \(c): v1 answer differs from version \(v)'s")
            // /explain (JSON and PNG) and the v1 :explain verb.
            let explained = try HTTP.request(port: server.port, "POST", "/explain?method=saliency",
                                             headers: [("Content-Type", "application/octet-stream"), ("X-Client-ID", client)], body: image)
            #expect(Self.version(explained) == v, "client \(c): /explain \(explained.status)")
            let png = try HTTP.request(port: server.port, "POST", "/explain?method=saliency&format=png",
                                       headers: [("Content-Type", "application/octet-stream"), ("X-Client-ID", client)], body: image)
            #expect(png.status == 200 && png.header("X-Loupe-Model-Version") == String(v), "client \(c): /explain png \(png.status)")
            let v1Explained = try Self.post(server.port, "/v1/models/fashion:explain?method=saliency", json: instances + "}", client: client)
            #expect(Self.version(v1Explained) == v, "client \(c): v1 :explain \(v1Explained.status) \(v1Explained.text.prefix(200))")
            // Ground truth with the images: classified by the client's version, scored for it.
            let feedback = try Self.post(server.port, "/feedback", json: instances + #", "labels": [\#(labels[c])]}"#, client: client)
            #expect(feedback.status == 200 && Self.version(feedback) == v, "client \(c): /feedback \(feedback.status) \(feedback.text)")
            // v2 infer, for completeness of the list.
            let infer = try Self.post(server.port, "/v2/models/fashion/infer", json: #"{"inputs": [{"name": "input", "datatype": "UINT8", "shape": [1, 784], "data": [\#(image.map(String.init).joined(separator: ","))]}]}"#, client: client)
            #expect(infer.status == 200 && infer.text.contains(#""model_version":"\#(v)""#), "client \(c): infer \(infer.text.prefix(200))")
        }
        #expect(seen == [1, 2], "both versions answer some clients at 50%")

        // The 40 labels scored the answering version; the other version's sampled copies of those
        // feedback requests (shadow worker, off the request path) score it too: more than 40 in all.
        var total = 0
        let deadline = now() + 30
        repeat {
            let entry = try Self.health(server.port)
            total = (entry?.candidate_labels ?? 0) + (entry?.serving_labels ?? 0)
            if total > n { break }
            usleep(50_000)
        } while now() < deadline
        #expect(total > n && total <= 2 * n, "labels scored for the pair: \(total)")
    }

    @Test func aRestartKeepsTheRollbackMemoAndRollsBackPastIt() throws {
        let staging = try E2E.makeRepository(versions: [7, 8, 9])
        let repo = try TempDir()
        try Self.publish(from: staging, version: 1, into: repo)
        let settings = ["promotion.mode=canary", "promotion.canary_percent=10", "promotion.auto=false",
                        "promotion.evaluate_interval_ms=50", "models.poll_interval_ms=100", "models.stable_after_ms=50",
                        "repository_api.enabled=true", "repository_api.token=\(Self.token)", "logging.access_log=false"]
        let auth = [("Authorization", "Bearer \(Self.token)")]
        func servedVersion(_ port: Int) throws -> Int? {
            Self.version(try HTTP.request(port: port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")],
                                          body: [UInt8](repeating: 0, count: 784)))
        }
        let first = try ServeProcess(models: repo.path, settings: settings)
        try first.waitReady()
        // Version 2 promoted by hand; version 3 rolled back by hand.
        try Self.publish(from: staging, version: 2, into: repo)
        try Self.waitForCandidate(first.port, 2, log: { first.log })
        let promoted = try HTTP.request(port: first.port, "POST", "/v2/repository/models/fashion/promote", headers: auth,
                                        body: Array(#"{"version": 2}"#.utf8))
        #expect(promoted.status == 200, "\(promoted.text)")
        try Self.publish(from: staging, version: 3, into: repo)
        try Self.waitForCandidate(first.port, 3, log: { first.log })
        let rolledBack = try HTTP.request(port: first.port, "POST", "/v2/repository/models/fashion/rollback", headers: auth,
                                          body: Array(#"{"version": 3}"#.utf8))
        #expect(rolledBack.status == 200, "\(rolledBack.text)")
        let state = String(decoding: try FileIO.readFile(repo.path + "/.loupe-promotion.json"), as: UTF8.self)
        #expect(state.contains(#""serving":{"fashion":2}"#) && state.contains(#""rolled_back":{"fashion":[{"version":3,"reason":"manual rollback""#), "\(state)")
        first.process.signal(SIGKILL)
        first.process.wait(seconds: 10)

        // Restarted: version 2 serves and version 3 is not a candidate again (its file is unchanged).
        let second = try ServeProcess(models: repo.path, settings: settings)
        try second.waitReady()
        #expect(second.process.waitForLine(containing: "rolled-back versions fashion=3", seconds: 5) != nil)
        usleep(500_000)   // several repository passes
        #expect(try Self.health(second.port)?.candidate_version == nil)
        #expect(try servedVersion(second.port) == 2)
        // Rolling back the serving version falls back past the remembered version 3, to version 1.
        let back = try HTTP.request(port: second.port, "POST", "/v2/repository/models/fashion/rollback", headers: auth,
                                    body: Array(#"{"version": 2}"#.utf8))
        #expect(back.status == 200 && back.text.contains(#""rolled_back_version":2"#) && back.text.contains(#""serving_version":1"#), "\(back.text)")
        #expect(try servedVersion(second.port) == 1)
        second.process.signal(SIGKILL)
        second.process.wait(seconds: 10)

        // And once more: both rollbacks are remembered.
        let third = try ServeProcess(models: repo.path, settings: settings)
        try third.waitReady()
        usleep(500_000)
        #expect(try servedVersion(third.port) == 1)
        #expect(try Self.health(third.port)?.candidate_version == nil)
    }
}
