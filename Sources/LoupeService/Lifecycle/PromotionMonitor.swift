// Safe promotion, evaluated continuously: every `promotion.evaluate_interval_ms` the monitor takes
// each model that has a candidate (from the provider's snapshot), the evidence gathered for that
// pair (PromotionTracker), and asks the pure judge (PromotionRules.swift) for a verdict; with
// `promotion.auto` it carries a promote or rollback out through the provider (the repository).
// People do the same through POST /v2/repository/models/{m}/promote and …/rollback. Every decision
// — automatic or manual — is one log line, one increment of
// loupe_promotion_decisions_total{model,version,decision,reason} and the model's `last_decision`
// in GET /health, beside the candidate, mode and progress of each model under judgement.
import Dispatch
import Logging
import Synchronization

final class PromotionMonitor: Sendable {
    let provider: any ModelProvider
    let tracker: PromotionTracker
    let logger: Logger
    let intervalSeconds: Double

    /// What /health shows of one model.
    struct Judgement: Sendable {
        var slot: PromotionSlot
        var verdict: PromotionVerdict
        var evidence: PromotionEvidence
    }

    struct Decision: Sendable {
        var model: String
        var version: Int
        /// promote or rollback.
        var decision: String
        /// The rule code (accuracy, agreement, latency, rules_passed) or manual.
        var reason: String
        var message: String
        /// Unix seconds.
        var at: Double
    }

    struct DecisionKey: Hashable, Comparable {
        var model: String, version: Int, decision: String, reason: String
        static func < (a: Self, b: Self) -> Bool { (a.model, a.version, a.decision, a.reason) < (b.model, b.version, b.decision, b.reason) }
    }

    private let judgements = Mutex<[String: Judgement]>([:])
    private let decisions = Mutex<(last: [String: Decision], counts: [DecisionKey: UInt64])>(([:], [:]))
    private let timer = Mutex<ModelRepository.TimerBox?>(nil)
    private let queue = DispatchQueue(label: "loupe.promotion")

    init(provider: any ModelProvider, tracker: PromotionTracker, logger: Logger, intervalSeconds: Double) {
        self.provider = provider; self.tracker = tracker; self.logger = logger
        self.intervalSeconds = max(0.01, intervalSeconds)
    }

    deinit { timer.withLock { $0?.source.cancel() } }

    func start() {
        let source = DispatchSource.makeTimerSource(queue: queue)
        let nanos = Int(intervalSeconds * 1e9)
        source.schedule(deadline: .now() + .nanoseconds(nanos), repeating: .nanoseconds(nanos), leeway: .milliseconds(20))
        source.setEventHandler { [weak self] in self?.evaluate() }
        timer.withLock { $0?.source.cancel(); $0 = ModelRepository.TimerBox(source) }
        source.resume()
    }

    func stop() { timer.withLock { $0?.source.cancel(); $0 = nil } }

    /// One evaluation of every model with a candidate (the timer's work; tests call it directly).
    func evaluate() {
        let slots = provider.promotionSlots()
        var now: [String: Judgement] = [:]
        for slot in slots {
            let evidence = tracker.evidence(model: slot.model, pair: .init(candidate: slot.candidate, serving: slot.serving))
            let verdict = PromotionJudge.verdict(evidence, rules: slot.policy)
            now[slot.model] = Judgement(slot: slot, verdict: verdict, evidence: evidence)
        }
        judgements.withLock { $0 = now }
        healthChanged()
        for j in now.values.sorted(by: { $0.slot.model < $1.slot.model }) where j.slot.policy.automatic {
            switch j.verdict {
            case .wait: continue
            case .promote(let rule, let reason):
                _ = act(promote: true, model: j.slot.model, version: j.slot.candidate, rule: rule, reason: reason, evidence: j.evidence)
            case .rollback(let rule, let reason):
                _ = act(promote: false, model: j.slot.model, version: j.slot.candidate, rule: rule, reason: reason, evidence: j.evidence)
            }
        }
    }

    /// A person's promote or rollback (the repository API). `version` nil: the candidate (rollback
    /// without a candidate: the serving version).
    func manual(promote: Bool, model: String, version: Int?) -> PromotionAction {
        let slot = provider.promotionSlots().first { $0.model == model }
        let evidence = slot.map { tracker.evidence(model: model, pair: .init(candidate: $0.candidate, serving: $0.serving)) }
        return act(promote: promote, model: model, version: version, rule: "manual",
                   reason: "requested through the repository API", evidence: evidence)
    }

    private func act(promote: Bool, model: String, version: Int?, rule: String, reason: String, evidence: PromotionEvidence?) -> PromotionAction {
        let decision = promote ? "promote" : "rollback"
        let result = promote ? provider.promote(model: model, version: version)
                             : provider.rollback(model: model, version: version, reason: rule == "manual" ? "manual rollback" : "\(rule): \(reason)")
        guard case .done(let message, let versionDecided, let serving) = result else {
            if case .refused(_, _, let why) = result {
                logger.warning("promotion decision not carried out", metadata: ["model": "\(model)", "decision": "\(decision)", "reason": "\(why)"])
            }
            return result
        }
        var metadata: Logger.Metadata = ["model": "\(model)", "version": "\(versionDecided)", "decision": "\(decision)",
                                         "rule": "\(rule)", "reason": "\(reason)", "serving": "\(serving)"]
        if let e = evidence {
            metadata["requests_seen"] = "\(e.seen)"
            if let a = e.agreement { metadata["agreement"] = "\(a)" }
            if let c = e.candidateAccuracy { metadata["candidate_accuracy"] = "\(c)"; metadata["candidate_labels"] = "\(e.candidateLabels)" }
            if let s = e.servingAccuracy { metadata["serving_accuracy"] = "\(s)"; metadata["serving_labels"] = "\(e.servingLabels)" }
        }
        logger.notice("\(message)", metadata: metadata)
        let key = DecisionKey(model: model, version: versionDecided, decision: decision, reason: rule)
        decisions.withLock { d in
            d.counts[key, default: 0] += 1
            d.last[model] = Decision(model: model, version: versionDecided, decision: decision, reason: rule, message: message,
                                     at: wallClockSeconds())
        }
        tracker.reset(model: model)
        judgements.withLock { _ = $0.removeValue(forKey: model) }
        healthChanged()
        return result
    }

    // MARK: Reporting

    func register(on registry: MetricsRegistry) {
        registry.addCollector { [weak self] w in self?.write(into: &w) }
    }

    func write(into w: inout MetricsWriter) {
        let counts = decisions.withLock { $0.counts }.sorted { $0.key < $1.key }
        w.family("loupe_promotion_decisions_total", help: "Safe promotion decisions carried out, by model, version decided on, decision (promote, rollback) and reason (the rule: accuracy, agreement, latency, rules_passed; or manual).", kind: .counter)
        for (k, n) in counts {
            w.sample("loupe_promotion_decisions_total", labels: [("model", k.model), ("version", String(k.version)), ("decision", k.decision), ("reason", k.reason)], value: Double(n))
        }
        let js = judgements.withLock { $0 }.values.sorted { $0.slot.model < $1.slot.model }
        w.family("loupe_promotion_candidate", help: "1 for the candidate version of a model under judgement, with the promotion mode and the version serving beside it.", kind: .gauge)
        for j in js {
            w.sample("loupe_promotion_candidate", labels: [("model", j.slot.model), ("version", String(j.slot.candidate)), ("mode", j.slot.policy.mode.rawValue), ("serving_version", String(j.slot.serving))], value: 1)
        }
        func labels(_ j: Judgement) -> [(String, String)] { [("model", j.slot.model), ("version", String(j.slot.candidate))] }
        w.family("loupe_promotion_requests_seen", help: "Requests the candidate handled (answered as canary or classified off the request path).", kind: .gauge)
        for j in js { w.sample("loupe_promotion_requests_seen", labels: labels(j), value: Double(j.evidence.seen)) }
        w.family("loupe_promotion_agreement", help: "Share of compared images where the candidate's top-1 class equals the serving version's.", kind: .gauge)
        for j in js { if let a = j.evidence.agreement { w.sample("loupe_promotion_agreement", labels: labels(j), value: a) } }
        w.family("loupe_promotion_compared_images", help: "Images both versions classified.", kind: .gauge)
        for j in js { w.sample("loupe_promotion_compared_images", labels: labels(j), value: Double(j.evidence.compared)) }
        w.family("loupe_promotion_live_accuracy", help: "Feedback accuracy of each side of the pair on the requests it predicted (answered or shadowed); role = candidate or serving.", kind: .gauge)
        for j in js {
            if let a = j.evidence.candidateAccuracy { w.sample("loupe_promotion_live_accuracy", labels: labels(j) + [("role", "candidate")], value: a) }
            if let a = j.evidence.servingAccuracy { w.sample("loupe_promotion_live_accuracy", labels: labels(j) + [("role", "serving")], value: a) }
        }
        w.family("loupe_promotion_labels", help: "Feedback labels scored for each side of the pair.", kind: .gauge)
        for j in js {
            w.sample("loupe_promotion_labels", labels: labels(j) + [("role", "candidate")], value: Double(j.evidence.candidateLabels))
            w.sample("loupe_promotion_labels", labels: labels(j) + [("role", "serving")], value: Double(j.evidence.servingLabels))
        }
        w.family("loupe_promotion_p99_seconds", help: "p99 forward-pass time of each side of the pair (log buckets, upper bound).", kind: .gauge)
        for j in js {
            if let p = j.evidence.candidateLatency.quantile(0.99) { w.sample("loupe_promotion_p99_seconds", labels: labels(j) + [("role", "candidate")], value: p) }
            if let p = j.evidence.servingLatency.quantile(0.99) { w.sample("loupe_promotion_p99_seconds", labels: labels(j) + [("role", "serving")], value: p) }
        }
    }

    /// Changes after every change of what `writeHealth` writes (read before calling it, a cache of
    /// its output is current while this stays the same): /health then takes no lock of this monitor.
    var healthGeneration: UInt64 { generation.load(ordering: .acquiring) }
    private let generation = Atomic<UInt64>(0)
    private func healthChanged() { generation.add(1, ordering: .releasing) }

    /// GET /health's `promotion` list: each model under judgement (mode, serving and candidate
    /// versions, the verdict so far and its progress sentence, the evidence) and each model's last
    /// decision. Empty when no model has a candidate or a decision.
    func writeHealth(into w: inout JSONWriter) -> Bool {
        let js = judgements.withLock { $0 }
        let last = decisions.withLock { $0.last }
        if js.isEmpty && last.isEmpty { return false }   // the usual case: no set or sort per probe
        let names = Set(js.keys).union(last.keys).sorted()
        guard !names.isEmpty else { return false }
        w.raw("[")
        for (i, name) in names.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{"); w.key("model"); w.string(name)
            if let j = js[name] {
                w.raw(","); w.key("mode"); w.string(j.slot.policy.mode.rawValue)
                w.raw(","); w.key("serving_version"); w.int(j.slot.serving)
                w.raw(","); w.key("candidate_version"); w.int(j.slot.candidate)
                let (verdict, progress): (String, String) = switch j.verdict {
                case .wait(let p): ("wait", p)
                case .promote(_, let r): ("promote", r)
                case .rollback(_, let r): ("rollback", r)
                }
                w.raw(","); w.key("verdict"); w.string(verdict)
                w.raw(","); w.key("progress"); w.string(progress)
                w.raw(","); w.key("automatic"); w.raw(j.slot.policy.automatic ? "true" : "false")
                w.raw(","); w.key("requests_seen"); w.int(j.evidence.seen)
                w.raw(","); w.key("compared_images"); w.int(j.evidence.compared)
                if let a = j.evidence.agreement { w.raw(","); w.key("agreement"); w.double(a) }
                w.raw(","); w.key("candidate_labels"); w.int(j.evidence.candidateLabels)
                w.raw(","); w.key("serving_labels"); w.int(j.evidence.servingLabels)
                if let a = j.evidence.candidateAccuracy { w.raw(","); w.key("candidate_accuracy"); w.double(a) }
                if let a = j.evidence.servingAccuracy { w.raw(","); w.key("serving_accuracy"); w.double(a) }
                w.raw(","); w.key("shadow_dropped"); w.int(j.evidence.dropped)
            }
            if let d = last[name] {
                w.raw(","); w.key("last_decision"); w.raw("{")
                w.key("version"); w.int(d.version)
                w.raw(","); w.key("decision"); w.string(d.decision)
                w.raw(","); w.key("reason"); w.string(d.reason)
                w.raw(","); w.key("message"); w.string(d.message)
                w.raw(","); w.key("at"); w.double(d.at)
                w.raw("}")
            }
            w.raw("}")
        }
        w.raw("]")
        return true
    }
}
