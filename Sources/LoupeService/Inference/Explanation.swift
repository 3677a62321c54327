// Explanations on the inference workers: an explain job goes through the same bounded queue as
// predictions (weighted by the forward/backward passes it costs) and runs alone on a worker, with
// that worker's own Explainer (engine workspaces) for the model.
import LoupeEngine

/// What to explain: the method and its options, and the class (nil = each image's predicted class).
public struct ExplanationRequest: Sendable, Equatable {
    public var options: AttributionOptions
    public var target: Int?

    public init(options: AttributionOptions, target: Int?) {
        self.options = options; self.target = target
    }

    /// Network passes one image costs (forward + backward for gradients): the job's weight in the queue. Integrated
    /// gradients: `steps` gradient passes and steps + 1 forward-only passes (the score at the intervals' edges), a
    /// forward pass counted as a third of a gradient pass.
    public var passesPerImage: Int {
        switch options.method {
        case .integratedGradients: return options.steps + (options.steps + 1 + 2) / 3
        case .saliency, .gradientXInput: return 2
        case .occlusion: return 2
        }
    }

    /// Occlusion runs one forward pass per window position: its weight depends on the input size.
    public func passesPerImage(height: Int, width: Int) -> Int {
        guard options.method == .occlusion else { return passesPerImage }
        let w = max(1, options.window), s = max(1, options.stride)
        let positions = (max(0, height - w) / s + 1) * (max(0, width - w) / s + 1)
        return positions + 1
    }
}

extension ModelRunner {
    /// Runners that cannot explain say so (a model without engine gradients).
    public func explain(_ input: [Float], count: Int, request: ExplanationRequest) throws(ServiceError) -> [Attribution] {
        throw ServiceError(status: 501, code: "explanations_unsupported", "this model cannot be explained")
    }
}

extension LoadedModelRunner {
    /// One Explainer per runner (so per worker), made on first use.
    func explainImages(_ input: [Float], count: Int, request: ExplanationRequest) throws(ServiceError) -> [Attribution] {
        if explainer == nil {
            do { explainer = try Explainer(model: network) } catch {
                throw ServiceError(status: 501, code: "explanations_unsupported", "this model cannot be explained: \(error)")
            }
        }
        let d = network.inputCount
        var out: [Attribution] = []
        for b in 0..<count {
            let image = Array(input[(b * d)..<((b + 1) * d)])
            do { out.append(try explainer!.explain(image, target: request.target, options: request.options)) } catch let e as EngineError {
                throw ServiceError.badRequest("invalid_parameter", Self.sentence(e))
            } catch {
                throw ServiceError.internalError
            }
        }
        return out
    }

    static func sentence(_ e: EngineError) -> String {
        if case .invalidInput(let why) = e { return why }
        return e.description
    }
}
