// What the repository API (Routes/RepositoryRoutes.swift) asks of the repository: load or unload
// one model now, and the index (every model's status merged with a fresh scan of the disk).
import Logging
import LoupeData

extension ModelRepository {
    /// What `load(model:)` did.
    public struct LoadOutcome: Sendable {
        /// The model is served and none of the versions its policy wants failed.
        public var ok: Bool
        /// The name is valid but not in the repository.
        public var notFound: Bool
        public var events: [ReloadEvent]
        /// A sentence for the caller: what serves, or why not.
        public var message: String
    }

    /// Loads (or reloads) one model now, clearing an earlier unload.
    public func load(model: String) -> LoadOutcome {
        guard ModelRepositoryLayout.isValidName(model) else {
            return LoadOutcome(ok: false, notFound: false, events: [],
                               message: ModelRepositoryLayout.invalidNameMessage(model))
        }
        return queue.sync {
            control.withLock { _ = $0.unloadedByRequest.remove(model) }
            let events = settlingPass(only: model)
            // Versions the policy wants whose current file failed to load, in this pass or an
            // earlier one (the poller may have tried the file first).
            let failures: [ReloadEvent] = control.withLock { c in
                (status(model: model)?.versions ?? []).compactMap { v in
                    let key = VersionKey(name: model, version: v.version)
                    guard v.state == .unavailable, let failed = c.failures[key],
                          c.lastScan[model]?[v.version]?.identity == failed.identity else { return nil }
                    return ReloadEvent(model: model, version: v.version, outcome: .failed(failed.reason))
                }
            }
            let served = snapshot.served[model]
            if served == nil, control.withLock({ $0.lastScan[model] == nil }) {
                return LoadOutcome(ok: false, notFound: true, events: events, message: "model \"\(model)\" is not in the repository")
            }
            if let served, failures.isEmpty {
                let versions = served.versions.keys.sorted(by: >).map(String.init).joined(separator: ", ")
                return LoadOutcome(ok: true, notFound: false, events: events, message: "model \"\(model)\" serves version \(versions)")
            }
            var message = failures.map(\.description).joined(separator: "; ")
            if message.isEmpty { message = status(model: model)?.reason ?? "model \"\(model)\" has no version to serve" }
            if let served {
                message += "; still serving version " + served.versions.keys.sorted(by: >).map(String.init).joined(separator: ", ")
            }
            return LoadOutcome(ok: false, notFound: false, events: events, message: message)
        }
    }

    /// Stops serving a model until `load(model:)` (polling and SIGHUP leave it unloaded).
    /// Requests already holding one of its versions finish with it.
    public func unload(model: String) -> (ok: Bool, message: String) {
        guard ModelRepositoryLayout.isValidName(model) else {
            return (false, ModelRepositoryLayout.invalidNameMessage(model))
        }
        return queue.sync {
            let known = snapshot.statuses[model] != nil || control.withLock { $0.lastScan[model] != nil }
            guard known else { return (false, "model \"\(model)\" is not in the repository") }
            control.withLock { _ = $0.unloadedByRequest.insert(model) }
            pass(only: model)
            return (true, "model \"\(model)\" unloaded")
        }
    }

    /// Status of every model, merged with a fresh scan of the disk (without loading anything):
    /// versions that appeared since the last pass are listed as not loaded yet.
    func indexStatuses() -> [ModelStatus] {
        queue.sync {
            var statuses = snapshot.statuses
            guard let root = RepositoryFileSystem.realPath(configuration.root),
                  let found = try? scan(root: root) else { return statuses.values.sorted { $0.name < $1.name } }
            for (name, versions) in found {
                var status = statuses[name] ?? ModelStatus(name: name, state: .unavailable, reason: "not loaded yet", versions: [])
                for v in versions.keys where !status.versions.contains(where: { $0.version == v }) {
                    status.versions.append(VersionStatus(version: v, state: .unavailable, reason: "not loaded yet", sha256: nil))
                }
                status.versions.sort { $0.version > $1.version }
                statuses[name] = status
            }
            return statuses.values.sorted { $0.name < $1.name }
        }
    }
}
