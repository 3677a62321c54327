import Testing
@testable import LoupeService

/// The promotion judge on counts alone: no clock, no files, no requests.
@Suite struct PromotionRulesTests {
    /// Rules with only the named ones on.
    func rules(minRequests: Int = 100, agreement: Double = 0, labels: Int = 0, drop: Double = 0.02,
               confidence: Double = 0.95, latency: Double = 0) -> PromotionPolicy {
        var p = PromotionPolicy()
        p.minRequests = minRequests; p.minAgreement = agreement; p.minLabels = labels
        p.maxAccuracyDrop = drop; p.confidence = confidence; p.maxLatencyRatio = latency
        return p
    }

    func evidence(seen: Int = 1000, compared: Int = 0, agreed: Int = 0, candidate: (Int, Int) = (0, 0),
                  serving: (Int, Int) = (0, 0)) -> PromotionEvidence {
        var e = PromotionEvidence()
        e.seen = seen; e.compared = compared; e.agreed = agreed
        (e.candidateCorrect, e.candidateLabels) = candidate
        (e.servingCorrect, e.servingLabels) = serving
        return e
    }

    @Test func nothingIsDecidedBeforeMinRequests() {
        let v = PromotionJudge.verdict(evidence(seen: 99, compared: 99, agreed: 0), rules: rules(agreement: 0.9))
        #expect(v == .wait(progress: "99 of 100 requests seen (promotion.min_requests)"))
        // The same evidence one request later rolls back on agreement.
        guard case .rollback(let rule, _) = PromotionJudge.verdict(evidence(seen: 100, compared: 100, agreed: 0), rules: rules(agreement: 0.9)) else {
            Issue.record("expected a rollback"); return
        }
        #expect(rule == "agreement")
    }

    @Test func agreementAtTheThresholdPassesAndJustBelowFails() {
        let r = rules(agreement: 0.9)
        guard case .promote = PromotionJudge.verdict(evidence(compared: 1000, agreed: 900), rules: r) else {
            Issue.record("900/1000 should pass 0.9"); return
        }
        guard case .rollback(let rule, let why) = PromotionJudge.verdict(evidence(compared: 1000, agreed: 899), rules: r) else {
            Issue.record("899/1000 should fail 0.9"); return
        }
        #expect(rule == "agreement" && why.contains("89.9%") && why.contains("1000 images"))
        // No comparison yet (sample rate 0), or too few to judge a share: wait, never decide blind.
        #expect(PromotionJudge.verdict(evidence(compared: 0), rules: r)
                == .wait(progress: "0 of 100 images compared by both versions (promotion.shadow_sample_rate)"))
        #expect(PromotionJudge.verdict(evidence(compared: 99, agreed: 0), rules: r)
                == .wait(progress: "99 of 100 images compared by both versions (promotion.shadow_sample_rate)"))
    }

    @Test func normalQuantileMatchesTables() {
        #expect(abs(PromotionJudge.normalQuantile(0.95) - 1.6448536) < 1e-6)
        #expect(abs(PromotionJudge.normalQuantile(0.975) - 1.9599640) < 1e-6)
        #expect(abs(PromotionJudge.normalQuantile(0.5)) < 1e-9)
        #expect(abs(PromotionJudge.normalQuantile(0.99) - 2.3263479) < 1e-6)
    }

    /// Agresti–Caffo by hand: candidate 60/100, serving 80/100 → p̃ = 61/102, 81/102;
    /// se = √(p̃c(1−p̃c)/102 + p̃s(1−p̃s)/102); bounds = p̃c − p̃s ∓ 1.6449·se.
    @Test func accuracyBoundsAreAgrestiCaffo() {
        let e = evidence(candidate: (60, 100), serving: (80, 100))
        let pc = 61.0 / 102, ps = 81.0 / 102
        let se = (pc * (1 - pc) / 102 + ps * (1 - ps) / 102).squareRoot()
        let (low, high) = PromotionJudge.differenceBounds(e, confidence: 0.95)
        #expect(abs(low - (pc - ps - 1.6448536 * se)) < 1e-6)
        #expect(abs(high - (pc - ps + 1.6448536 * se)) < 1e-6)
    }

    @Test func aClearlyWorseCandidateIsRolledBackOnAccuracy() {
        // 65% vs 82% on 150 labels each: the upper bound of the difference is well below −2 points.
        let v = PromotionJudge.verdict(evidence(candidate: (98, 150), serving: (123, 150)), rules: rules(labels: 100))
        guard case .rollback(let rule, let why) = v else { Issue.record("expected a rollback, got \(v)"); return }
        #expect(rule == "accuracy")
        #expect(why.contains("max_accuracy_drop") && why.contains("95.0% confidence"), "\(why)")
    }

    @Test func anEquallyGoodCandidateWaitsUntilTheTestIsConclusiveThenPromotes() {
        let r = rules(labels: 100, drop: 0.05)
        // 80% vs 80% on 100 labels: the lower bound (≈ −9 points) is below −5: not yet shown.
        guard case .wait(let progress) = PromotionJudge.verdict(evidence(candidate: (80, 100), serving: (80, 100)), rules: r) else {
            Issue.record("expected a wait"); return
        }
        #expect(progress.contains("not yet conclusive"))
        // The same rates on 1000 labels each: lower bound ≈ −2.9 points ≥ −5 → promote.
        guard case .promote(let rule, _) = PromotionJudge.verdict(evidence(candidate: (800, 1000), serving: (800, 1000)), rules: r) else {
            Issue.record("expected a promotion"); return
        }
        #expect(rule == "rules_passed")
    }

    @Test func theAccuracyRuleWaitsForLabelsOnBothSides() {
        let v = PromotionJudge.verdict(evidence(candidate: (10, 10), serving: (99, 99)), rules: rules(labels: 100))
        #expect(v == .wait(progress: "labels 10 (candidate) and 99 (serving) of 100 each (promotion.min_labels)"))
    }

    @Test func accuracyIsJudgedBeforeAgreement() {
        // Both rules fail; the accuracy rule is named (feedback is the stronger evidence).
        let v = PromotionJudge.verdict(evidence(compared: 1000, agreed: 100, candidate: (10, 200), serving: (190, 200)),
                                       rules: rules(agreement: 0.9, labels: 100))
        guard case .rollback(let rule, _) = v else { Issue.record("expected a rollback"); return }
        #expect(rule == "accuracy")
    }

    @Test func latencyRuleComparesP99() {
        var e = evidence()
        for _ in 0..<200 { e.servingLatency.observe(seconds: 0.001) }
        for _ in 0..<198 { e.candidateLatency.observe(seconds: 0.001) }
        for _ in 0..<2 { e.candidateLatency.observe(seconds: 0.5) }   // 1%: inside p99
        guard case .promote = PromotionJudge.verdict(e, rules: rules(latency: 2)) else { Issue.record("p99 equal: promote"); return }
        for _ in 0..<10 { e.candidateLatency.observe(seconds: 0.5) }  // now ≈ 6% slow: p99 = 0.5 s
        guard case .rollback(let rule, let why) = PromotionJudge.verdict(e, rules: rules(latency: 2)) else {
            Issue.record("expected a latency rollback"); return
        }
        #expect(rule == "latency" && why.contains("max_latency_ratio"))
    }

    @Test func latencyHistogramQuantiles() {
        var h = LatencyHistogram()
        #expect(h.quantile(0.99) == nil)
        for i in 1...100 { h.observe(seconds: Double(i) * 1e-4) }   // 0.1 ms … 10 ms
        let p99 = h.quantile(0.99)!, p50 = h.quantile(0.5)!
        // Bucket upper bounds: within one bucket (×1.25) above the exact values.
        #expect(p99 >= 9.9e-3 && p99 < 9.9e-3 * 1.25)
        #expect(p50 >= 5e-3 && p50 < 5e-3 * 1.25)
        #expect(LatencyHistogram.bucket(seconds: 0) == 0 && LatencyHistogram.bucket(seconds: 1e9) == LatencyHistogram.bucketCount - 1)
    }

    @Test func everyRuleOffPromotesAfterMinRequests() {
        guard case .promote(_, let why) = PromotionJudge.verdict(evidence(seen: 100), rules: rules()) else {
            Issue.record("expected a promotion"); return
        }
        #expect(why.contains("every rule is off"))
    }
}

@Suite struct PromotionConfigurationTests {
    @Test func defaultsAndPerModelOverridesFromFileAndEnvironment() throws {
        let dir = try TempDir()
        try dir.write("p.yaml", "promotion:\n  mode: shadow\n  models:\n    fashion:\n      mode: canary\n      canary_percent: 25\n    my.model:\n      min_labels: 0\n")
        var warnings: [String] = []
        let c = try ServiceConfiguration.load(file: dir.path + "/p.yaml",
                                              environment: ["LOUPE_PROMOTION_MODELS_DIGITS_MAX_ACCURACY_DROP": "0.1"],
                                              overrides: [], warnings: &warnings)
        #expect(warnings.isEmpty)
        let r = c.repositoryConfiguration
        #expect(r.promotion(for: "other").mode == .shadow)
        #expect(r.promotion(for: "fashion").mode == .canary && r.promotion(for: "fashion").canaryPercent == 25)
        #expect(r.promotion(for: "my.model").mode == .shadow && r.promotion(for: "my.model").minLabels == 0)
        #expect(r.promotion(for: "digits").maxAccuracyDrop == 0.1 && r.promotion(for: "digits").mode == .shadow)
        #expect(c.renderedKeyValues().contains { $0.key == "promotion.models.fashion.canary_percent" && $0.value == "25" })
        #expect(ServiceConfiguration().repositoryConfiguration.promotion == PromotionPolicy())
    }

    @Test func badPromotionSettingsNameTheKey() {
        var c = ServiceConfiguration()
        #expect(throws: ConfigurationError.self) { try c.set("promotion.mode", "blue-green", source: "t") }
        #expect(throws: ConfigurationError.self) { try c.set("promotion.canary_percent", "101", source: "t") }
        #expect(throws: ConfigurationError.self) { try c.set("promotion.models.fashion.canary_percent", "-1", source: "t") }
        #expect(throws: ConfigurationError.self) { try c.set("promotion.models.fashion.canary_key_header", "X", source: "t") }
        #expect(throws: ConfigurationError.self) { try c.set("promotion.models..mode", "canary", source: "t") }
        do {
            try c.set("promotion.models.fashion.mode", "sometimes", source: "flag")
            Issue.record("accepted a bad mode")
        } catch {
            #expect(error.key == "promotion.models.fashion.mode" && error.message.contains("immediate, shadow, canary"))
        }
    }
}
