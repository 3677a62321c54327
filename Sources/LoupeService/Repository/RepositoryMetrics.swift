// The repository's metrics, computed at scrape time from the published snapshot, the reload
// counters and the drift windows. Labels are bounded: model names and versions present in the
// repository, and the models' own class labels. Alert examples: docs/model-lifecycle.md.

extension ModelRepository {
    /// Adds the repository's families (loupe_model_*, loupe_repository_*, loupe_drift_*) to the
    /// service's registry. Call once.
    public func registerMetrics(on registry: MetricsRegistry) {
        registry.addCollector { [weak self] writer in self?.writeMetrics(into: &writer) }
    }

    func writeMetrics(into w: inout MetricsWriter) {
        let snap = publishedSnapshot
        let (counts, lastScan, scanErrors) = countersCopy
        let statuses = snap.statuses.values.sorted { $0.name < $1.name }
        let served = snap.served.keys.sorted().map { snap.served[$0]! }

        w.family("loupe_model_info", help: "A served model version (value 1), with the SHA-256 of its file and its precision (fp32 or int8).", kind: .gauge)
        for s in served {
            for m in s.versions.values.sorted(by: { $0.version < $1.version }) {
                w.sample("loupe_model_info", labels: [("model", m.name), ("version", String(m.version)), ("sha256", m.sha256),
                                                      ("precision", m.header.precision)], value: 1)
            }
        }
        w.family("loupe_model_test_accuracy", help: "Accuracy on the test split recorded in the served version's file (training.testAccuracy), the baseline of the live accuracy.", kind: .gauge)
        for s in served {
            for m in s.versions.values.sorted(by: { $0.version < $1.version }) {
                if let a = m.header.training.testAccuracy {
                    w.sample("loupe_model_test_accuracy", labels: [("model", m.name), ("version", String(m.version))], value: a)
                }
            }
        }
        w.family("loupe_model_ready", help: "1 when the model has a served version, 0 while loading, failed or unloaded.", kind: .gauge)
        for s in statuses {
            w.sample("loupe_model_ready", labels: [("model", s.name)], value: snap.served[s.name] == nil ? 0 : 1)
        }
        w.family("loupe_model_reloads_total", help: "Version loads attempted, by result (failure: the previous version kept serving).", kind: .counter)
        for name in counts.keys.sorted() {
            let c = counts[name]!.reloads
            w.sample("loupe_model_reloads_total", labels: [("model", name), ("result", "success")], value: Double(c.success))
            w.sample("loupe_model_reloads_total", labels: [("model", name), ("result", "failure")], value: Double(c.failure))
        }
        w.family("loupe_model_last_reload_timestamp_seconds", help: "Unix time of the model's last successful version load (also as loupe_model_last_reload_success_timestamp_seconds).", kind: .gauge)
        for name in counts.keys.sorted() {
            if let t = counts[name]!.lastSuccess {
                w.sample("loupe_model_last_reload_timestamp_seconds", labels: [("model", name)], value: t)
            }
        }
        // The Prometheus convention for "did the last attempt work, and when did one last work"
        // (as Prometheus's own prometheus_config_last_reload_successful).
        w.family("loupe_model_last_reload_successful", help: "1 when the model's last version load attempt succeeded, 0 when it failed.", kind: .gauge)
        for name in counts.keys.sorted() {
            if let ok = counts[name]!.lastSucceeded {
                w.sample("loupe_model_last_reload_successful", labels: [("model", name)], value: ok ? 1 : 0)
            }
        }
        w.family("loupe_model_last_reload_success_timestamp_seconds", help: "Unix time of the model's last successful version load.", kind: .gauge)
        for name in counts.keys.sorted() {
            if let t = counts[name]!.lastSuccess {
                w.sample("loupe_model_last_reload_success_timestamp_seconds", labels: [("model", name)], value: t)
            }
        }
        w.family("loupe_model_file_missing", help: "1 for a served version whose file is gone from the repository (served from memory).", kind: .gauge)
        for s in statuses {
            for v in s.versions where v.fileMissing {
                w.sample("loupe_model_file_missing", labels: [("model", s.name), ("version", String(v.version))], value: 1)
            }
        }
        w.family("loupe_model_load_duration_seconds", help: "Time to read, verify, build and self-test the served version.", kind: .gauge)
        for s in served {
            for m in s.versions.values.sorted(by: { $0.version < $1.version }) {
                w.sample("loupe_model_load_duration_seconds", labels: [("model", m.name), ("version", String(m.version))], value: m.loadDuration)
            }
        }
        w.family("loupe_repository_scan_errors_total", help: "Repository scans that failed (root missing or unreadable).", kind: .counter)
        w.sample("loupe_repository_scan_errors_total", value: Double(scanErrors))
        if lastScan > 0 {
            w.family("loupe_repository_last_scan_timestamp_seconds", help: "Unix time of the last repository scan.", kind: .gauge)
            w.sample("loupe_repository_last_scan_timestamp_seconds", value: lastScan)
        }

        // Drift of the traffic of each served model against its default version's training set.
        let summaries = served.map { ($0.latest.name, $0.latest.drift.summary()) }
        w.family("loupe_drift_window_images", help: "Images in the sliding window the drift statistics cover.", kind: .gauge)
        for (name, d) in summaries { w.sample("loupe_drift_window_images", labels: [("model", name)], value: Double(d.images)) }
        w.family("loupe_drift_psi", help: "Population stability index of the window against the training set (feature: predicted_class vs the held-out prediction shares, else the class priors; intensity vs the pixel histogram); > 0.25 means the population moved.", kind: .gauge)
        for (name, d) in summaries {
            if let v = d.classPSI { w.sample("loupe_drift_psi", labels: [("model", name), ("feature", "predicted_class")], value: v) }
            if let v = d.intensityPSI { w.sample("loupe_drift_psi", labels: [("model", name), ("feature", "intensity")], value: v) }
        }
        w.family("loupe_drift_mean_intensity", help: "Mean pixel intensity (pixel/255) of the window (source=live) and of the training set (source=training).", kind: .gauge)
        for (name, d) in summaries {
            if let v = d.liveMeanIntensity { w.sample("loupe_drift_mean_intensity", labels: [("model", name), ("source", "live")], value: v) }
            if let v = d.reference.meanIntensity { w.sample("loupe_drift_mean_intensity", labels: [("model", name), ("source", "training")], value: v) }
        }
        w.family("loupe_drift_ink_fraction", help: "Share of pixels >= the ink threshold (128) in the window (source=live) and the training set (source=training).", kind: .gauge)
        for (name, d) in summaries {
            if let v = d.liveInkFraction { w.sample("loupe_drift_ink_fraction", labels: [("model", name), ("source", "live")], value: v) }
            if let v = d.reference.inkFraction { w.sample("loupe_drift_ink_fraction", labels: [("model", name), ("source", "training")], value: v) }
        }
        w.family("loupe_drift_class_share", help: "Share of each predicted class in the window (source=live), of each class in the training set (source=training) and of each class among the model's predictions on held-out images at training time (source=training_predictions).", kind: .gauge)
        for (name, d) in summaries where d.images > 0 || d.reference.classPriors != nil {
            for (k, label) in d.reference.labels.enumerated() {
                if d.images > 0, k < d.liveClassShare.count {
                    w.sample("loupe_drift_class_share", labels: [("model", name), ("class", label), ("source", "live")], value: d.liveClassShare[k])
                }
                if let p = d.reference.classPriors, k < p.count {
                    w.sample("loupe_drift_class_share", labels: [("model", name), ("class", label), ("source", "training")], value: p[k])
                }
                if let p = d.reference.predictedClassShares, k < p.count {
                    w.sample("loupe_drift_class_share", labels: [("model", name), ("class", label), ("source", "training_predictions")], value: p[k])
                }
            }
        }
    }
}
