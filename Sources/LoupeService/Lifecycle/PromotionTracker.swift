// The evidence about each candidate version, gathered as requests are answered: requests the
// candidate handled, images both versions classified and how many agreed, forward-pass times of
// each, and feedback labels scored against each version's prediction (answered or shadowed). One
// `PromotionEvidence` per model, for the current (candidate, serving) pair: a record naming another
// pair starts the evidence afresh, so a new candidate is never judged on its predecessor's counts.
// Every update is a few integer adds under one short lock. The request side (`answered`, `dropped`)
// only try-locks, since the idle-class shadow worker takes the same lock: a sample that meets it
// busy is skipped rather than waiting for that worker to get a CPU back.
import Synchronization

final class PromotionTracker: Sendable {
    struct Pair: Hashable, Sendable { var candidate: Int; var serving: Int }
    struct Entry: Sendable { var pair: Pair; var evidence = PromotionEvidence() }
    private let entries = Mutex<[String: Entry]>([:])

    /// Updates the evidence of `model` for `pair`, starting afresh when the pair changed; with
    /// `wait` false, skipped when the lock is busy.
    private func update(_ model: String, _ pair: Pair, wait: Bool = true, _ body: (inout PromotionEvidence) -> Void) {
        if wait {
            entries.withLock { e in
                if e[model]?.pair != pair { e[model] = Entry(pair: pair) }
                body(&e[model]!.evidence)
            }
        } else {
            _ = entries.withLockIfAvailable { e in
                if e[model]?.pair != pair { e[model] = Entry(pair: pair) }
                body(&e[model]!.evidence)
            }
        }
    }

    /// A request answered by one version of a pair (`routed.other` set): its forward-pass time.
    func answered(_ routed: RoutedModel, inferenceSeconds: Double) {
        guard let candidate = routed.candidate else { return }
        update(routed.model.name, Pair(candidate: candidate.version, serving: routed.serving.version), wait: false) { e in
            Self.observeAnswer(&e, routed, inferenceSeconds)
        }
    }

    private static func observeAnswer(_ e: inout PromotionEvidence, _ routed: RoutedModel, _ seconds: Double) {
        if routed.candidateAnswered {
            e.seen += 1
            e.candidateLatency.observe(seconds: seconds)
        } else {
            e.servingLatency.observe(seconds: seconds)
        }
    }

    /// The other version classified a copy off the request path: `agreed` of `images` top-1
    /// classes matched the answer; `seconds` its forward pass; `answeredSeconds` the answer's forward
    /// pass when the copy carried it (the shadow worker records it for the request side).
    func compared(_ routed: RoutedModel, images: Int, agreed: Int, seconds: Double, answeredSeconds: Double? = nil) {
        guard let candidate = routed.candidate else { return }
        update(routed.model.name, Pair(candidate: candidate.version, serving: routed.serving.version)) { e in
            e.compared += images
            e.agreed += agreed
            if let answeredSeconds { Self.observeAnswer(&e, routed, answeredSeconds) }
            if routed.candidateAnswered {
                e.servingLatency.observe(seconds: seconds)
            } else {
                e.seen += 1
                e.candidateLatency.observe(seconds: seconds)
            }
        }
    }

    /// A shadow copy was dropped (the shadow queue was full); `answeredSeconds` as in `compared`.
    func dropped(_ routed: RoutedModel, answeredSeconds: Double? = nil) {
        guard let candidate = routed.candidate else { return }
        update(routed.model.name, Pair(candidate: candidate.version, serving: routed.serving.version), wait: false) { e in
            e.dropped += 1
            if let answeredSeconds { Self.observeAnswer(&e, routed, answeredSeconds) }
        }
    }

    /// Feedback scored against version `version` of `model` (its answer or its shadow prediction):
    /// counted when that version is the candidate or the serving version of the current pair.
    func feedback(model: String, version: Int, labels: [Int], classes: [Int]) {
        let right = zip(labels, classes).filter { $0 == $1 }.count
        entries.withLock { e in
            guard let pair = e[model]?.pair else { return }
            if version == pair.candidate {
                e[model]!.evidence.candidateLabels += labels.count
                e[model]!.evidence.candidateCorrect += right
            } else if version == pair.serving {
                e[model]!.evidence.servingLabels += labels.count
                e[model]!.evidence.servingCorrect += right
            }
        }
    }

    /// The evidence for `model` about `pair` (empty when nothing was recorded for that pair yet).
    func evidence(model: String, pair: Pair) -> PromotionEvidence {
        entries.withLock { e in e[model]?.pair == pair ? e[model]!.evidence : PromotionEvidence() }
    }

    /// Forgets a model's evidence (after a decision).
    func reset(model: String) { entries.withLock { _ = $0.removeValue(forKey: model) } }
}
